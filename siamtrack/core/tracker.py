"""SiamFCTracker: the tracking loop (scale pyramid, cosine window, damping, and optionally a DSST scale
filter), for one target or many at once, over a Model it shares with any other tracker; a verifier judges
each target lost or not and, with track.redetect, a lost target is held at its last confident box and searched
for (siamtrack.core.verifier, redetect). Knows nothing of training, evaluation or the command line."""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Iterable

import numpy as np
import torch

from ..config import Config
from ..errors import BoxError, ConfigError, FrameError, NotInitializedError, TargetError
from ..inputs import as_box_array, as_rgb, check_boxes, check_unique
from .backends import DEFAULT_BACKEND
from .crops import CropBatch, context_size, crop_and_resize
from .dsst import ScaleFilter
from .fusion import ResponseFusion
from .model import Model
from .redetect import Redetector
from .response import PeakFinder
from .targets import Targets
from .verifier import PeakMaps, Verifier

# update() in order; post: upsampling, peak search, box; size: the scale filters (track.scale_filter), if any
STAGES = ("crop", "backbone", "xcorr", "post", "size")


def untimed(stage: str) -> ContextManager:
    return nullcontext()


@dataclass(frozen=True)
class Answers:
    """Every tracked target's answers after the last call, in the order of `ids`, whatever init was given."""
    ids: np.ndarray  # N int64
    boxes: np.ndarray  # N x 4: x, y, w, h, 0-based px
    scores: np.ndarray  # N: the peak response of the last update (NaN before the first)
    lost: np.ndarray  # N bool: the last update judged the target lost (False before the first)


class SiamFCTracker:
    """SiamFC tracker: `init(frame, box)` once, then `update(frame)` for each frame.

    One target: `init(frame, (x, y, w, h))`; `update` returns its box, `score` is a float and `lost` a
    bool. Several: `init(frame, boxes)` with an N x 4 array (and optional `ids`); `update` returns the
    N x 4 boxes, and `score` and `lost` are arrays, all in the order of `ids`; `add` and `remove` change
    the targets between frames. Every target's search crops go through the network as one batch, their
    responses come from one grouped correlation, and the peak search and box update run over all
    targets at once; each target's boxes are those it would get tracked alone.

    `config`: a built Model to track with (siamtrack.core.model: built once, shared by any number of
    trackers; this tracker then holds only its targets and buffers), or what to build one from (Model.load):
    a shipped config name, a YAML path or a Config (default: the shipped default model, or the config a
    checkpoint stores when only `weights` is given), with `overrides` (`a.b=value`) applied.
    `weights`: a checkpoint path (default: the one the config names).
    `backend`: eager, torch, onnxruntime or onnxruntime-int8 (see siamtrack.core.backends); all but int8 give
    the same boxes. `siamtrack.evaluation.experiments.BenchmarkTracker` runs it in got10k's experiments.
    `quiet`: no status line on a terminal while the model builds (loading, tracing or calibrating takes seconds).
    `timer(stage)`: a context manager around each of update()'s STAGES, for a benchmark to time them.
    """

    is_deterministic = True

    def __init__(self, config: Model | str | Path | Config | None = None, weights: str | Path | None = None,
                 device: str = "auto", name: str = "SiamFC", backend: str = DEFAULT_BACKEND,
                 overrides: Iterable[str] = (), quiet: bool = False):
        model = config if isinstance(config, Model) else Model.load(config, weights, device, backend, overrides, quiet)
        if config is model and (weights is not None or device != "auto" or backend != DEFAULT_BACKEND
                                or tuple(overrides)):
            raise ConfigError("a tracker over a built Model takes its config, weights, device and backend from it: "
                              "give them to Model.load")
        self.model, self.name = model, name
        self.timer: Callable[[str], ContextManager] = untimed
        t = self.cfg.track
        self.fusion = ResponseFusion(t)  # one level's response, or two fused into one (model.fusion)
        offsets = np.arange(t.scale_num) - (t.scale_num - 1) / 2
        self.scale_factors = t.scale_step ** offsets
        # the pyramid on the search side (the paper): S search crops a target and one exemplar kernel;
        # on the exemplar side: one search crop and S kernels, cropped once in init at 1 / factor
        self.on_exemplar = t.scale_mode == "exemplar"
        self.kernels_per_target = t.scale_num if self.on_exemplar else 1
        self.crops_per_target = 1 if self.on_exemplar else t.scale_num
        self.peaks = PeakFinder(t, model.response_size, self.device)
        self.verifier = Verifier(t)
        self.redetector = Redetector(t, self.peaks, model.total_stride)
        self.tile_fusion = ResponseFusion(t, t.redetect.tiles)  # a lost target's tiles' levels, fused
        self._exemplar_crops = CropBatch(self.kernels_per_target, t.exemplar_size, self.device)
        self._search_crops: CropBatch | None = None  # made for the crops of the first update, and anew as they change
        self.targets: Targets | None = None  # set by init
        self.single = True  # init was given one box, not an N x 4 array: answers are one target's

    @property
    def cfg(self) -> Config:
        return self.model.cfg

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def weights_path(self) -> Path | None:
        return self.model.weights_path

    # --- targets

    @torch.inference_mode()
    def init(self, image, box, ids: Iterable[int] | None = None) -> None:
        """Start tracking one x, y, w, h box, or an N x 4 array of boxes (ids: 0 .. N-1 unless given)."""
        frame = as_rgb(image)
        boxes = as_box_array(box)
        ids = list(range(len(boxes))) if ids is None else [int(i) for i in ids]
        if len(ids) != len(boxes):
            raise TargetError(f"{len(ids)} ids for {len(boxes)} boxes")
        check_unique(ids)
        self.single = np.ndim(box) == 1
        self.frame_size = np.array([frame.shape[1], frame.shape[0]], dtype=np.float64)
        self.targets = None
        self._add_targets(frame, boxes, ids)

    @torch.inference_mode()
    def add(self, image, box, target_id: int | None = None) -> int:
        """Track one more target from this frame on; returns its id (the next free one unless given)."""
        frame = self._checked_frame(image)
        target_id = int(self.ids.max(initial=-1) + 1 if target_id is None else target_id)
        check_unique([*self.ids.tolist(), target_id])
        boxes = as_box_array(box)
        if len(boxes) != 1:
            raise BoxError(f"add takes one x, y, w, h box, got {len(boxes)}")
        self.single = False
        self._add_targets(frame, boxes, [target_id])
        return target_id

    def remove(self, target_id: int) -> None:
        """Stop tracking a target."""
        if self.targets is None or target_id not in self.ids:
            raise TargetError(f"no target {target_id} to remove (tracking {self.ids.tolist()})")
        self.targets = self.targets.keep(self.ids != target_id)
        self.single = False

    @property
    def ids(self) -> np.ndarray:
        """The tracked targets' ids, in the order of every array answer (empty before init)."""
        return self.targets.ids if self.targets is not None else np.zeros(0, dtype=np.int64)

    def _add_targets(self, frame: np.ndarray, boxes: np.ndarray, ids: list[int]) -> None:
        check_boxes(boxes, *self.frame_size.astype(int), None if self.single else ids)
        border = frame.reshape(-1, 3).mean(axis=0)  # the padding of this frame's crops: its mean colour
        for target_id, box in zip(ids, boxes):
            target = self._new_target(frame, target_id, box, border)
            self.targets = target if self.targets is None else self.targets + target

    def _new_target(self, frame: np.ndarray, target_id: int, box: np.ndarray, border: np.ndarray) -> Targets:
        """One target's state at its box: its exemplar kernels cut from the frame, its scale filter started."""
        t = self.cfg.track
        x, y, w, h = box
        center = np.array([x + w / 2, y + h / 2])
        # the size within the limits _clamp_state keeps, the frame winning: a box far under a pixel or
        # far past the frame would give an empty or endless exemplar crop and an overflowing scale
        w, h = np.minimum(np.maximum([w, h], t.min_size), t.max_size_ratio * self.frame_size)
        exemplar_side = context_size(w, h, t.context)
        sides = exemplar_side / self.scale_factors if self.on_exemplar else [exemplar_side]
        for crop, side in zip(self._exemplar_crops.host, sides):
            crop_and_resize(frame, *center, side, t.exemplar_size, tuple(float(c) for c in border), out=crop)
        scale_filter = None
        if t.scale_filter == "dsst" and w * h >= t.dsst.min_area:
            scale_filter = ScaleFilter(t.dsst)
            scale_filter.start(frame, center, np.array([w, h]))
        # copied: a backend may hand back the same buffers call after call
        kernels = tuple(k.clone() for k in self.model.backend.embed_exemplar(self._exemplar_crops.upload()))
        return Targets.start(target_id, center, np.array([w, h]), exemplar_side * t.search_size / t.exemplar_size,
                             border, kernels, scale_filter, t.lost_window,
                             self.verifier.colour_histogram(frame, np.array([*(center - [w / 2, h / 2]), w, h])))

    # --- one frame, in stages

    @torch.inference_mode()
    def update(self, image) -> np.ndarray:
        frame = self._checked_frame(image)
        if not len(self.targets):  # every target removed: nothing to look for
            return np.zeros((0, 4))
        s = self.targets
        searched = s.lost & self.redetector.on  # lost targets, searched for in tiles instead of tracked
        tracked, lost = np.flatnonzero(~searched), np.flatnonzero(searched)
        with self.timer("crop"):
            tiles = self.redetector.tile_centres(s, lost, self.frame_size)
            crops = self.search_crops(frame, tracked, lost, tiles)
        with self.timer("backbone"):
            features = self.model.backend.embed_search(crops)
        with self.timer("xcorr"):
            split = len(tracked) * self.crops_per_target
            levels = self.correlate(features, tracked, slice(0, split))
            tile_levels = self.correlate(features, lost, slice(split, None), tiles=True)
        with self.timer("post"):
            if len(tracked):
                self.step(frame, tracked, levels, tuple(f[:split] for f in features))
            if len(lost):
                self.search(frame, lost, tiles, tile_levels, tuple(f[split:] for f in features))
        with self.timer("size"):
            self.filter_sizes(frame)
        if self.redetector.on:
            s.remember_confident()
        return self.box()

    def _checked_frame(self, image) -> np.ndarray:
        """The frame as RGB, of the size init saw: the boxes and their limits are in that frame's pixels."""
        if self.targets is None:
            raise NotInitializedError("call init(frame, box) before update(frame)")
        frame = as_rgb(image)
        width, height = self.frame_size
        if frame.shape[:2] != (height, width):
            raise FrameError(f"a {frame.shape[1]}x{frame.shape[0]} frame, but the tracker was initialised on a "
                             f"{width:.0f}x{height:.0f} one; call init again for frames of another size")
        return frame

    def search_crops(self, frame: np.ndarray, tracked: np.ndarray, lost: np.ndarray, tiles: np.ndarray) -> torch.Tensor:
        """One batch, target by target: the search crops around each tracked target's centre (its scale pyramid,
        or one crop when the pyramid is on the exemplar side), then each lost target's tiles (track.redetect)."""
        t, s = self.cfg.track, self.targets
        factors = np.ones(1) if self.on_exemplar else self.scale_factors
        places = [(center, side * factors, border) for center, side, border
                  in zip(s.center[tracked], s.base_search[tracked] * s.scale[tracked], s.border[tracked])]
        places += [(centre, [side], border) for centres, side, border in
                   zip(tiles, self.redetector.sides(s)[lost], s.border[lost]) for centre in centres]
        count = sum(len(sides) for _, sides, _ in places)
        if self._search_crops is None or len(self._search_crops.host) != count:  # targets added, lost, found ...
            self._search_crops = CropBatch(count, t.search_size, self.device)
        crops = iter(self._search_crops.host)
        for center, sides, border in places:
            border = tuple(float(c) for c in border)
            for side in sides:
                crop_and_resize(frame, *center, side, t.search_size, border, out=next(crops))
        return self._search_crops.upload()

    def correlate(self, features: tuple[torch.Tensor, ...], rows: np.ndarray, crops: slice,
                  tiles: bool = False) -> tuple[torch.Tensor, ...] | None:
        """Level by level, the responses of the targets `rows` to their `crops` of the batch: each tracked
        target's search features against its own exemplar kernels, or each lost one's tiles against its kernel
        at scale 1. None for no targets."""
        if not len(rows):
            return None
        kernels = self.targets.kernels
        if tiles or len(rows) < len(self.targets):
            k = self.kernels_per_target
            picked = rows * k + k // 2 if tiles else (rows[:, None] * k + np.arange(k)).ravel()
            kernels = tuple(level[torch.from_numpy(picked).to(level.device)] for level in kernels)
        return self.model.backend.correlate(kernels, tuple(f[crops] for f in features))

    def step(self, frame: np.ndarray, rows: np.ndarray, levels: tuple[torch.Tensor, ...],
             features: tuple[torch.Tensor, ...]) -> None:
        """Move and rescale the tracked targets `rows` from the responses of their scale pyramids, and judge
        whether each is lost (with track.redetect, one judged lost goes back to its last confident box)."""
        t, s = self.cfg.track, self.targets
        responses = self.fusion(levels)
        scale_id, loc, score = self.peaks(responses, len(rows))
        displacement = self.peaks.displacement(loc, self.model.total_stride)
        search_side = s.base_search[rows] * s.scale[rows] * (1.0 if self.on_exemplar else self.scale_factors[scale_id])
        before = s.center[rows]
        s.center[rows] = before + displacement * (search_side / t.search_size)[:, None]
        s.scale[rows] = s.scale[rows] * ((1 - t.scale_lr) + t.scale_lr * self.scale_factors[scale_id])
        self._clamp_state()
        index = np.arange(len(rows))
        peaks = PeakMaps(responses, levels, features, s.kernels, loc, maps=index * t.scale_num + scale_id,
                         crops=index * self.crops_per_target + (scale_id if self.crops_per_target > 1 else 0),
                         kernel_rows=rows * self.kernels_per_target + (scale_id if self.kernels_per_target > 1 else 0))
        boxes = boxes_of(s)[rows]
        lost, cues = self.verifier.judge(frame, peaks, s.history(rows, score), boxes, s.colour_model[rows],
                                         np.hypot(*(s.center[rows] - before).T))
        s.colour_model[rows] = self.verifier.adapted_colours(frame, boxes, s.colour_model[rows], cues)
        if self.redetector.on:
            s.hold(rows[lost])
        s.judged(rows, score, lost, cues)

    def search(self, frame: np.ndarray, rows: np.ndarray, tiles: np.ndarray, levels: tuple[torch.Tensor, ...],
               features: tuple[torch.Tensor, ...]) -> None:
        """Look for the lost targets `rows` in their tiles: each one's best peak is a candidate, taken back (the
        target found there, at its last confident size) when the verifier says it is the target."""
        s = self.targets
        responses = self.tile_fusion(levels)
        tile, loc, score, candidate = self.redetector.best(responses, tiles, self.redetector.sides(s)[rows])
        held, s.center[rows] = s.center[rows], np.clip(candidate, 0, self.frame_size)
        maps = np.arange(len(rows)) * self.cfg.track.redetect.tiles + tile
        peaks = PeakMaps(responses, levels, features, s.kernels, loc, maps=maps, crops=maps,
                         kernel_rows=rows * self.kernels_per_target + self.kernels_per_target // 2)
        boxes = boxes_of(s)[rows]
        found, cues = self.verifier.accept(frame, peaks, s.history(rows, score), boxes, s.colour_model[rows])
        s.colour_model[rows] = self.verifier.adapted_colours(frame, boxes, s.colour_model[rows], cues)
        s.center[rows[~found]] = held[~found]
        s.judged(rows, score, ~found, cues)

    def filter_sizes(self, frame: np.ndarray) -> None:
        """Resize each target that has a DSST filter by its estimate at the target's new centre, then let the
        filter learn from the frame at the new box; with track.redetect, not a lost target, held where it was."""
        s = self.targets
        held = s.lost & self.redetector.on
        filtered = [(i, f) for i, f in enumerate(s.scale_filter) if f is not None and not held[i]]
        for i, scale_filter in filtered:
            s.scale[i] *= scale_filter.estimate(frame, s.center[i], s.base_size[i] * s.scale[i])
        if filtered:
            self._clamp_state()
        for i, scale_filter in filtered:
            scale_filter.learn(frame, s.center[i], s.base_size[i] * s.scale[i])

    def _clamp_state(self) -> None:
        """Keep each box at least min_size px and at most max_size_ratio of the frame, its centre inside."""
        t, s = self.cfg.track, self.targets
        low = np.maximum(t.min_size / s.base_size.min(axis=1), 1e-3)
        high = (t.max_size_ratio * self.frame_size / s.base_size).min(axis=1)
        # in a frame smaller than min_size the frame wins: the box never outgrows the image
        s.scale = np.clip(s.scale, np.minimum(low, high), high)
        s.center = np.clip(s.center, 0, self.frame_size)

    # --- answers: one target's as scalars, several targets' as arrays in the order of `ids`

    def _answer(self, per_target: Callable[[Targets], np.ndarray], before_init=None):
        """Per-target values as one target's (a scalar, or a row) or, for several, an array in the order of `ids`."""
        if self.targets is None:
            return before_init
        values = per_target(self.targets)
        if self.single:
            return values[0].item() if values.ndim == 1 else values[0]
        return values.copy()

    @property
    def score(self) -> float | np.ndarray:
        """Peak response of the last update (NaN before the first): the tracker's confidence."""
        return self._answer(lambda s: s.score, float("nan"))

    @property
    def lost(self) -> bool | np.ndarray:
        """Whether the last update judged the target lost (see _judge_lost); False before the first update."""
        return self._answer(lambda s: s.lost, False)

    def box(self) -> np.ndarray:
        """The last box (x, y, w, h), or for several targets the N x 4 boxes."""
        return self._answer(boxes_of)

    def answers(self) -> Answers:
        """Every target's answers as arrays, the same form for one target as for many."""
        if self.targets is None:
            raise NotInitializedError("call init(frame, box) before asking for answers")
        s = self.targets
        return Answers(s.ids.copy(), boxes_of(s), s.score.copy(), s.lost.copy())


def boxes_of(s: Targets) -> np.ndarray:
    """The targets' N x 4 boxes."""
    size = s.base_size * s.scale[:, None]
    return np.concatenate([s.center - size / 2, size], axis=1)
