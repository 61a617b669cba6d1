"""Whether a target is lost: today's rule on the response's peak, or a small classifier on cues that tell a
look-alike or a background from the target (`track.verifier`).

The cues of a peak (siamtrack.config.LOST_CUES), each a number per target:
- score_vs_first: the peak over the first update's peak;
- score_vs_recent: the peak over the median of the last `track.lost_window` peaks not judged lost;
- sidelobe: the highest response farther than `sidelobe_radius` cells from the peak, over the peak (the map's
  minimum as zero): near 1 where a second object answers as strongly (a look-alike);
- sharpness: how many standard deviations of the map the peak stands above its mean;
- level_agreement: with two levels of features (model.fusion), the lower of the two levels' own
  (min-max scaled) responses at the peak: a jump one level does not follow; 1 with one level;
- cosine: the cosine between the exemplar's deep features and the search features under the peak: the
  score without the search patch's own strength (a bright texture scores high against anything);
- colour: the Bhattacharyya coefficient of the box's colour histogram and the target's colour model (the first
  box's, moved `colour_rate` towards its box's at each update that judged it tracked: adapted_colours);
- jump: how far the box moved this frame, in its sides.

The classifier is logistic: p(failed) = sigmoid(bias + sum of weight x cue), its weights in the config,
learnt by tools/lost_signal.py on cached cues of train_mini + train_more (their long-term versions, absent
frames known) with folds by sequence. A tracked target is lost at p >= threshold (with `onset_drop`, only from
an abrupt drop of its peak on: a loss begins with one, a turn does not); a lost target's candidate
(siamtrack.core.redetect) is taken back at p < accept (its own found classifier's, where the config has one).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch

from ..config import LOST_CUES, TrackConfig
from .targets import ScoreHistory

CUE_LIMIT = 100.0  # every cue is clipped to +-this: a degenerate map (flat, or of one sign) gives no endless vote


@dataclass
class PeakMaps:
    """Where N peaks were found: the response maps (fused, and level by level), the search features and the
    kernels of a batch, which of them each peak's are, and the peak's index in its upsampled map."""
    fused: torch.Tensor  # M x 1 x r x r
    levels: tuple[torch.Tensor, ...]  # per level of features, M x 1 x r x r
    features: tuple[torch.Tensor, ...]  # per level, crops x C x H x W
    kernels: tuple[torch.Tensor, ...]  # per level, kernels x C x h x w
    loc: np.ndarray  # N: each peak's index in its upsampled map
    maps: np.ndarray  # N: each peak's map
    crops: np.ndarray  # N: the crop its map came from
    kernel_rows: np.ndarray  # N: the kernel its map came from

    def keep(self, kept: np.ndarray) -> PeakMaps:
        """The peaks where the boolean mask `kept` is true, over the same maps, features and kernels."""
        return replace(self, loc=self.loc[kept], maps=self.maps[kept], crops=self.crops[kept],
                       kernel_rows=self.kernel_rows[kept])


def raw_cell(loc: np.ndarray, up: int, size: int) -> np.ndarray:
    """The response cell (row, column) nearest to each index of an upsampled map (x up, align_corners=False)."""
    rows_cols = np.stack([loc // (size * up), loc % (size * up)], axis=1)
    return np.clip(np.round((rows_cols + 0.5) / up - 0.5), 0, size - 1).astype(np.int64)


def scaled_at(maps: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """Each map's value at its cell, min-max scaled to 0-1 over the map."""
    flat = maps.flatten(1)
    low, high = flat.amin(dim=1), flat.amax(dim=1)
    at = maps[torch.arange(len(maps)), cell[:, 0], cell[:, 1]]
    return (at - low) / (high - low).clamp_min(torch.finfo(maps.dtype).tiny)


class Verifier:
    def __init__(self, track: TrackConfig):
        self.track = track
        self.cfg = track.verifier
        # guarded: the rule judges a tracked target lost, and a candidate is taken back where the rule and the
        # classifier agree (the classifier only guards the search: a tracked target is never flagged by it)
        self.classifier = self.cfg.kind in ("classifier", "both")
        self.rule = self.cfg.kind in ("rule", "both", "guarded")
        self.guard = self.cfg.kind in ("classifier", "both", "guarded")  # the classifier weighs candidates
        # a found classifier of the config's own, learnt on candidates, takes them back without the rule
        self.found_alone = self.guard and bool(self.cfg.found_weights)
        self.weights = np.array([float(self.cfg.weights.get(cue, 0.0)) for cue in LOST_CUES])
        # a candidate's p(not the target): its own classifier where the config has one, else the lost one's
        found = self.cfg.found_weights or self.cfg.weights
        self.found_weights = np.array([float(found.get(cue, 0.0)) for cue in LOST_CUES])
        self.found_bias = self.cfg.found_bias if self.cfg.found_weights else self.cfg.bias

    # --- the target's colours

    def colour_histogram(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The normalised colour histogram of the box's pixels inside the frame, read on a grid of at most
        about 64 x 64 of them: its cost stays the same whatever the box's size."""
        bins = self.cfg.colour_bins
        height, width = frame.shape[:2]
        x0, y0 = np.clip(np.floor(box[:2]).astype(int), 0, [width - 1, height - 1])
        x1, y1 = np.clip(np.ceil(box[:2] + box[2:]).astype(int), [x0 + 1, y0 + 1], [width, height])
        step = max(1, int(max(x1 - x0, y1 - y0) // 64))
        patch = np.ascontiguousarray(frame[y0:y1:step, x0:x1:step])
        hist = cv2.calcHist([patch], [0, 1, 2], None, [bins] * 3, [0, 256] * 3).ravel()
        return hist / max(hist.sum(), 1.0)

    def adapted_colours(self, frame: np.ndarray, boxes: np.ndarray, models: np.ndarray,
                        tracked: np.ndarray) -> np.ndarray:
        """The targets' colour models, each moved `colour_rate` towards its box's colours where `tracked` says
        the update judged it tracked (a tracked target not judged lost, a candidate taken back); the others,
        and all with a rate of 0, as they were. Histograms are read only where one moves."""
        rate = self.cfg.colour_rate
        if not rate or not tracked.any():
            return models
        adapted = models.copy()
        for row in np.flatnonzero(tracked):
            adapted[row] = (1 - rate) * models[row] + rate * self.colour_histogram(frame, boxes[row])
        return adapted

    def colour_agreement(self, frame: np.ndarray, boxes: np.ndarray, models: np.ndarray) -> np.ndarray:
        """The Bhattacharyya coefficient of each box's colours and its target's model (1: the same)."""
        return np.array([np.sqrt(self.colour_histogram(frame, box) * model).sum() for box, model in zip(boxes, models)])

    # --- judgements

    def judge(self, frame: np.ndarray, peaks: PeakMaps, history: ScoreHistory, boxes: np.ndarray,
              colour_models: np.ndarray, moved: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Whether each tracked target is lost at its peak, and the cues that said so (None for the rule).
        `boxes`: where the peaks put them; `moved`: the centres' shift this frame, px."""
        if not self.classifier:
            return self.verdict(history), None
        read = self.counted(history)  # the cues are read only where the classifier's word counts (NaN elsewhere)
        cues = np.full((len(boxes), len(LOST_CUES)), np.nan)
        if read.any():
            cues[read] = self.cues(frame, peaks.keep(read), history.keep(read), boxes[read], colour_models[read],
                                   moved[read])
        return self.verdict(history, self.failed_probability(cues)), cues

    def verdict(self, history: ScoreHistory, failed: np.ndarray | None = None) -> np.ndarray:
        """Whether each tracked target is lost: by the rule, or by the classifier's p(failed) `failed` where it
        counts (from an abrupt drop of the peak on, with track.verifier.onset_drop)."""
        lost = self.rule_lost(history) if self.rule else np.zeros(len(history.score), dtype=bool)
        if failed is None:
            return lost
        return lost | ((failed >= self.cfg.threshold) & self.counted(history))

    def counted(self, history: ScoreHistory) -> np.ndarray:
        """Per tracked target, whether the classifier's word counts: at every update, or with onset_drop where the
        peak fell under onset_drop x the last update's (NaN, the first update: no drop) or the last update judged
        the target lost."""
        if not self.cfg.onset_drop:
            return np.ones(len(history.score), dtype=bool)
        return history.was_lost | history.dropped(self.cfg.onset_drop)

    def accept(self, frame: np.ndarray, peaks: PeakMaps, history: ScoreHistory, boxes: np.ndarray,
               colour_models: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Whether each lost target's candidate (its best peak in its tiles) is the target, taken back, and its
        cues. A candidate has not moved the box: its jump counts as none. A found classifier of its own (learnt
        on candidates, their score among its cues) judges alone; the rule, whose recent scores are those from
        before the loss, joins the lost classifier standing in for one."""
        ruled = ~self.rule_lost(history) if self.rule and not self.found_alone else np.ones(len(boxes), dtype=bool)
        if not self.guard:
            return ruled, None
        cues = self.cues(frame, peaks, history, boxes, colour_models, np.zeros(len(boxes)))
        return ruled & (logistic(self.found_bias + cues @ self.found_weights) < self.cfg.accept), cues

    def rule_lost(self, history: ScoreHistory) -> np.ndarray:
        """The rule: the score under lost_ratio x the target's first update's (a slow drift onto background) or
        under lost_drop x the median of its recent scores (a sudden loss: hidden, or out of the frame). Both
        are ratios of the target's own scores: a model's scale drops out. A factor of 0 turns its part off."""
        t, score = self.track, history.score
        recent = history.recent_median()
        drifted = (t.lost_ratio > 0) & (score < t.lost_ratio * history.reference)
        dropped = (t.lost_drop > 0) & (score < t.lost_drop * recent)  # NaN (no history yet): never
        return drifted | dropped

    def failed_probability(self, cues: np.ndarray) -> np.ndarray:
        """The lost classifier's p(failed) of each row of cues."""
        return logistic(self.cfg.bias + cues @ self.weights)

    # --- cues

    def cues(self, frame: np.ndarray, peaks: PeakMaps, history: ScoreHistory, boxes: np.ndarray,
             colour_models: np.ndarray, moved: np.ndarray) -> np.ndarray:
        """N x len(LOST_CUES): each peak's cues (siamtrack.config.LOST_CUES, in that order)."""
        device = peaks.fused.device
        size = peaks.fused.shape[-1]
        maps = torch.from_numpy(peaks.maps).to(device)
        cell = torch.from_numpy(raw_cell(peaks.loc, self.track.response_up, size)).to(device)
        fused = peaks.fused[maps, 0]
        rows = torch.arange(len(cell), device=device)
        at = fused[rows, cell[:, 0], cell[:, 1]]
        flat = fused.flatten(1)
        low = flat.amin(dim=1)
        yy, xx = torch.meshgrid(torch.arange(size, device=device), torch.arange(size, device=device), indexing="ij")
        far = (yy[None] - cell[:, 0, None, None]) ** 2 + (xx[None] - cell[:, 1, None, None]) ** 2 \
            > self.cfg.sidelobe_radius ** 2
        second = torch.where(far, fused, torch.full_like(fused, -torch.inf)).flatten(1).amax(dim=1)
        tiny = torch.finfo(fused.dtype).tiny
        sidelobe = torch.where(torch.isfinite(second), (second - low) / (at - low).clamp_min(tiny), torch.zeros_like(at))
        sharpness = (at - flat.mean(dim=1)) / flat.std(dim=1).clamp_min(tiny)
        agreement = torch.stack([scaled_at(level[maps, 0], cell) for level in peaks.levels]).amin(dim=0)
        found = torch.stack([sidelobe, sharpness, agreement, cosine(peaks, cell)]).cpu().numpy().astype(np.float64)
        recent = history.recent_median()
        values = {
            "score_vs_first": history.score / history.reference,
            "score_vs_recent": np.where(np.isnan(recent), 1.0, history.score / recent),
            "sidelobe": found[0], "sharpness": found[1], "level_agreement": found[2], "cosine": found[3],
            "colour": self.colour_agreement(frame, boxes, colour_models),
            "jump": moved / np.sqrt(np.prod(boxes[:, 2:], axis=1)),
        }
        return np.clip(np.stack([values[cue] for cue in LOST_CUES], axis=1), -CUE_LIMIT, CUE_LIMIT)


def logistic(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z), never overflowing."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def cosine(peaks: PeakMaps, cell: torch.Tensor) -> torch.Tensor:
    """Per peak, the cosine of the deep level's kernel and the search features it lay on at the peak."""
    features, kernels = peaks.features[0], peaks.kernels[0]
    h, w = kernels.shape[-2:]
    windows = torch.stack([features[crop, :, r:r + h, c:c + w] for crop, (r, c) in zip(peaks.crops, cell.tolist())])
    picked = kernels[torch.from_numpy(peaks.kernel_rows).to(kernels.device)]
    dot = (windows * picked).flatten(1).sum(dim=1)
    norms = windows.flatten(1).norm(dim=1) * picked.flatten(1).norm(dim=1)
    return dot / norms.clamp_min(torch.finfo(dot.dtype).tiny)
