"""Typed configuration: configs/*.yaml loaded into dataclasses, the single home of every number."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from .errors import ConfigError

DEFAULT_CONFIG = "siamfc_lite0"  # chosen by cross-validation on train_mini (weights/MODEL_CARD.md)


@dataclass
class ModelConfig:
    backbone: str = "alexnet"
    shared_weights: bool = True
    pretrained: bool = False
    out_scale: float = 0.001
    adjust: int = 0
    exemplar_crop: int = 0
    xcorr: str = "plain"
    input_norm: str = "inception"  # Lite0 trunks: the input normalisation (inception or imagenet)
    # a second, shallower level of features whose response is fused with the trunk's (track.fusion_weight):
    # none; blocks: the trunk's own output after its first fusion_blocks blocks (the same pass; a finer level
    # average-pooled to the output's stride)
    fusion: str = "none"
    fusion_blocks: int = 5


@dataclass
class DSSTConfig:
    """DSST's scale filter (siamtrack/dsst.py), fDSST's values unless cross-validation chose others."""
    scales: int = 17  # sizes sampled a frame
    interpolated: int = 33  # the scale response, interpolated to this many sizes
    step: float = 1.02  # between interpolated sizes
    sigma: float = 0.0625  # of the Gaussian wanted along the scale axis, times `interpolated`
    learning_rate: float = 0.025
    regularisation: float = 0.01
    model_area: float = 512.0  # px^2: the target is resized to at most this area before its HOG
    cell: int = 4  # HOG cell side, px
    # px^2: smaller targets keep the pyramid's size (their HOG is a few cells; cross-validated, MODEL_CARD)
    min_area: float = 1000.0


# the cues a lost classifier may weigh (siamtrack/core/verifier.py says what each measures)
LOST_CUES = ("score_vs_first", "score_vs_recent", "sidelobe", "sharpness", "level_agreement", "cosine", "colour",
             "jump")


@dataclass
class VerifierConfig:
    """Whether a target is lost (siamtrack/core/verifier.py): the rule on the score (track.lost_ratio,
    lost_drop, lost_window), a logistic classifier on cues of the response, the features and the colours,
    chosen by cross-validation (tools/lost_signal.py), or both (lost where either says so; a candidate taken
    back where both agree), or guarded (lost where the rule says so; a candidate taken back where both agree).
    A found classifier of its own (found_weights) takes a candidate back on its word alone (classifier, both,
    guarded)."""
    kind: str = "rule"  # rule | classifier | both | guarded
    # classifier: p(failed) = sigmoid(bias + sum of weight x cue), over the cues named (LOST_CUES)
    weights: dict = field(default_factory=dict)
    bias: float = 0.0
    threshold: float = 0.5  # a tracked target whose p(failed) reaches this is lost
    # the classifier judges a tracked target lost only where its peak fell under this x the last update's (an
    # abrupt loss: a cut, a full occlusion, a jump) or where the last update judged it lost, and then for as long
    # as it says failed: a target that turns or changes colour slowly is left to the rule (0: on every update)
    onset_drop: float = 0.0
    # a lost target's candidate (track.redetect): p(not the target) from its own classifier, learnt on
    # candidates, and taken back under `accept` on its word alone; with none, the lost one's, and with kind
    # both or guarded only where the rule too says not lost
    found_weights: dict = field(default_factory=dict)
    found_bias: float = 0.0
    accept: float = 0.5
    sidelobe_radius: float = 2.0  # response cells around the peak left out of the sidelobe
    colour_bins: int = 8  # per channel, of the target's colour histogram
    # the colour model moves this far towards the box's colours at each update judged tracked (a tracked target
    # not judged lost, a lost one's candidate taken back): a target whose light changes slowly keeps its colours
    # (0: the first box's, fixed)
    colour_rate: float = 0.0


@dataclass
class RedetectConfig:
    """The search for a lost target (siamtrack/core/redetect.py): `tiles` search crops a frame at its last
    confident size, the window off, one always at its last confident place; the others first around it
    (`near_frames` frames), then over the whole frame, nearest first, round after round."""
    tiles: int = 0  # 0: no search, a lost target waits where it was lost for its score to come back
    # updates judged lost in a row before the target is held and searched for: until then its box follows the
    # peak as a tracked one's (a short false alarm on a target still there moves nothing); 1: at once
    after: int = 1
    # held only where the loss began abruptly: a peak under hold_drop x the update before's, as the loss began or
    # since (a cut, a full occlusion); a target that turns or whose light changes fades slowly and is followed
    # with `lost` set instead. 0: every lost target is held
    hold_drop: float = 0.0
    # and only while the peak stays under hold_stay x the recent tracked peaks' median: one that comes back up
    # before `after` lost updates (a blur, a look-alike passing) was a dip and is followed instead. 0: no check
    hold_stay: float = 0.0
    near_frames: int = 10
    tile_step: float = 0.7  # between tile centres, in search-crop sides (a response covers about 0.75 of one)


@dataclass
class WarpConfig:
    """Exemplar warps (siamtrack/core/warps.py): the first frame's exemplar also cut turned and stretched, each
    embedded once at init; each frame the target's current warp and its neighbours are correlated. Off by
    default (angle_step 0, stretch_step 1): kept only where tools/choose.py's families rule chose it."""
    angle_step: float = 0.0  # degrees between the bank's turns (0: no turns)
    angle_max: float = 180.0  # degrees each way the bank turns; 180: the whole circle, wrapping round
    stretch_step: float = 1.0  # width / height factor between the bank's stretches (1: no stretches)
    stretch_max: float = 1.5  # the largest stretch each way (width x f, height / f, and the reverse)
    penalty: float = 0.97  # a neighbouring warp's peak is weighed by this against the current warp's
    box_lr: float = 0.5  # how far the box's aspect moves each frame towards the chosen warp's
    turn_box: bool = False  # the box also follows the turn: an ellipse in the first box, turned, bounds it


@dataclass
class TrackConfig:
    exemplar_size: int = 127
    search_size: int = 255
    context: float = 0.5
    response_up: int = 16
    scale_mode: str = "pyramid"  # pyramid: S search crops (the paper); exemplar: S exemplar kernels, one crop
    scale_num: int = 3
    scale_step: float = 1.0375
    scale_penalty: float = 0.9745
    scale_lr: float = 0.59
    window_influence: float = 0.176
    min_size: float = 4.0
    max_size_ratio: float = 1.0
    # `lost` (siamtrack/tracker.py, chosen with tools/lost_signal.py): the score under lost_ratio x the first
    # update's, or under lost_drop x the median of the last lost_window scores of updates not judged lost; 0: off
    lost_ratio: float = 0.3
    lost_drop: float = 0.5
    lost_window: int = 10
    int8_calibration_frames: int = 32
    cpu_search_batch: int = 3  # search crops per backbone call on a CPU (0: all at once); see Engine
    # with model.fusion: the deep level's share of the fused response, 0-1 (1: the deep level alone)
    fusion_weight: float = 1.0
    # each frame and target, the share moves with how sharp each level's response is (fusion_weight: its
    # value where both are as sharp; siamtrack/fusion.py)
    fusion_adaptive: bool = False
    fusion_floor: float = 0.0  # with fusion_adaptive: the least share the deep level keeps (0: no floor)
    scale_filter: str = "none"  # none: the pyramid alone sizes the box; dsst: a DSST filter refines its size
    dsst: DSSTConfig = field(default_factory=DSSTConfig)
    warps: WarpConfig = field(default_factory=WarpConfig)
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    redetect: RedetectConfig = field(default_factory=RedetectConfig)


@dataclass
class TrainConfig:
    epochs: int = 50
    batch_size: int = 8
    lr_start: float = 1e-2
    lr_end: float = 1e-5
    momentum: float = 0.9
    weight_decay: float = 5e-4
    max_gap: int = 100
    positive_radius: int = 16
    loss: str = "logistic"
    margin: float = 1.0
    pairs_per_epoch: int = 5000
    num_workers: int = 2
    seed: int = 0
    val_fraction: float = 0.1
    val_pairs: int = 500
    stretch: float = 0.05
    translate: float = 8.0
    color_jitter: float = 0.1
    gray_prob: float = 0.25
    log_interval: int = 20
    amp: bool = True
    freeze_backbone: bool = False
    backbone_lr: float = 1.0


@dataclass
class Config:
    weights: str = ""
    # fps of this model on an idle 2-core CPU, 1 thread, torch backend (README's bench): a run far below
    # it says the machine is busy (0: not measured, nothing said)
    reference_fps: float = 0.0
    model: ModelConfig = field(default_factory=ModelConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = ""  # where it was loaded from; not a YAML key

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("name")
        return d


_CHOICES = {"model.xcorr": ("plain", "normalized"),
            "track.scale_mode": ("pyramid", "exemplar"),
            "track.scale_filter": ("none", "dsst"),
            "model.input_norm": ("inception", "imagenet"),
            "model.fusion": ("none", "blocks"),
            "track.verifier.kind": ("rule", "classifier", "both", "guarded"),
            "train.loss": ("logistic", "contrastive", "triplet")}

# allowed ranges, as (wording, test, keys): a value outside them fails later, deep inside the model,
# the tracker or the training loop, with an error that no longer names the key
_RANGES = (
    ("> 0", lambda v: v > 0, {
        "model.out_scale", "track.exemplar_size", "track.search_size", "track.response_up",
        "track.scale_num", "track.scale_step", "track.min_size", "track.max_size_ratio", "track.lost_window",
        "track.dsst.scales",
        "track.dsst.interpolated", "track.dsst.step", "track.dsst.sigma", "track.dsst.model_area", "track.dsst.cell",
        "track.verifier.sidelobe_radius", "track.verifier.colour_bins", "track.redetect.tile_step",
        "track.redetect.after",
        "model.fusion_blocks", "track.warps.angle_max",
        "train.epochs", "train.batch_size", "train.lr_start", "train.lr_end", "train.max_gap",
        "train.positive_radius", "train.pairs_per_epoch", "train.log_interval"}),
    (">= 0", lambda v: v >= 0, {
        "reference_fps", "model.adjust", "model.exemplar_crop", "track.context", "track.lost_ratio", "track.lost_drop",
        "track.cpu_search_batch", "track.warps.angle_step", "track.redetect.tiles", "track.redetect.near_frames",
        "track.dsst.regularisation", "track.dsst.min_area", "train.margin",
        "train.weight_decay", "train.num_workers", "train.seed", "train.val_pairs", "train.translate",
        "train.backbone_lr"}),
    (">= 1", lambda v: v >= 1, {"track.warps.stretch_step", "track.warps.stretch_max"}),
    ("between 0 and 1", lambda v: 0 <= v <= 1, {
        "track.scale_penalty", "track.scale_lr", "track.window_influence", "track.dsst.learning_rate",
        "track.fusion_weight", "track.fusion_floor", "track.warps.penalty", "track.warps.box_lr",
        "track.verifier.threshold", "track.verifier.accept", "track.verifier.colour_rate", "track.verifier.onset_drop",
        "track.redetect.hold_drop", "track.redetect.hold_stay",
        "train.momentum", "train.val_fraction", "train.stretch", "train.color_jitter",
        "train.gray_prob"}),
)


def shipped_dir(kind: str) -> Path:
    """The packaged `configs` or `weights` folder.

    `pip install .` puts them inside the package (siamtrack/configs, siamtrack/weights: pyproject's
    package-dir); in a source checkout, and an editable install of one, they are the top-level folders.
    """
    package = Path(__file__).resolve().parent
    installed = package / kind
    return installed if installed.is_dir() else package.parent / kind


def shipped_configs() -> list[str]:
    """The names of the configs that ship with siamtrack."""
    return sorted(p.stem for p in shipped_dir("configs").glob("*.yaml"))


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A path to a YAML file, or the name of a shipped config (`siamfc_alexnet`)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    shipped = shipped_dir("configs") / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise ConfigError(f"no config named '{name_or_path}' (shipped: {', '.join(shipped_configs())})")
    return shipped


def _number_from_text(value: Any, typ: type) -> Any:
    """A number that YAML left as text, as an int or float field's value: YAML 1.1 reads `1e-3` (no dot)
    as a string. Anything else is returned as it is, for _coerce to accept or reject."""
    if typ not in (int, float) or not isinstance(value, str):
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    if typ is int:
        return int(number) if number.is_integer() else value
    return number


def _coerce(key: str, value: Any, typ: type) -> Any:
    value = _number_from_text(value, typ)
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not typ:
        raise ConfigError(f"config key '{key}' must be {typ.__name__}, got {value!r}")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError(f"config key '{key}' must be one of {'|'.join(_CHOICES[key])}, got {value!r}")
    if typ is float and not math.isfinite(value):
        raise ConfigError(f"config key '{key}' must be a finite number, got {value!r}")
    for wording, allowed, keys in _RANGES:
        if key in keys and not allowed(value):
            raise ConfigError(f"config key '{key}' must be {wording}, got {value!r}")
    return value


def _check_consistency(cfg: Config) -> None:
    """Rules between keys, checked once every value is in."""
    if cfg.track.search_size < cfg.track.exemplar_size:
        raise ConfigError(f"config key 'track.search_size' ({cfg.track.search_size}) must be at least "
                          f"'track.exemplar_size' ({cfg.track.exemplar_size})")
    for key in ("weights", "found_weights"):
        for cue, weight in getattr(cfg.track.verifier, key).items():
            if cue not in LOST_CUES:
                raise ConfigError(f"config key 'track.verifier.{key}' names an unknown cue '{cue}' (known: "
                                  f"{', '.join(LOST_CUES)})")
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise ConfigError(f"config key 'track.verifier.{key}.{cue}' must be a finite number, got {weight!r}")


def _fill(obj: Any, data: dict, prefix: str) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix.rstrip('.') or '(top)'}' must be a mapping")
    types = {f.name: f.type for f in dataclasses.fields(obj) if f.name != "name"}
    for key, value in data.items():
        full = prefix + str(key)
        if key not in types:
            raise ConfigError(f"unknown config key '{full}'")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _fill(current, value, full + ".")
        elif isinstance(current, dict) and isinstance(value, dict):  # a mapping of values: keys added or replaced
            setattr(obj, key, {**current, **value})
        else:
            setattr(obj, key, _coerce(full, value, type(current)))


def parse_override(text: str) -> tuple[list[str], Any]:
    """`track.window_influence=0.2` -> (['track', 'window_influence'], 0.2)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"override '{text}' must look like section.key=value")
    return key.strip().split("."), yaml.safe_load(value)


def config_from_dict(data: dict, overrides: Iterable[str] = (), name: str = "") -> Config:
    cfg = Config(name=name)
    _fill(cfg, data or {}, "")
    for text in overrides:
        keys, value = parse_override(text)
        nested: dict = {}
        node = nested
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
        _fill(cfg, nested, "")
    _check_consistency(cfg)
    return cfg


def _merge(base: dict, top: dict) -> dict:
    merged = dict(base)
    for key, value in top.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def read_config_dict(path: Path) -> dict:
    """The YAML mapping of a config file, on top of the config its `base:` key names, if any."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a YAML mapping")
    base = data.pop("base", None)
    return _merge(read_config_dict(resolve_config_path(base)), data) if base else data


def load_config(name_or_path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    """Load a shipped config by name or a YAML file by path, then apply `a.b=value` overrides."""
    path = resolve_config_path(name_or_path or DEFAULT_CONFIG)
    try:
        return config_from_dict(read_config_dict(path), overrides, name=str(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def resolve_weights_path(cfg: Config) -> Path | None:
    """The checkpoint a config names: a path as given if it exists, else a file in the shipped weights/."""
    if not cfg.weights:
        return None
    path = Path(cfg.weights)
    return path if path.is_file() or path.is_absolute() else shipped_dir("weights") / path
