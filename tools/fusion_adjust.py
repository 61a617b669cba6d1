"""Issue 22, item 3: does a small trained part on the fused default's shallow level help? A 1x1 conv + batch
norm on the trunk's own 40-channel level (the one `model.fusion: blocks` fuses), trained with SiamFC's
balanced logistic loss on pairs while the trunk stays frozen, its features computed once and cached, so
that a model trains on this CPU in a minute or two.

Protocol (the one fusion was chosen by): the 42 short clips of --pooled are dealt into K folds; each fold's
sequences are tracked by the fused default with an adjust trained on the other folds' pairs, so that every
sequence is scored by a part that never saw it; the long sequences of --long are tracked with an adjust
trained on every pooled clip. Beside each, the fused default as shipped (no adjust), on the same frames.
Also printed, per fold: on its held-out pairs, how often each response's peak lands on the target
(within train.positive_radius), for the deep level, the shallow level and the adjusted shallow level.
(The default's trunk was fine-tuned on train_mini, so the pooled figure flatters both rows alike.)

    OMP_NUM_THREADS=1 python tools/fusion_adjust.py --pooled ../shared/data/train_mini ../shared/data/train_more \
        --long ../shared/data/val_long
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from choose import summary
from cross_validate import deal_folds, track_sequences
from torch import nn
from tqdm import tqdm

from siamtrack import SiamFCTracker
from siamtrack.datasets import load_sequences
from siamtrack.evaluation.metrics import mean_curves, sequence_curves
from siamtrack.inputs import read_rgb
from siamtrack.models.siamese import centre_crop
from siamtrack.training.losses import label_maps, logistic_loss
from siamtrack.training.pairs import pair_sources, sample_pair
from siamtrack.training.transforms import PairTransform

CONFIG = "siamfc_lite0"


class AdjustedLevels(nn.Module):
    """A (deep, shallow) embedding with `adjust` applied to its shallow level."""

    def __init__(self, levels: nn.Module, adjust: nn.Module):
        super().__init__()
        self.levels = levels
        self.adjust = adjust

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        deep, shallow = self.levels(x)
        return deep, self.adjust(shallow)


def new_adjust(channels: int) -> nn.Module:
    """A 1x1 conv starting as the identity (so training starts from the shipped fusion) + batch norm."""
    conv = nn.Conv2d(channels, channels, 1, bias=False)
    nn.init.eye_(conv.weight[:, :, 0, 0])
    return nn.Sequential(conv, nn.BatchNorm2d(channels))


def pair_features(tracker: SiamFCTracker, seqs, pairs_per_seq: int, seed: int) -> dict[str, dict]:
    """Per sequence: the exemplar kernels and search features of both levels on `pairs_per_seq` augmented pairs
    (the training recipe's augmentation), and the target's offsets."""
    cfg = tracker.cfg
    levels = tracker.model.net  # its LevelNet, two levels (the eager backend runs it as it is)
    transform = PairTransform(cfg.track, cfg.train)
    crop = cfg.model.exemplar_crop
    out = {}
    for k, seq in enumerate(tqdm(seqs, desc="pair features")):
        rng = np.random.default_rng([seed, k])
        sources = pair_sources([seq], cfg.train.max_gap)
        z, x, offsets = zip(*(transform(read_rgb(s.frames[i]), s.boxes[i], read_rgb(s.frames[j]), s.boxes[j], rng)
                              for s, i, j in (sample_pair(sources, cfg.train.max_gap, rng)
                                              for _ in range(pairs_per_seq))))
        with torch.inference_mode():
            (zd, zs), (xd, xs) = (levels.embed_x(torch.stack(c).float()) for c in (z, x))
        out[seq.name] = {"zd": centre_crop(zd, crop), "zs": centre_crop(zs, crop), "xd": xd, "xs": xs,
                         "offsets": torch.stack(offsets)}
    return out


def cached_features(tracker: SiamFCTracker, seqs, pairs_per_seq: int, seed: int, cache: Path) -> dict[str, dict]:
    key = json.dumps([CONFIG, [str(Path(s.frames[0]).parent) for s in seqs], pairs_per_seq, seed])
    path = cache / f"features_{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"
    if path.is_file():
        return torch.load(path)
    features = pair_features(tracker, seqs, pairs_per_seq, seed)
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(features, path)
    return features


def joined(features: dict[str, dict], names: list[str], key: str) -> torch.Tensor:
    return torch.cat([features[n][key] for n in names])


def train_adjust(features: dict[str, dict], names: list[str], head: nn.Module, args) -> nn.Module:
    """The adjust trained on the named sequences' pairs: SGD (the training config's momentum and weight
    decay), exponential lr decay, balanced logistic loss."""
    torch.manual_seed(args.seed)
    zs, xs, offsets = (joined(features, names, k) for k in ("zs", "xs", "offsets"))
    adjust = new_adjust(zs.shape[1])
    optimizer = torch.optim.SGD(adjust.parameters(), lr=args.lr, momentum=args.train.momentum,
                                weight_decay=args.train.weight_decay)
    steps = args.epochs * ((len(zs) + args.batch - 1) // args.batch)
    decay = torch.optim.lr_scheduler.ExponentialLR(optimizer, (args.lr_end / args.lr) ** (1 / steps))
    adjust.train()
    for _ in range(args.epochs):
        for batch in torch.randperm(len(zs)).split(args.batch):
            scores = head(adjust(zs[batch]), adjust(xs[batch]))[:, 0]
            labels = label_maps(scores.shape[-1], offsets[batch], *args.grid)
            loss = logistic_loss(scores, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            decay.step()
    return adjust.eval()


def peak_hits(head: nn.Module, z: torch.Tensor, x: torch.Tensor, offsets: torch.Tensor, grid: tuple) -> float:
    """The share of pairs whose response peak lies within the positive radius of the target."""
    with torch.inference_mode():
        scores = head(z, x)[:, 0]
    labels = label_maps(scores.shape[-1], offsets, *grid)
    peak = scores.flatten(1).argmax(dim=1)
    return float(labels.flatten(1)[torch.arange(len(peak)), peak].mean())


def pair_check(features: dict[str, dict], names: list[str], head: nn.Module, adjust: nn.Module, grid: tuple) -> str:
    zd, xd, zs, xs, offsets = (joined(features, names, k) for k in ("zd", "xd", "zs", "xs", "offsets"))
    with torch.inference_mode():
        za, xa = adjust(zs), adjust(xs)
    hits = [peak_hits(head, *pair, offsets, grid) for pair in ((zd, xd), (zs, xs), (za, xa))]
    return "peak on target: deep {:.3f}, shallow {:.3f}, adjusted shallow {:.3f}".format(*hits)


def tracked_curves(seqs, adjust: nn.Module | None) -> list:
    """Each sequence's success curves tracked by the fused default, its shallow level adjusted or not."""
    tracker = SiamFCTracker(CONFIG, backend="eager", quiet=True)
    if adjust is not None:
        levels = tracker.model.net
        levels.embed_x = AdjustedLevels(levels.embed_x, adjust)
    return [sequence_curves(boxes, truth) for boxes, truth in track_sequences(tracker, seqs)]


def table_row(name: str, curves: list, base: list | None) -> str:
    mean = mean_curves(curves)
    row = f"| {name} | {mean.success_auc:.3f} / {mean.precision_score:.3f} |"
    if base is not None:
        aucs = (np.array([c.success_auc for c in run]) for run in (curves, base))
        row += f" {summary(*aucs)} |"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pooled", nargs="+", required=True, help="short clips: trained on and scored by fold")
    parser.add_argument("--long", nargs="*", default=[], help="long sequences: scored with an adjust trained on all")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=64, help="augmented pairs per sequence")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--lr-end", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/fusion_adjust"))
    parser.add_argument("--pairs-only", action="store_true", help="the pair check alone, no tracking")
    args = parser.parse_args()
    pooled = [s for root in args.pooled for s in load_sequences(root)]
    longs = [s for root in args.long for s in load_sequences(root)]
    tracker = SiamFCTracker(CONFIG, backend="eager", quiet=True)
    head = tracker.model.net.head.heads[1]  # the shallow level's
    args.grid = (float(tracker.model.total_stride), tracker.cfg.train.positive_radius)  # label cells: stride, radius
    args.train = tracker.cfg.train
    features = cached_features(tracker, pooled, args.pairs, args.seed, args.cache)
    names = sorted(features)
    folds = deal_folds(names, args.folds)
    adjusts = []
    for k, fold in enumerate(folds):
        adjusts.append(train_adjust(features, [n for n in names if n not in fold], head, args))
        print(f"fold {k} ({len(fold)} sequences): {pair_check(features, fold, head, adjusts[-1], args.grid)}",
              flush=True)
    if args.pairs_only:
        return
    by_name = {s.name: s for s in pooled}
    base = tracked_curves([by_name[n] for n in names], None)
    # one tracker a fold, its sequences in the pooled order again
    per_fold = [tracked_curves([by_name[n] for n in fold], adjust)
                for fold, adjust in zip(tqdm(folds, desc="held-out folds"), adjusts)]
    by_sequence = {n: c for fold, curves in zip(folds, per_fold) for n, c in zip(fold, curves)}
    adjusted = [by_sequence[n] for n in names]
    print("\n| pooled clips, fused default | success AUC / precision | AUC against shipped |\n|---|---|---|")
    print(table_row("shipped (no adjust)", base, None) + " |")
    print(table_row("adjust trained on the other folds", adjusted, base))
    if longs:
        adjust = train_adjust(features, names, head, args)
        base, adjusted = tracked_curves(longs, None), tracked_curves(longs, adjust)
        print("\n| val_long, fused default | success AUC / precision | AUC against shipped |\n|---|---|---|")
        print(table_row("shipped (no adjust)", base, None) + " |")
        print(table_row("adjust trained on every pooled clip", adjusted, base))
        print("\n| sequence | shipped | adjusted |\n|---|---|---|")
        for seq, b, a in zip(longs, base, adjusted):
            print(f"| {seq.name} | {b.success_auc:.3f} | {a.success_auc:.3f} |")


if __name__ == "__main__":
    main()
