"""How fast siamtrack tracks under each CPU thread setting while other processes hold the cores.

For 0, 1 and 3 busy processes (each a spinning Python loop), every setting tracks the same real frames
in a fresh process, settings interleaved, and the fps of each is printed beside the best of its row:

    python tools/thread_policy.py --sequence ../shared/data/otb_mini/Crossing --config siamfc_lite0_fast

A setting is threads T with OpenMP's wait policy as given (ACTIVE threads spin while they wait for
work, PASSIVE ones sleep). The default siamtrack uses is the one that never falls far behind the best.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
from tqdm import tqdm

SETTINGS = (("1", "ACTIVE"), ("2", "ACTIVE"), ("1", "PASSIVE"), ("2", "PASSIVE"))
BUSY = (0, 1, 3)
SPIN = "while True: pass"
# one run: build the tracker, track the frames, print fps over the updates (the first few left out: warm-up)
TRACK = """
import sys, time
from siamtrack import TrackerSpec
from siamtrack.datasets import load_sequences
from siamtrack.inputs import read_rgb
from siamtrack.process import use_threads
use_threads(int(sys.argv[4]))
seq = load_sequences(sys.argv[1])[0]
frames = [read_rgb(p) for p in seq.frames[:int(sys.argv[2])]]
tracker = TrackerSpec(sys.argv[3], device="cpu").build()
tracker.init(frames[0], seq.boxes[0])
for frame in frames[1:4]:
    tracker.update(frame)
start = time.perf_counter()
for frame in frames[4:]:
    tracker.update(frame)
print(len(frames[4:]) / (time.perf_counter() - start))
"""


def track_fps(args: argparse.Namespace, threads: str, policy: str) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    done = subprocess.run([sys.executable, "-c", TRACK, args.sequence, str(args.frames), args.config, threads],
                          env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def measure(args: argparse.Namespace) -> dict[int, dict[tuple[str, str], list[float]]]:
    results = {busy: {setting: [] for setting in SETTINGS} for busy in BUSY}
    with tqdm(total=len(BUSY) * args.repeats * len(SETTINGS), unit="run", file=sys.stderr) as bar:
        for busy in BUSY:
            spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(busy)]
            try:
                time.sleep(1.0)  # let the load settle
                for _ in range(args.repeats):
                    for setting in SETTINGS:
                        results[busy][setting].append(track_fps(args, *setting))
                        bar.update()
            finally:
                for spinner in spinners:
                    spinner.kill()
    return results


def table(results: dict[int, dict[tuple[str, str], list[float]]]) -> str:
    lines = ["| busy processes | " + " | ".join(f"{t} thread{'s' * (t != '1')}, {p}" for t, p in SETTINGS) + " |",
             "|---" * (len(SETTINGS) + 1) + "|"]
    for busy, row in results.items():
        medians = {setting: float(np.median(fps)) for setting, fps in row.items()}
        best = max(medians.values())
        lines.append(f"| {busy} | " + " | ".join(f"{fps:.1f} ({fps / best:.2f})" for fps in medians.values()) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequence", required=True, help="a real sequence folder (OTB, VOT or GOT-10k layout)")
    parser.add_argument("--config", default="siamfc_lite0_fast", help="shipped config name or YAML path")
    parser.add_argument("--frames", type=int, default=80, help="frames tracked per run (default 80)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per setting and load (default 2)")
    args = parser.parse_args()
    print(f"{args.config} on {args.sequence}, {args.frames} frames, median fps of {args.repeats} runs "
          f"(share of the row's best); {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    print(table(measure(args)))


if __name__ == "__main__":
    main()
