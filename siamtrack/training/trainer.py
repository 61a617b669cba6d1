"""The training loop: SGD with an exponential lr over the epochs, per-epoch validation and checkpoints.

A run folder holds last.pt (every epoch, everything needed to resume), best.pt (lowest validation
loss), metrics.jsonl and curves.png. Both checkpoints load straight into SiamFCTracker(weights=...).
A run stopped mid-epoch (Ctrl-C, SIGTERM) saves last.pt where it stopped, and --resume goes on from that
pair: an epoch's pairs are fixed by (seed, epoch, index), so the resumed run sees the pairs it would have
(a stop that lands inside an optimizer step may count that one batch twice).
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from ..config import Config, load_config
from ..core.checkpoint import checkpoint_config, load_checkpoint, save_checkpoint
from ..datasets import Sequence, load_many
from ..errors import ConfigError, SiamtrackError
from ..inputs import resolve_device
from ..models import SiameseNet
from .data import PairDataset, quiet_stop_signals, worker_error
from .distributed import DistEnv
from .history import MetricsLog, plot_loss_curves
from .losses import PairLoss
from .optim import build_optimizer, freeze_backbones
from .pairs import pair_sources, split_validation
from .progress import ESTIMATE_AFTER, RunClock, duration
from .transforms import PairTransform

TRAIN_STREAM, VAL_STREAM = 0, 1  # keep training and validation pairs from different generators
LAST, BEST, METRICS, CURVES = "last.pt", "best.pt", "metrics.jsonl", "curves.png"


class EmbedPair(nn.Module):
    """Both embeddings in one forward, so DistributedDataParallel sees every weight used."""

    def __init__(self, net: SiameseNet):
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.embed_exemplar(z), self.net.embed_search(x)


def split_sequences(data: list[Path], val_fraction: float, seed: int) -> tuple[list[Sequence], list[Sequence]]:
    """(train, validation) sequences of every root in `data`."""
    return split_validation(load_many(data), val_fraction, seed)


def open_run(out: Path, resume: bool) -> dict | None:
    """The checkpoint to resume from, or None for a new run in a folder that holds none yet.

    A new run's folder is made by its first write, once everything it needs has been read: a run
    that fails on bad input leaves no empty folder behind.
    """
    last = out / LAST
    if resume:
        _check_resumable(out)
        return load_checkpoint(last)
    if last.exists():
        raise ConfigError(f"{out} already holds a run ({LAST}); resume it or choose another output folder")
    return None


def run_config(out: str | Path, config: str | Path | None, overrides: list[str], resume: bool) -> Config:
    """A new run's config: the named one. A resumed run's: the one stored in its checkpoint, whatever
    `config` says, so repeating the original command with resume continues the same run.

    `overrides` apply on top either way. The lr schedule is fixed when a run starts: more epochs
    on resume keep decaying the lr past train.lr_end.
    """
    if not resume:
        return load_config(config, overrides)
    _check_resumable(Path(out))
    last = Path(out) / LAST
    return checkpoint_config(load_checkpoint(last), last, overrides)


def _check_resumable(out: Path) -> None:
    """A one-line error saying what to do when `out` holds no run to resume."""
    if not (out / LAST).exists():
        what = "does not exist" if not out.exists() else f"holds no {LAST}: the run stopped before it saved one"
        raise ConfigError(f"nothing to resume: {out} {what}; start the run again without --resume")


def check_run(cfg: Config, data: list[str | Path], out: str | Path, resume: bool) -> None:
    """Raise the errors a run would meet at its start, before processes are launched for it."""
    open_run(Path(out), resume)
    train_seqs, _ = split_sequences([Path(d) for d in data], cfg.train.val_fraction, cfg.train.seed)
    pair_sources(train_seqs, cfg.train.max_gap)


class Trainer:
    def __init__(self, cfg: Config, data: list[Path], out: Path, resume: bool, device: torch.device,
                 env: DistEnv, progress: bool):
        self.cfg, self.t, self.out, self.env, self.device = cfg, cfg.train, Path(out), env, device
        self.progress = progress and env.main
        # every rank reads the folder before DistributedDataParallel's first sync, so before rank 0 writes to it
        ckpt = open_run(self.out, resume)
        train_seqs, val_seqs = split_sequences(data, self.t.val_fraction, self.t.seed)
        transform = PairTransform(cfg.track, self.t)
        self.train_set = PairDataset(train_seqs, self.t.pairs_per_epoch, self.t.max_gap, transform, ())
        self.val_set = (PairDataset(val_seqs, self.t.val_pairs, self.t.max_gap, transform, (self.t.seed, VAL_STREAM))
                        if val_seqs else None)
        torch.manual_seed(self.t.seed)  # the same initial weights on every rank and every run
        # resuming, the checkpoint supplies every weight: no need to fetch ImageNet ones first
        self.net = SiameseNet(replace(cfg.model, pretrained=False) if ckpt else cfg.model)
        self.frozen = freeze_backbones(self.net) if self.t.freeze_backbone else []
        self.net.to(device)
        self.optimizer, self.scheduler = build_optimizer(self.net, self.t)
        self.amp = self.t.amp and device.type == "cuda"
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp)
        self.loss = PairLoss(self.t, self.net.total_stride, self.net.head)
        pair = EmbedPair(self.net)
        self.model = pair if env.world == 1 else DistributedDataParallel(
            pair, device_ids=[device.index] if device.type == "cuda" else None)
        self.epoch, self.step, self.best_val = 0, 0, float("inf")
        self.epoch_pairs = 0  # of the epoch under way, trained on so far (a run stopped mid-epoch resumes there)
        self.epoch_sum = torch.zeros(2, device=device)  # its loss x pairs, pairs
        self.log = MetricsLog(self.out / METRICS, env.main)
        if ckpt is not None:
            self._restore(ckpt)
        else:
            if env.main:
                self.out.mkdir(parents=True, exist_ok=True)
            self.log.write("start", train_sequences=[s.name for s in train_seqs],
                           val_sequences=[s.name for s in val_seqs], world=env.world)

    def _restore(self, ckpt: dict) -> None:
        self.net.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.step, self.best_val = ckpt["epoch"], ckpt["step"], ckpt["best_val"]
        self.epoch_pairs = ckpt.get("epoch_pairs", 0)  # older checkpoints were written at epochs' ends only
        self.epoch_sum = ckpt.get("epoch_sum", torch.zeros(2)).to(self.device)
        torch.set_rng_state(ckpt["rng"]["torch"])
        if self.device.type == "cuda" and ckpt["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        self.log.write("resume", epoch=self.epoch, step=self.step)

    def run(self) -> SiameseNet:
        per_epoch = self._own_pairs(self.train_set) + self._own_pairs(self.val_set)
        self.clock = RunClock((self.t.epochs - self.epoch) * per_epoch - self.epoch_pairs)
        while self.epoch < self.t.epochs:
            lr = self.optimizer.param_groups[0]["lr"]
            started = time.perf_counter()
            try:
                train_loss = self._train_epoch()
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM: keep what the epoch has learnt so far
                self._save_stopped()
                raise
            train_seconds = time.perf_counter() - started
            val_loss = self._validate()
            self.scheduler.step()
            self.epoch, self.epoch_pairs = self.epoch + 1, 0
            self.epoch_sum = torch.zeros(2, device=self.device)
            self._save(val_loss)  # before the log row: a logged epoch is always a saved one
            self.log.write("epoch", epoch=self.epoch, step=self.step, lr=lr, train_loss=train_loss,
                           val_loss=val_loss, seconds=round(time.perf_counter() - started, 2),
                           pairs_per_s=round(self.t.pairs_per_epoch / train_seconds, 2))
        if self.env.main:
            plot_loss_curves(self.out / METRICS, self.out / CURVES)
        return self.net

    def _own_pairs(self, dataset: PairDataset | None) -> int:
        """The pairs of `dataset` this process handles per epoch (a DistributedSampler's share)."""
        return 0 if dataset is None else math.ceil(len(dataset) / self.env.world)

    def _loader(self, dataset: PairDataset | Subset) -> DataLoader:
        sampler = DistributedSampler(dataset, self.env.world, self.env.rank, shuffle=False) if self.env.world > 1 else None
        return DataLoader(dataset, self.t.batch_size, sampler=sampler, num_workers=self.t.num_workers,
                          pin_memory=self.device.type == "cuda", worker_init_fn=quiet_stop_signals)

    def _set_train_mode(self) -> None:
        self.net.train()
        for module in self.frozen:  # frozen batch norm keeps its pretrained statistics
            module.eval()

    def _forward_loss(self, batch) -> torch.Tensor:
        z, x, offsets = (b.to(self.device, non_blocking=True) for b in batch)
        with torch.autocast(self.device.type, enabled=self.amp):
            fz, fx = self.model(z.float(), x.float())
        return self.loss(fz, fx, offsets)

    def _train_epoch(self) -> float:
        self._set_train_mode()
        self.train_set.key = (self.t.seed, TRAIN_STREAM, self.epoch)
        interval_sum = torch.zeros(2, device=self.device)
        postfix = {}
        rest = Subset(self.train_set, range(self.epoch_pairs, len(self.train_set)))  # all, unless resumed mid-epoch
        with tqdm(total=self._own_pairs(self.train_set), initial=self.epoch_pairs, unit="pair",
                  desc=f"epoch {self.epoch + 1}/{self.t.epochs}", disable=not self.progress) as bar:
            interval_start = step_start = time.perf_counter()
            for batch in self._loader(rest):
                stats = self._train_step(batch)
                pairs = len(batch[0])
                self.epoch_pairs += pairs
                self.epoch_sum += stats
                interval_sum += stats
                if self.step % self.t.log_interval == 0:
                    postfix["loss"] = f"{self._log_interval(interval_sum, interval_start):.4f}"
                    interval_sum.zero_()
                    interval_start = time.perf_counter()
                self.clock.step(pairs, time.perf_counter() - step_start)
                step_start = time.perf_counter()
                self._show_progress(bar, pairs, postfix)
        total = self.env.sum(self.epoch_sum.clone())
        return (total[0] / total[1]).item()

    def _train_step(self, batch) -> torch.Tensor:
        """One optimizer step; returns (loss x pairs, pairs) for the running sums."""
        loss = self._forward_loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        pairs = len(batch[0])
        return torch.stack([loss.detach() * pairs, torch.tensor(float(pairs), device=self.device)])

    def _log_interval(self, interval_sum: torch.Tensor, started: float) -> float:
        """Write the interval's metrics row; returns its mean loss."""
        loss_sum, pairs = self.env.sum(interval_sum).tolist()
        rate = pairs / (time.perf_counter() - started)
        self.log.write("step", epoch=self.epoch + 1, step=self.step, loss=loss_sum / pairs,
                       lr=self.optimizer.param_groups[0]["lr"], pairs_per_s=round(rate, 2))
        return loss_sum / pairs

    def _show_progress(self, bar: tqdm, pairs: int, postfix: dict) -> None:
        """Advance the bar by a step's pairs; from the second step on, with the time the run still needs."""
        left = self.clock.seconds_left()
        if left is not None:
            postfix["run"] = f"{duration(left)} left"
        bar.set_postfix(postfix, refresh=False)
        bar.update(pairs)
        if self.progress and left is not None and self.clock.steps == ESTIMATE_AFTER:
            bar.write(f"training at {self.clock.pairs_per_s * self.env.world:.2f} pairs/s: about {duration(left)} "
                      f"left for the run ({self.t.epochs} x {self.t.pairs_per_epoch} training + "
                      f"{self.t.val_pairs if self.val_set else 0} validation pairs)", file=sys.stderr)

    @torch.no_grad()
    def _validate(self) -> float | None:
        if self.val_set is None:
            return None
        self.net.eval()
        total = torch.zeros(2, device=self.device)
        self.clock.validated(self._own_pairs(self.val_set))
        for batch in self._loader(self.val_set):
            total += torch.stack([self._forward_loss(batch) * len(batch[0]),
                                  torch.tensor(float(len(batch[0])), device=self.device)])
        total = self.env.sum(total)
        return (total[0] / total[1]).item()

    def _save(self, val_loss: float | None) -> None:
        if not self.env.main:
            return
        improved = val_loss is None or val_loss < self.best_val
        if improved and val_loss is not None:
            self.best_val = val_loss
        save_checkpoint(self._state(), self.out / LAST)
        if improved:
            save_checkpoint(self._state(), self.out / BEST)

    def _save_stopped(self) -> None:
        """last.pt where a stopped epoch got to, so that --resume goes on from there. One process only: the
        processes of a distributed run stop at different steps, so they resume from their last whole epoch."""
        if self.env.world == 1 and self.epoch_pairs:
            self.out.mkdir(parents=True, exist_ok=True)
            save_checkpoint(self._state(), self.out / LAST)
            self.log.write("stopped", epoch=self.epoch + 1, step=self.step, epoch_pairs=self.epoch_pairs)

    def _state(self) -> dict:
        return {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "epoch": self.epoch, "step": self.step, "best_val": self.best_val,
                "epoch_pairs": self.epoch_pairs, "epoch_sum": self.epoch_sum.cpu(),
                "config": self.cfg.to_dict(),
                "rng": {"torch": torch.get_rng_state(),
                        "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else []}}


def train(cfg: Config, data: list[str | Path], out: str | Path, resume: bool = False, device: str = "auto",
          progress: bool = True) -> SiameseNet:
    """Train (or resume) a run in `out` on the sequences under the `data` roots; returns the network.

    Under torchrun (or `launch`) every process calls this; they train one model with
    DistributedDataParallel, each on its share of every epoch's pairs.
    """
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None:  # one GPU per local process
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    env = DistEnv.from_env(dev)
    try:
        return Trainer(cfg, [Path(d) for d in data], Path(out), resume, dev, env, progress).run()
    except SiamtrackError as exc:  # e.g. a damaged frame met by a data worker: one line, naming the file
        raise worker_error(exc) from None
    finally:
        env.close()
