import pytest

from siamtrack.config import DEFAULT_CONFIG, load_config, shipped_dir
from siamtrack.errors import ConfigError
from siamtrack.models import SiameseNet


def test_paper_numbers_load_into_dataclasses():
    cfg = load_config("siamfc_alexnet")
    t = cfg.track
    assert (t.exemplar_size, t.search_size, t.response_up) == (127, 255, 16)
    assert SiameseNet(cfg.model).total_stride == 8  # the network's, not a config number
    assert (t.context, t.scale_num, t.scale_step, t.scale_penalty) == (0.5, 3, 1.0375, 0.9745)
    assert (t.scale_lr, t.window_influence) == (0.59, 0.176)
    assert cfg.model.out_scale == 0.001 and cfg.train.lr_start == 1e-2 and cfg.train.max_gap == 100


def test_every_shipped_config_loads_and_derived_configs_inherit():
    names = [p.stem for p in shipped_dir("configs").glob("*.yaml")]
    assert DEFAULT_CONFIG in names
    for name in names:
        cfg = load_config(name)
        assert cfg.track.search_size == 255
    assert load_config("siamfc_lite0").model.backbone == "lite0_s5d"


def test_override_sets_nested_value():
    cfg = load_config("siamfc_alexnet", ["track.window_influence=0.2", "model.shared_weights=false"])
    assert cfg.track.window_influence == 0.2 and cfg.model.shared_weights is False


def test_exponent_numbers_yaml_reads_as_text_fill_float_and_int_keys(tmp_path):
    cfg = load_config("siamfc_alexnet", ["train.lr_end=1e-3", "train.lr_start=5E-2", "train.epochs=1e2"])
    assert cfg.train.lr_end == 1e-3 and cfg.train.lr_start == 5e-2 and cfg.train.epochs == 100
    assert type(cfg.train.lr_end) is float and type(cfg.train.epochs) is int
    path = tmp_path / "exponents.yaml"
    path.write_text("base: siamfc_alexnet\ntrain:\n  lr_end: 1e-6\n")
    assert load_config(path).train.lr_end == 1e-6


@pytest.mark.parametrize("override, message", [
    ("track.windw=0.2", "unknown config key 'track.windw'"),
    ("track.scale_num=three", "'track.scale_num' must be int"),
    ("train.lr_end=1e-3x", "'train.lr_end' must be float, got '1e-3x'"),
    ("train.epochs=25e-1", "'train.epochs' must be int, got '25e-1'"),
    ("train.lr_end=1e999", "'train.lr_end' must be a finite number"),
    ("model.xcorr=fancy", "'model.xcorr' must be one of"),
    ("model.input_norm=bgr", "'model.input_norm' must be one of inception|imagenet"),
    ("nosection", "must look like section.key=value"),
])
def test_bad_override_is_one_line_error_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config("siamfc_alexnet", [override])
    assert "\n" not in str(info.value)


def test_bad_yaml_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("track:\n  scale_lr: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("base: siamfc_alexnet\ntrack:\n  speed: 3\n")
    with pytest.raises(ConfigError, match="unknown.yaml: unknown config key 'track.speed'"):
        load_config(unknown)
    with pytest.raises(ConfigError, match="no config named 'nope'"):
        load_config("nope")
