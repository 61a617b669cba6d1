"""SiamFCTracker: the tracking loop (scale pyramid, cosine window, damping, and optionally a DSST scale
filter), for one target or many at once, over a Model it shares with any other tracker; each target judged lost
or not and, with track.redetect, a lost one held at its last confident box and searched for
(siamtrack.core.lost_and_found). Knows nothing of training, evaluation or the command line."""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Callable, ContextManager, Iterable

import numpy as np
import torch

from ..config import Config
from ..errors import BoxError, ConfigError, FrameError, NotInitializedError, TargetError
from ..inputs import as_box_array, as_rgb, check_boxes, check_unique
from .backends import DEFAULT_BACKEND
from .crops import CropBatch, context_size, cut_crops
from .dsst import ScaleFilter
from .fusion import ResponseFusion
from .lost_and_found import LostAndFound
from .model import Model
from .response import PeakFinder
from .target_state import export_state, import_state
from .targets import Answers, Targets, boxes_of
from .verifier import PeakMaps
from .warps import ExemplarWarps

# update() in order; post: upsampling, peak search, box; size: the scale filters (track.scale_filter), if any
STAGES = ("crop", "backbone", "xcorr", "post", "size")


def untimed(stage: str) -> ContextManager:
    return nullcontext()


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
        self.peaks = PeakFinder(model.grid)
        self.warps = ExemplarWarps(t.warps) if ExemplarWarps.wanted(t.warps) else None  # turned, stretched kernels
        # each target's exemplar kernels: its scales', each in every warp of the bank (track.warps)
        self.kernel_rows = (self.warps.size if self.warps else 1) * self.kernels_per_target
        self.lost_found = LostAndFound(t, self.peaks, model.total_stride, self.warps, self.kernels_per_target,
                                       self.kernel_rows)
        self._exemplar_crops: CropBatch | None = None  # made by the first init, with the other buffers
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
        self._resize_buffers()

    def export_target(self, target_id: int) -> dict:
        """One target's state as JSON-safe values (siamtrack.core.target_state): a tracker over the same model
        goes on tracking it from there with import_target, in this process or another."""
        if self.targets is None or target_id not in self.ids:
            raise TargetError(f"no target {target_id} to export (tracking {self.ids.tolist()})")
        return export_state(self.targets.keep(self.ids == target_id), self.frame_size, self.model.name)

    def import_target(self, state: dict) -> int:
        """Track the target an export_target state describes, under its id, from the next update on; returns
        the id. Its frames are the size of the frames it was exported on, as every target's here must be."""
        target, frame_size = import_state(state, self.model.name, self.cfg, self.kernel_rows, self.device)
        tracking = self.targets is not None and len(self.targets) > 0
        if tracking and not np.array_equal(frame_size, self.frame_size):
            raise FrameError(f"a target state of {frame_size[0]:.0f}x{frame_size[1]:.0f} frames, but this tracker's "
                             f"targets are in {self.frame_size[0]:.0f}x{self.frame_size[1]:.0f} ones")
        check_unique([*(self.ids.tolist() if tracking else []), int(target.ids[0])])
        self.frame_size, self.single = frame_size, False
        self.targets = target if not tracking else self.targets + target
        self._resize_buffers()
        return int(target.ids[0])

    @property
    def ids(self) -> np.ndarray:
        """The tracked targets' ids, in the order of every array answer (empty before init)."""
        return self.targets.ids if self.targets is not None else np.zeros(0, dtype=np.int64)

    def _add_targets(self, frame: np.ndarray, boxes: np.ndarray, ids: list[int]) -> None:
        check_boxes(boxes, *self.frame_size.astype(int), None if self.single else ids)
        if self._exemplar_crops is None:
            self._exemplar_crops = CropBatch(self.kernel_rows, self.cfg.track.exemplar_size, self.device)
        border = frame.reshape(-1, 3).mean(axis=0)  # the padding of this frame's crops: its mean colour
        for target_id, box in zip(ids, boxes):
            target = self._new_target(frame, target_id, box, border)
            self.targets = target if self.targets is None else self.targets + target
        self._resize_buffers()

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
        if self.warps:  # the bank: every warp at every side
            self.warps.crops(frame, center, sides, t.exemplar_size, tuple(float(c) for c in border),
                             self._exemplar_crops.host)
        else:
            cut_crops(frame, [(center, sides, border)], t.exemplar_size, self._exemplar_crops.host)
        scale_filter = None
        if t.scale_filter == "dsst" and w * h >= t.dsst.min_area:
            scale_filter = ScaleFilter(t.dsst)
            scale_filter.start(frame, center, np.array([w, h]))
        colours = self.lost_found.verifier.colour_histogram(frame, np.array([*(center - [w / 2, h / 2]), w, h]))
        return Targets.start(target_id, center, np.array([w, h]), exemplar_side * t.search_size / t.exemplar_size,
                             border, self._exemplar_kernels(), scale_filter, t.lost_window, colours,
                             self.warps.start if self.warps else np.zeros(2, dtype=np.int64))

    def _exemplar_kernels(self) -> tuple[torch.Tensor, ...]:
        """Each level's kernels of the exemplar crops just cut, copied: a backend may hand back the same buffers
        call after call."""
        return tuple(k.clone() for k in self.model.backend.embed_exemplar(self._exemplar_crops.upload()))

    def _resize_buffers(self) -> None:
        """Crop and upsampling buffers for the targets tracked now (made anew as targets are lost and found)."""
        targets = max(len(self.targets), 1)
        self._search_crops = CropBatch(targets * self.crops_per_target, self.cfg.track.search_size, self.device)
        self.peaks.resize(targets)

    # --- one frame, in stages

    @torch.inference_mode()
    def update(self, image) -> np.ndarray:
        frame = self._checked_frame(image)
        if not len(self.targets):  # every target removed: nothing to look for
            return np.zeros((0, 4))
        s, found = self.targets, self.lost_found
        tracked, lost = found.split(s)  # lost targets searched for in tiles, instead of tracked
        with self.timer("crop"):
            tiles = found.tile_centres(s, lost, self.frame_size)
            crops = self.search_crops(frame, tracked, lost, tiles)
        with self.timer("backbone"):
            features = self.model.backend.embed_search(crops)
        split = len(tracked) * self.crops_per_target  # the tracked targets' crops, then the lost ones' tiles
        tracked_features, tile_features = tuple(f[:split] for f in features), tuple(f[split:] for f in features)
        with self.timer("xcorr"):
            responses, levels = self.respond(tracked_features, tracked)
            tile_levels = found.correlate_tiles(self.model.backend, s, lost, tile_features)
        with self.timer("post"):
            if len(tracked):
                self.step(frame, tracked, responses, levels, tracked_features)
            if len(lost):
                found.search(frame, s, lost, tiles, tile_levels, tile_features, self.frame_size)
        with self.timer("size"):
            self.filter_sizes(frame)
        found.after_update(s)
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
        places += self.lost_found.tile_places(s, lost, tiles)
        count = sum(len(sides) for _, sides, _ in places)
        if len(self._search_crops.host) != count:  # targets lost or found again
            self._search_crops = CropBatch(count, t.search_size, self.device)
        cut_crops(frame, places, t.search_size, self._search_crops.host)
        return self._search_crops.upload()

    def respond(self, features: tuple[torch.Tensor, ...], rows: np.ndarray) \
            -> tuple[torch.Tensor | None, tuple[torch.Tensor, ...]]:
        """The targets `rows`' responses (their search features against their own exemplar's), the levels' fused
        into one (model.fusion), and level by level; with track.warps, at the warp of each target's bank that
        answers best, which the target then takes. None and no levels for no targets."""
        if not len(rows):
            return None, ()
        s = self.targets
        kernels = s.kernels if len(rows) == len(s) else s.kernels_of(rows)  # some lost, searched for in tiles

        def correlate(kernels: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
            levels = self.model.backend.correlate(kernels, features)
            return self.fusion(levels), *levels

        if self.warps is None:
            responses, *levels = correlate(kernels)
        else:
            (responses, *levels), positions = self.warps.respond(s.warp[rows], kernels, correlate)
            self.warps.follow(s, rows, positions)
        return responses, tuple(levels)

    def step(self, frame: np.ndarray, rows: np.ndarray, responses: torch.Tensor, levels: tuple[torch.Tensor, ...],
             features: tuple[torch.Tensor, ...]) -> None:
        """Move and rescale the tracked targets `rows` from the responses of their scale pyramids, and judge
        whether each is lost (siamtrack.core.lost_and_found)."""
        t, s = self.cfg.track, self.targets
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
                         kernel_rows=self.lost_found.kernel_row(s, rows, scale_id if self.on_exemplar else 0))
        self.lost_found.judge(frame, s, rows, peaks, score, np.hypot(*(s.center[rows] - before).T))

    def filter_sizes(self, frame: np.ndarray) -> None:
        """Resize each target that has a DSST filter by its estimate at the target's new centre, then let the
        filter learn from the frame at the new box; with track.redetect, not a lost target, held where it was."""
        s = self.targets
        held = self.lost_found.held(s)
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
        """Whether the last update judged the target lost (siamtrack.core.lost_and_found); False before the first
        update."""
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
