"""The search for lost targets (`track.redetect`): where each lost target's search crops go this frame, and the
best peak they hold.

A lost target gets `tiles` search crops a frame, each the size of its search crop at its last confident
size, searched with the window off (any place in a tile is as likely as its centre). One always sits at its
last confident place (a target hidden for a while comes back where it went); for `near_frames` frames the
others go round it, `tile_step` search-crop sides away; then over the whole frame, on a grid of that step,
nearest first and round after round. The cost a frame is `tiles` crops, however large the frame: the whole
frame takes more frames to cover, not more time per frame.
"""
from __future__ import annotations

import numpy as np
import torch

from ..config import TrackConfig
from .response import BicubicUpsampler, PeakFinder
from .targets import Targets

# the 8 places around the last confident one, in search-crop steps, in the order they are tried
RING = np.array([(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1), (-1, 1), (1, -1)], dtype=np.float64)


def frame_grid(frame_size: np.ndarray, step: float, centre: np.ndarray) -> np.ndarray:
    """Centres of tiles `step` px apart covering the frame, the nearest to `centre` first."""
    counts = np.maximum(np.ceil(frame_size / step), 1).astype(int)
    xs, ys = ((np.arange(n) + 0.5) * size / n for n, size in zip(counts, frame_size))
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    return grid[np.argsort(np.hypot(*(grid - centre).T), kind="stable")]


class Redetector:
    def __init__(self, track: TrackConfig, peaks: PeakFinder, total_stride: int):
        self.track = track
        self.cfg = track.redetect
        self.peaks = peaks  # the tracker's: its upsampling size and its peak-to-offset rule
        self.total_stride = total_stride
        self._upsampler: BicubicUpsampler | None = None  # for the lost targets' tiles of the last frame
        self._maps = 0  # the maps it holds

    @property
    def on(self) -> bool:
        """Whether lost targets are searched for (and held at their last confident box meanwhile)."""
        return self.cfg.tiles > 0

    def sides(self, s: Targets) -> np.ndarray:
        """Each target's search-crop side at its last confident size, px."""
        return s.base_search * s.confident_scale

    def tile_centres(self, s: Targets, rows: np.ndarray, frame_size: np.ndarray) -> np.ndarray:
        """len(rows) x tiles x 2: where the lost targets `rows`' tiles go this frame."""
        tiles, near = self.cfg.tiles, self.cfg.near_frames
        centres = np.zeros((len(rows), tiles, 2))
        for i, (centre, side, frames) in enumerate(zip(s.confident_center[rows], self.sides(s)[rows],
                                                       s.lost_frames[rows])):
            step = self.cfg.tile_step * side
            others = np.arange(tiles - 1)
            if frames <= near:
                places = centre + RING[(frames * (tiles - 1) + others) % len(RING)] * step
            else:
                grid = frame_grid(frame_size, step, centre)
                places = grid[((frames - near) * (tiles - 1) + others) % len(grid)]
            centres[i] = np.concatenate([centre[None], places])
        return np.clip(centres, 0, frame_size)

    def best(self, responses: torch.Tensor, tiles: np.ndarray, sides: np.ndarray) \
            -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per lost target, from its tiles' maps (targets * tiles, target by target; `tiles` their centres,
        `sides` their sides): the tile of the highest peak, the peak's index in its upsampled map, its value
        (the score), and the place in the frame it puts the target's centre."""
        targets, peaks = len(tiles), self.peaks
        count = targets * self.cfg.tiles
        if self._upsampler is None or self._maps != count:
            self._upsampler = BicubicUpsampler(peaks.grid.rows, peaks.grid.cols, count)
            self._maps = count
        value, index = self._upsampler(responses).view(targets, -1).max(dim=1)
        per_tile = peaks.upscale_size ** 2
        found = torch.stack([(index // per_tile).float(), (index % per_tile).float(), value]).cpu().numpy()
        tile, loc = found[0].astype(np.int64), found[1].astype(np.int64)
        offset = peaks.displacement(loc, self.total_stride) * (sides / self.track.search_size)[:, None]
        return tile, loc, found[2].astype(np.float64), tiles[np.arange(targets), tile] + offset
