"""What a run keeps: the boxes file (one `frame,id,x,y,w,h,score,lost` row per target and frame) and the
annotated video, each valid up to the last frame written; and the annotated frame itself."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .core.targets import Answers
from .draw import RED, draw_boxes, draw_caption, target_colour
from .errors import SiamtrackError
from .video import VideoOutput

# the boxes file's columns, MOTChallenge-style; lost: 1 where the tracker judged the target lost (its box then
# the last confident one, held), else 0
BOXES_HEADER = "frame,id,x,y,w,h,score,lost"


class RunOutputs:
    """The annotated video and the boxes file of a run, each valid up to the last frame written."""

    def __init__(self, video: str | None, boxes: str | None, fps: float):
        self.video_path, self.fps = video, fps
        self.video: VideoOutput | None = None
        try:
            self.boxes = open(boxes, "w") if boxes else None
        except OSError as exc:
            raise SiamtrackError(f"{boxes}: cannot write the boxes there ({exc.strerror})") from None
        if self.boxes:
            self.boxes.write(f"# {BOXES_HEADER}\n")

    def write(self, index: int, answers: Answers, shown_bgr: np.ndarray | None) -> None:
        if self.boxes:
            self.boxes.writelines(f"{index},{i},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{score:.4f},{int(gone)}\n"
                                  for i, (x, y, w, h), score, gone
                                  in zip(answers.ids, answers.boxes, answers.scores, answers.lost))
            self.boxes.flush()
        if self.video_path and shown_bgr is not None:
            self.video = self.video or VideoOutput(Path(self.video_path), self.fps, shown_bgr)
            self.video.write(shown_bgr)

    def close(self) -> None:
        if self.video:
            self.video.close()
        if self.boxes:
            self.boxes.close()


def annotate(frame_rgb: np.ndarray, answers: Answers, fps: float) -> np.ndarray:
    """A new BGR image of the frame with each target's box in its colour (red when lost) and the caption;
    the frame itself is left as it was. One target keeps the single-target look: no id label."""
    bgr = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
    ids, lost = answers.ids, answers.lost
    several = len(ids) > 1
    draw_boxes(bgr, [(box, RED if gone else target_colour(i), f"{i}" if several else "")
                     for i, box, gone in zip(ids, answers.boxes, lost)])
    if np.isnan(answers.scores).all():  # the frame the boxes were given on: nothing tracked, nothing timed yet
        caption = f"{len(ids)} targets given" if several else "the given box"
    elif several:
        caption = f"{fps:.1f} fps  {len(ids)} targets" + (f", {lost.sum()} lost" if lost.any() else "")
    else:
        caption = f"{fps:.1f} fps  score {answers.scores[0]:.2f}" + ("  TARGET LOST" if lost[0] else "")
    draw_caption(bgr, caption)
    return bgr


def write_frame(videos: dict[str, VideoOutput], path: str, fps: float, bgr: np.ndarray) -> None:
    """Append a frame to the video at `path`, opening it at the first frame."""
    if path not in videos:
        videos[path] = VideoOutput(Path(path), fps, bgr)
    videos[path].write(bgr)
