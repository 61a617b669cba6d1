"""Lost and found: whether each tracked target is lost after its update (siamtrack.core.verifier), and, with
`track.redetect`, a lost target held at its last confident box and searched for in tiles, taken back where the
verifier says its best peak there is the target (siamtrack.core.redetect). The tracker's part of a frame that
concerns lost targets, batched with the tracked ones, over rows of its Targets."""
from __future__ import annotations

import numpy as np
import torch

from ..config import TrackConfig
from .fusion import ResponseFusion
from .redetect import Redetector
from .response import PeakFinder
from .targets import Targets, boxes_of
from .verifier import PeakMaps, Verifier
from .warps import ExemplarWarps


class LostAndFound:
    """One tracker's. Each target has `kernels_per_target` exemplar kernels (its exemplar-side scales) at each warp
    of its bank (`warps`, None without track.warps): `kernel_rows` in all."""

    def __init__(self, track: TrackConfig, peaks: PeakFinder, total_stride: int, warps: ExemplarWarps | None,
                 kernels_per_target: int, kernel_rows: int):
        self.track = track
        self.verifier = Verifier(track)
        self.redetector = Redetector(track, peaks, total_stride)
        self.tile_fusion = ResponseFusion(track, track.redetect.tiles)  # a lost target's tiles' levels, fused
        self.warps = warps
        self.kernels_per_target = kernels_per_target
        self.kernel_rows = kernel_rows  # a target's, in Targets.kernels: kernels_per_target at each warp

    @property
    def searching(self) -> bool:
        """Whether lost targets are searched for (and held at their last confident box meanwhile)."""
        return self.redetector.on

    def held(self, s: Targets) -> np.ndarray:
        """Per target, whether it is held at its last confident box and searched for (track.redetect): lost for
        `after` updates in a row and, with `hold_drop`, since an abrupt fall of its peak (with `hold_stay`, one it has
        not come back up from)."""
        abrupt = s.abrupt if self.track.redetect.hold_drop else True
        return s.lost & (s.lost_frames >= self.track.redetect.after) & abrupt & self.searching

    def split(self, s: Targets) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the targets tracked this frame, and of those searched for in tiles instead."""
        searched = self.held(s)
        return np.flatnonzero(~searched), np.flatnonzero(searched)

    def kernel_row(self, s: Targets, rows: np.ndarray, scale: np.ndarray | int) -> np.ndarray:
        """Each of the targets `rows`' kernel (its row in Targets.kernels) at its current warp and the exemplar-side
        scale `scale` (0 with the pyramid on the search side)."""
        warp = self.warps.index(s.warp[rows]) if self.warps else 0
        return rows * self.kernel_rows + warp * self.kernels_per_target + scale

    def tile_centres(self, s: Targets, rows: np.ndarray, frame_size: np.ndarray) -> np.ndarray:
        return self.redetector.tile_centres(s, rows, frame_size)

    def tile_sides(self, s: Targets, rows: np.ndarray) -> np.ndarray:
        return self.redetector.sides(s)[rows]

    def tile_places(self, s: Targets, rows: np.ndarray, tiles: np.ndarray) -> list:
        """The lost targets `rows`' search crops, target by target (siamtrack.core.crops.cut_crops' places)."""
        return [(centre, [side], border) for centres, side, border in zip(tiles, self.tile_sides(s, rows), s.border[rows])
                for centre in centres]

    def correlate_tiles(self, backend, s: Targets, rows: np.ndarray,
                        features: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...] | None:
        """Level by level, the responses of the lost targets `rows`' tiles (`features`, target by target) to each
        one's kernel at scale 1 and its current warp. None for no targets."""
        if not len(rows):
            return None
        picked = torch.from_numpy(self.kernel_row(s, rows, self.kernels_per_target // 2))
        return backend.correlate(tuple(level[picked.to(level.device)] for level in s.kernels), features)

    def judge(self, frame: np.ndarray, s: Targets, rows: np.ndarray, peaks: PeakMaps, score: np.ndarray,
              moved: np.ndarray) -> None:
        """Whether each of the tracked targets `rows`, just moved to its peak (`moved` px), is lost; with
        track.redetect, one judged lost goes back to its last confident box."""
        boxes, history = boxes_of(s)[rows], s.history(rows, score)
        lost, cues = self.verifier.judge(frame, peaks, history, boxes, s.colour_model[rows], moved)
        s.colour_model[rows] = self.verifier.adapted_colours(frame, boxes, s.colour_model[rows], ~lost)
        redetect = self.track.redetect
        down = history.below_recent(redetect.hold_stay) if redetect.hold_stay else True
        s.judged(rows, score, lost, cues, dropped=history.dropped(redetect.hold_drop), down=down)
        s.hold(rows[self.held(s)[rows]])

    def search(self, frame: np.ndarray, s: Targets, rows: np.ndarray, tiles: np.ndarray,
               levels: tuple[torch.Tensor, ...], features: tuple[torch.Tensor, ...], frame_size: np.ndarray) -> None:
        """Look for the lost targets `rows` in their tiles: each one's best peak is a candidate, taken back (the
        target found there, at its last confident size) when the verifier says it is the target."""
        responses = self.tile_fusion(levels)
        tile, loc, score, candidate = self.redetector.best(responses, tiles, self.tile_sides(s, rows))
        held, s.center[rows] = s.center[rows], np.clip(candidate, 0, frame_size)
        maps = np.arange(len(rows)) * self.track.redetect.tiles + tile
        peaks = PeakMaps(responses, levels, features, s.kernels, loc, maps=maps, crops=maps,
                         kernel_rows=self.kernel_row(s, rows, self.kernels_per_target // 2))
        boxes = boxes_of(s)[rows]
        found, cues = self.verifier.accept(frame, peaks, s.history(rows, score), boxes, s.colour_model[rows])
        s.colour_model[rows] = self.verifier.adapted_colours(frame, boxes, s.colour_model[rows], found)
        s.center[rows[~found]] = held[~found]
        s.judged(rows, score, ~found, cues)

    def after_update(self, s: Targets) -> None:
        """With track.redetect, the boxes of the targets not lost now are the ones to hold them at once they are."""
        if self.searching:
            s.remember_confident()
