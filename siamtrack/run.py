"""An interactive run: frames from a source through the tracker into the window, the annotated video
and the boxes file, with the keys of the live window. The command line parses and prints; this runs."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .core.frame_loop import fps, track_frames
from .core.tracker import SiamFCTracker
from .draw import GREEN, RED, draw_boxes, draw_caption
from .errors import BoxError, OutputError, SiamtrackError, SourceError
from .outputs import RunOutputs, annotate, write_frame
from .sources import OTB_FRAMES, FrameSource, is_camera_index
from .synthetic import SyntheticClip
from .text import plural
from .video import VideoOutput

WINDOW = "siamtrack"
KEYS_QUIT = (ord("q"), 27)
KEYS_RESELECT = (ord("r"), ord(" "))
KEY_ADD = ord("a")
KEY_PAUSE = ord("p")


def has_display() -> bool:
    """Whether a window can open. OpenCV's GUI build aborts the process on imshow without one."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def select_boxes(frame_rgb: np.ndarray, one: bool = False) -> np.ndarray:
    """The boxes the user draws on the frame, as an N x 4 array: several (Enter after each, Esc when done),
    or `one` (Enter once)."""
    if not has_display():
        raise BoxError("no --bbox given and no display to draw one on: pass --bbox x,y,w,h (repeatable)")
    bgr = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
    if one:
        title = "siamtrack: draw the target, then press Enter"
        drawn = [cv2.selectROI(title, bgr, showCrosshair=True)]
    else:
        title = "siamtrack: draw each target and press Enter; Esc when done"
        drawn = cv2.selectROIs(title, bgr, showCrosshair=True)
    cv2.destroyWindow(title)
    boxes = np.array(drawn, dtype=np.float64).reshape(-1, 4)
    boxes = boxes[(boxes[:, 2] > 0) & (boxes[:, 3] > 0)]
    if not len(boxes):
        raise BoxError("no box drawn")
    return boxes


def read_key() -> int:
    """The key pressed in the window, if any; p pauses until p again (or another command key)."""
    key = cv2.waitKey(1) & 0xFF
    if key != KEY_PAUSE:
        return key
    while True:
        key = cv2.waitKey(0) & 0xFF
        if key in (KEY_PAUSE, KEY_ADD, *KEYS_QUIT, *KEYS_RESELECT):
            return -1 if key == KEY_PAUSE else key


@dataclass
class RunOptions:
    output: str | None = None  # the annotated video
    boxes: str | None = None  # the boxes file
    show: bool = False  # the live window
    progress: bool = True  # a progress bar (files only: a live source has no end to measure against)
    boxes_by_default: bool = False  # no output was asked for: the boxes go to a file named after the source

    @property
    def draws(self) -> bool:
        return bool(self.output or self.show)


def is_live(source: str) -> bool:
    """A camera index or a stream URL, as SOURCE is given on the command line."""
    return is_camera_index(source) or "://" in source


def run_options(source: str, output: str | None = None, boxes: str | None = None, show: bool = False,
                progress: bool = True) -> RunOptions:
    """What a run of `source` keeps and shows. A live source with nowhere to write shows its window; a run
    that would keep nothing writes its boxes to SOURCE's name with .boxes.txt in the current folder (an OTB
    sequence's name for its img/ folder). Every output's folder is checked before any frame is read."""
    live = is_live(source)
    if show and not has_display():
        raise SourceError("--show needs a display, and none is set (DISPLAY is empty)")
    if live and not (output or boxes or show):
        if not has_display():
            raise SourceError(f"{source}: live tracking needs a display for its window, "
                              "or --output/--boxes to run headless")
        show = True
    options = RunOptions(output, boxes, show, progress)
    if not (output or boxes or show):
        path = Path(source.rstrip("/"))
        name = path.parent.name if path.name == OTB_FRAMES else path.stem
        options.boxes, options.boxes_by_default = f"{name or 'siamtrack'}.boxes.txt", True
    for path in (options.output, options.boxes):
        if path and not Path(path).resolve().parent.is_dir():
            raise OutputError(f"{path}: its folder {Path(path).parent} does not exist")
    return options


@dataclass
class RunStats:
    frames: int = 0
    seconds: float = 0.0  # the tracker's, over all frames
    latencies: list[float] = field(default_factory=list)  # live sources: capture to drawn box, per frame
    interrupted: bool = False  # by Ctrl-C (or SIGTERM): the outputs hold the frames so far

    @property
    def fps(self) -> float:
        return fps(self.frames, self.seconds)


def track_source(source: FrameSource, tracker: SiamFCTracker, frames, boxes: np.ndarray,
                 options: RunOptions) -> RunStats:
    """Track the N x 4 `boxes` through `frames` (those of `source`), writing, showing and counting as
    `options` say. In the window, r or space draws every target anew and a adds one."""
    outputs = RunOutputs(options.output, options.boxes, source.fps)
    progress = tqdm(total=source.frame_count, unit="frame", disable=source.is_live or not options.progress)
    stats = RunStats()
    if options.show:
        cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)  # no toolbar
    try:
        for index, frame, _, seconds in track_frames(tracker, frames, boxes):
            stats.frames, stats.seconds = stats.frames + 1, stats.seconds + seconds
            answers = tracker.answers()
            shown = annotate(frame, answers, stats.fps) if options.draws else None
            # live streams drop frames and files may skip unreadable ones: number each box by its frame's position
            outputs.write(source.frame_index, answers, shown)
            if source.is_live:
                stats.latencies.append(time.perf_counter() - source.captured_at)
            progress.update()
            progress.set_postfix(fps=f"{stats.fps:.1f}", refresh=False)
            if options.show:
                cv2.imshow(WINDOW, shown)
                key = read_key()
                if key in KEYS_QUIT:
                    break
                if key in KEYS_RESELECT:
                    tracker.init(frame, select_boxes(frame))
                elif key == KEY_ADD:
                    tracker.add(frame, select_boxes(frame, one=True)[0])
    except KeyboardInterrupt:
        stats.interrupted = True
    except SiamtrackError as exc:  # a bad frame mid-run: say how far the run got and what it kept
        kept = "; the outputs so far are kept" if options.output or options.boxes else ""
        raise type(exc)(f"{exc}; stopped after {plural(stats.frames, 'frame')}{kept}") from None
    finally:
        progress.close()
        outputs.close()
        if options.show:
            cv2.destroyAllWindows()
    return stats


def run_summary(source: FrameSource, stats: RunStats, options: RunOptions) -> str:
    """The line that closes a run: what was tracked, how fast, what the source lost, where it went."""
    line = (f"{'interrupted after' if stats.interrupted else 'tracked'} {plural(stats.frames, 'frame')} "
            f"at {stats.fps:.1f} fps")
    if source.is_live and stats.latencies:
        ms = 1000 * np.array(stats.latencies)
        line += (f"; {source.dropped} of {source.received} stream frames dropped; "
                 f"latency {np.median(ms):.0f} ms median, {np.percentile(ms, 90):.0f} ms p90")
    if source.gaps:
        line += f"; {gaps_summary(source.gaps)}"
    if source.skipped:
        line += f"; skipped {plural(source.skipped, 'unreadable frame')}, the first: frame {source.first_skipped}"
    if not stats.interrupted:  # the interruption is said up front
        line += f"; {source.ended or 'quit in the window'}"
    outputs = ", ".join(p for p in (options.output, options.boxes) if p)
    kept = " (kept)" if stats.interrupted else ""
    return line + (f" -> {outputs}{kept}" if outputs else "")


def gaps_summary(gaps: list[float]) -> str:
    """The outages a live source came back from, for the closing line."""
    if len(gaps) == 1:
        return f"1 gap in the stream ({gaps[0]:.1f} s)"
    return f"{len(gaps)} gaps in the stream ({sum(gaps):.1f} s in all, the longest {max(gaps):.1f} s)"


def track_demo(tracker: SiamFCTracker, clip: SyntheticClip, output: str, source_output: str | None = None,
               progress: bool = True, fps: float = 30.0) -> tuple[np.ndarray, RunStats]:
    """Track the clip's target from its first box, writing each frame with the true box and the tracked one
    to the `output` video, and the clean frames to `source_output`; the tracked boxes and the run's counts."""
    videos: dict[str, VideoOutput] = {}
    boxes, stats = [], RunStats()
    bar = tqdm(total=len(clip.frames), unit="frame", disable=not progress)
    try:
        for index, frame, box, seconds in track_frames(tracker, clip.frames, clip.boxes[0]):
            boxes.append(box)
            stats.frames, stats.seconds = stats.frames + 1, stats.seconds + seconds
            bar.update()
            bar.set_postfix(fps=f"{stats.fps:.1f}", refresh=False)
            bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            if source_output:
                write_frame(videos, source_output, fps, bgr)
            draw_boxes(bgr, [(clip.boxes[index], RED, "truth"), (box, GREEN, "siamtrack")])
            draw_caption(bgr, f"frame {index}  score {tracker.score:.2f}")
            write_frame(videos, output, fps, bgr)
    finally:
        bar.close()
        for video in videos.values():
            video.close()
    return np.array(boxes), stats
