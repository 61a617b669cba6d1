"""Process-group plumbing: torchrun's environment, or N local processes spawned by `launch`."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..process import use_threads

LOCALHOST = "127.0.0.1"


@dataclass
class DistEnv:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Only the main process writes checkpoints, logs and the progress bar."""
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> DistEnv:
        """Join the process group torchrun (or `launch`) described in the environment, if any."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        env = cls(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
        if device.type == "cuda":
            torch.cuda.set_device(env.local_rank)
        else:
            # processes on one machine share its cores; more threads each would only contend
            use_threads(max(1, (os.cpu_count() or 1) // world))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=env.rank, world_size=world)
        return env

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over all processes (the tensor itself when alone)."""
        if self.world > 1:
            dist.all_reduce(values)
        return values

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


def _worker(rank: int, nproc: int, port: int, fn: Callable, args: tuple) -> None:
    os.environ.update(MASTER_ADDR=LOCALHOST, MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(nproc), LOCAL_RANK=str(rank))
    fn(*args)


def launch(nproc: int, fn: Callable, *args) -> None:
    """Run fn(*args) in `nproc` local processes forming one process group (what torchrun does)."""
    mp.spawn(_worker, args=(nproc, _free_port(), fn, args), nprocs=nproc, join=True)
