"""What a person waits for, and what the backend holds, when Label Studio asks `siamtrack label-studio` to
track a video (README, 'Annotating video'; docs/annotating.md).

    python tools/label_studio_timing.py wait --sequence ../shared/data/otb_mini/Car1 --config siamfc_lite0
    python tools/label_studio_timing.py rss --frames 1000 10000 --config siamfc_lite0_fast

`wait`: the sequence's frames as an H.264 video, one box (its first ground-truth box) saved as a person's
annotation, then the seconds Label Studio's "Retrieve predictions" request takes (Label Studio waiting for the
backend: download, decode, track, answer, store), and the same box drawn interactively.
`rss`: synthetic videos (siamtrack.synthetic, 640x360) of each length, tracked one after another by one
backend; its resident memory sampled every second and its high-water mark after each. Memory that does not
grow with the video's length is bounded by the frames in flight.

A real Label Studio in its own venv (tests/label_studio_harness.py: .venv-label-studio, which .ci/run
makes), on 127.0.0.1, started and stopped here. Minutes long: not a test.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from label_studio_harness import Backend, LabelStudio, encode_video  # noqa: E402

from siamtrack.integrations.videorectangle import to_percent  # noqa: E402
from siamtrack.synthetic import clip_frames  # noqa: E402

FPS = 30.0
PREDICT_TIMEOUT_S = 3600  # Label Studio's own default (100 s) would give up on a long video
SAMPLE_EVERY_S = 1.0


def region(frame: int, box, width: int, height: int) -> dict:
    keyframe = {"frame": frame, "enabled": True, "rotation": 0, **to_percent(np.asarray(box), width, height)}
    return {"id": "target", "from_name": "box", "to_name": "video", "type": "videorectangle",
            "value": {"sequence": [keyframe], "labels": ["Target"]}}


def sequence_video(sequence: Path, folder: Path) -> tuple[Path, np.ndarray, tuple[int, int], int]:
    """An OTB sequence as an mp4: the video, its first box (0-based), the frame size and the frame count."""
    import cv2
    frames = sorted((sequence / "img").glob("*.jpg"))
    for index, frame in enumerate(frames, 1):
        (folder / f"{index:04d}.jpg").symlink_to(frame.resolve())
    height, width = cv2.imread(str(frames[0])).shape[:2]
    first = np.loadtxt(sequence / "groundtruth_rect.txt", delimiter=",", max_rows=1, ndmin=2)[0] - [1, 1, 0, 0]
    return encode_video(folder / "%04d.jpg", folder / f"{sequence.name}.mp4", FPS), first, (width, height), len(frames)


def synthetic_video(frames: int, folder: Path) -> tuple[Path, np.ndarray]:
    """The synthetic clip `frames` long, piped frame by frame into ffmpeg (never all in memory)."""
    video = folder / f"synthetic{frames}.mp4"
    encoder = subprocess.Popen(["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
                                "640x360", "-r", f"{FPS:g}", "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                                str(video)], stdin=subprocess.PIPE)
    first = None
    for frame, box in clip_frames(frames):
        first = box if first is None else first
        encoder.stdin.write(frame.tobytes())
    encoder.stdin.close()
    if encoder.wait():
        raise SystemExit("ffmpeg could not encode the synthetic video")
    return video, np.array(first, dtype=np.float64)


def rss_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def wait(args, folder: Path) -> None:
    video, first, (width, height), count = sequence_video(Path(args.sequence), folder)
    with LabelStudio(folder, PREDICT_TIMEOUT_S) as label_studio, \
            Backend(label_studio, folder, "--config", args.config) as backend:
        project, ml_backend = label_studio.video_project(FPS, backend.url)
        task = label_studio.upload(project, video)
        label_studio.api("POST", f"/api/tasks/{task}/annotations", {"result": [region(1, first, width, height)]})
        waited = label_studio.retrieve_predictions(project, task)
        print(f"{count} frames ({width}x{height}), {args.config}: Label Studio waited {waited:.1f} s for the "
              f"prediction ({count / waited:.1f} frames a second)")
        started = time.perf_counter()
        label_studio.api("POST", f"/api/ml/{ml_backend}/interactive-annotating",
                         {"task": task, "context": {"result": [region(1, first, width, height)]}})
        print(f"  the same box drawn interactively: {time.perf_counter() - started:.1f} s")
        print("  backend: " + " | ".join(line for line in backend.log.read_text().splitlines() if "tracked" in line))


def rss(args, folder: Path) -> None:
    videos = [(frames, *synthetic_video(frames, folder)) for frames in args.frames]
    with LabelStudio(folder, PREDICT_TIMEOUT_S) as label_studio, \
            Backend(label_studio, folder, "--config", args.config) as backend:
        project, _ = label_studio.video_project(FPS, backend.url)
        pid = backend.process.pid
        print(f"backend started: RSS {rss_mib(pid, 'VmRSS'):.0f} MiB")
        for frames, video, first in videos:
            task = label_studio.upload(project, video)
            label_studio.api("POST", f"/api/tasks/{task}/annotations", {"result": [region(1, first, 640, 360)]})
            samples: list[float] = []
            done = threading.Event()

            def sample():
                while not done.wait(SAMPLE_EVERY_S):
                    samples.append(rss_mib(pid, "VmRSS"))

            sampler = threading.Thread(target=sample)
            sampler.start()
            waited = label_studio.retrieve_predictions(project, task)
            done.set()
            sampler.join()
            quarters = [f"{np.percentile(samples, q):.0f}" for q in (0, 25, 50, 75, 100)] if samples else []
            print(f"{frames} frames ({video.stat().st_size >> 20} MiB mp4), {args.config}: {waited:.0f} s; backend "
                  f"RSS while tracking (min/25/50/75/max) {'/'.join(quarters)} MiB; high-water mark "
                  f"{rss_mib(pid, 'VmHWM'):.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    waiting = sub.add_parser("wait", help="the seconds Label Studio waits for a sequence's prediction")
    waiting.add_argument("--sequence", required=True, help="an OTB sequence folder (NAME/img, groundtruth_rect.txt)")
    waiting.add_argument("--config", default="siamfc_lite0")
    memory = sub.add_parser("rss", help="the backend's memory on synthetic videos of these lengths")
    memory.add_argument("--frames", type=int, nargs="+", default=[1000, 10000])
    memory.add_argument("--config", default="siamfc_lite0_fast")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="label-studio-timing-") as folder:
        (wait if args.what == "wait" else rss)(args, Path(folder))


if __name__ == "__main__":
    main()
