"""PairDataset: item k of an epoch is a pair drawn and augmented with a generator seeded by (key, k).

Nothing depends on worker processes, ranks or the order items are read in, so an epoch is the
same in one process or many, and a resumed run sees exactly the pairs it would have seen.
"""
from __future__ import annotations

import os
import signal

import numpy as np
import torch
from torch.utils.data import Dataset

from ..datasets import Sequence
from ..errors import SiamtrackError
from ..inputs import read_rgb
from .pairs import pair_sources, sample_pair
from .transforms import PairTransform


class PairDataset(Dataset):
    def __init__(self, seqs: list[Sequence], length: int, max_gap: int, transform: PairTransform,
                 key: tuple[int, ...]):
        self.sources = pair_sources(seqs, max_gap)
        self.length = length
        self.max_gap = max_gap
        self.transform = transform
        self.key = key  # the trainer sets (seed, stream, epoch) before each epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([*self.key, index])
        seq, i, j = sample_pair(self.sources, self.max_gap, rng)
        return self.transform(read_rgb(seq.frames[i]), seq.boxes[i], read_rgb(seq.frames[j]), seq.boxes[j], rng)


def quiet_stop_signals(worker_id: int) -> None:
    """A DataLoader worker's start: Ctrl-C sent to the whole process group is left to the main process,
    which stops and shuts its workers down, and SIGTERM ends the worker with a clean exit. A worker killed
    by a signal would make torch print its own traceback under siamtrack's one-line "interrupted"; one
    that ignored SIGTERM would hang the shutdown of a process that terminates its workers (Python's exit)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))


def worker_error(exc: SiamtrackError) -> SiamtrackError:
    """A siamtrack error as it reads once raised in a DataLoader worker: torch re-raises it in the main
    process with the worker's traceback in its message, whose last line is `module.Type: message`."""
    lines = str(exc).strip().splitlines()
    return type(exc)(lines[-1].split(": ", 1)[-1]) if len(lines) > 1 else exc
