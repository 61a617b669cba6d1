"""Memory over one long sequence run as `siamtrack eval` runs a job: a clip looped to 10,000 frames.

    python tools/long_sequence_rss.py --source ../shared/data/otb_mini/Crossing --frames 10000

Lays the clip's frames out again and again (symbolic links) as one OTB-layout sequence in a temporary
folder, then runs one evaluation job on it (siamtrack.evaluation.benchmark.Benchmark.track: got10k's loop, the
frames read a few ahead as the tracker consumes them) and prints this process's resident memory (RSS)
after init, every --every frames, and at the end. Flat means no frame, box or time is held beyond a few
frames. Minutes long: not a unit test.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from siamtrack.datasets import OTB_GT_GLOB, load_sequences
from siamtrack.errors import SiamtrackError
from siamtrack.evaluation.benchmark import open_benchmark
from siamtrack.evaluation.registry import build_tracker, resolve_trackers
from siamtrack.process import use_threads
from siamtrack.spec import TrackerSpec

MIB = 2 ** 20
DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "otb_mini" / "Crossing"


def rss_mib() -> float:
    """This process's resident memory now, from Linux's /proc."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


class RssSampler:
    """A tracker that samples RSS after init and every `every` updates, then passes the call on."""

    def __init__(self, tracker, every: int):
        self.tracker, self.every = tracker, every
        self.is_deterministic = getattr(tracker, "is_deterministic", True)
        self.samples: list[tuple[int, float, float]] = []  # (frames done, RSS MiB, seconds since init)
        self.updates, self.started = 0, 0.0

    def init(self, frame, box) -> None:
        self.tracker.init(frame, box)
        self.started = time.perf_counter()
        self.samples.append((1, rss_mib(), 0.0))

    def update(self, frame) -> np.ndarray:
        box = self.tracker.update(frame)
        self.updates += 1
        if (self.updates + 1) % self.every == 0:
            self.samples.append((self.updates + 1, rss_mib(), time.perf_counter() - self.started))
        return box


def looped_sequence(source: Path, frames: int, folder: Path) -> Path:
    """An OTB-layout sequence of `frames` frames, the source's frames linked over and over; its ground
    truth repeats the first box (only the first is used: the job tracks, nothing is scored)."""
    clip = load_sequences(source)[0]
    sequence = folder / f"{clip.name}_x{frames}"
    (sequence / "img").mkdir(parents=True)
    for index in range(frames):
        frame = clip.frames[index % len(clip.frames)]
        (sequence / "img" / f"{index + 1:05d}{frame.suffix}").symlink_to(frame.absolute())
    first = ",".join(f"{v:g}" for v in clip.to_source(clip.boxes[:1])[0])
    (sequence / OTB_GT_GLOB.replace("*", "")).write_text((first + "\n") * frames)
    return sequence.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="an OTB-layout sequence to loop")
    parser.add_argument("--frames", type=int, default=10_000, help="frames in the looped sequence")
    parser.add_argument("--tracker", default="siamfc_lite0_fast", help="as `eval --trackers` takes one")
    parser.add_argument("--every", type=int, default=1000, help="frames between two RSS samples")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads, as one eval job has")
    args = parser.parse_args()
    use_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="long_sequence_") as folder:
        root = looped_sequence(args.source, args.frames, Path(folder))
        benchmark = open_benchmark("otb", root, Path(folder) / "out")
        (label, spec), = resolve_trackers([args.tracker], TrackerSpec(device="cpu")).items()
        sampler = RssSampler(build_tracker(label, spec), args.every)
        files = benchmark.track(sampler, label, 0)
    boxes = next(data for name, data in files.items() if "time" not in name).count(b"\n")
    print(f"{args.tracker} on {args.source.name} looped to {args.frames} frames ({boxes} boxes written), "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.2f}")
    print("frames  RSS MiB  seconds")
    for done, rss, seconds in sampler.samples:
        print(f"{done:6d}  {rss:7.1f}  {seconds:7.1f}")
    first, last = sampler.samples[0][1], sampler.samples[-1][1]
    print(f"RSS after init {first:.1f} MiB, at the end {last:.1f} MiB ({last - first:+.1f} MiB)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SiamtrackError as exc:
        sys.exit(f"long_sequence_rss: error: {exc}")
