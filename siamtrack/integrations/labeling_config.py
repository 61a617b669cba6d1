"""What the backend reads from a Label Studio project's labeling config: the VideoRectangle it answers for,
the Video tag that control draws on, where a task keeps that video's URL, and the video's frame rate."""
from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

from .errors import AnnotationError

LABEL_STUDIO_FRAMERATE = 24.0  # the Video tag's frameRate when it names none (Label Studio's Video.js)
EXAMPLE = ('<View><Video name="video" value="$video" frameRate="30"/>'
           '<VideoRectangle name="box" toName="video"/></View>')


@dataclass(frozen=True)
class VideoControl:
    from_name: str  # the VideoRectangle's name: the regions the backend reads and writes
    to_name: str  # the Video's name
    value: str  # the Video's value: `$key` (the task's data[key] holds the URL) or a URL itself
    framerate: str  # the Video's frameRate as written: a number, `$key`, or "" for Label Studio's default

    def video_url(self, data: dict) -> str:
        url = data.get(self.value[1:]) if self.value.startswith("$") else self.value
        if not isinstance(url, str) or not url:
            raise AnnotationError(f"the task has no video URL in data.{self.value.lstrip('$')} (the Video tag "
                                  f"{self.to_name!r} reads {self.value})")
        return url

    def fps(self, data: dict) -> float:
        """The frame rate Label Studio numbers this task's frames by (a frame rate under 1 is a frame duration,
        as Label Studio reads it)."""
        written = self.framerate
        value = data.get(written[1:]) if written.startswith("$") else written
        try:
            fps = float(value) if value not in (None, "") else LABEL_STUDIO_FRAMERATE
        except (TypeError, ValueError):
            fps = math.nan
        if not math.isfinite(fps) or fps <= 0:
            raise AnnotationError(f"the Video tag {self.to_name!r} has frameRate {written!r}, which is {value!r} "
                                  "for this task: not a frame rate")
        return 1 / fps if fps < 1 else fps


def video_control(label_config: str) -> VideoControl:
    """The one VideoRectangle of the config and its Video, or a one-line error saying what is missing."""
    try:
        root = ElementTree.fromstring(label_config or "")
    except ElementTree.ParseError as exc:
        raise AnnotationError(f"the labeling config is not valid XML ({exc})") from None
    videos = {_attributes(tag).get("name"): _attributes(tag) for tag in root.iter("Video")}
    rectangles = [_attributes(tag) for tag in root.iter("VideoRectangle")]
    rectangles = [tag for tag in rectangles if tag.get("toname") in videos]
    if len(rectangles) != 1:
        found = "none" if not rectangles else f"{len(rectangles)} ({', '.join(t.get('name', '?') for t in rectangles)})"
        raise AnnotationError(f"siamtrack answers for one VideoRectangle on a Video; the labeling config has "
                              f"{found}. For example: {EXAMPLE}")
    rectangle = rectangles[0]
    video = videos[rectangle["toname"]]
    return VideoControl(rectangle.get("name", ""), rectangle["toname"], video.get("value", ""), video.get("framerate", ""))


def _attributes(tag: ElementTree.Element) -> dict[str, str]:
    """A tag's attributes by lower-case name: Label Studio reads frameRate, framerate and FRAMERATE alike."""
    return {key.lower(): value for key, value in tag.attrib.items()}
