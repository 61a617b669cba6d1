"""A Label Studio ML backend: the boxes a person drew on a video task, tracked forward, answered as
`videorectangle` predictions. This module turns Label Studio's requests into answers; label_studio_app
serves it over HTTP and `siamtrack label-studio` starts it.

What is tracked: in interactive mode, the regions of the request's context (the box just drawn); otherwise
the regions of the task's latest annotation. Each region is tracked from its last keyframe (the latest box
the person placed) to the end of the video, or --max-frames past the earliest start; the person's
keyframes up to that one are kept as they are. A task's regions are tracked as one batch.
"""
from __future__ import annotations

import hashlib
import logging
import queue
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..core.model import Model
from ..core.tracker import SiamFCTracker
from ..sources import open_source
from ..spec import TrackerSpec
from .errors import AnnotationError
from .label_studio_api import LabelStudio
from .labeling_config import VideoControl, video_control
from .video_tracking import Start, track_starts
from .videorectangle import REGION_TYPE, DrawnRegion, SequenceWriter, drawn_region, to_pixels

log = logging.getLogger(__name__)

# a keyframe on every frame: Label Studio then shows the tracked boxes themselves. Interpolated between sparser
# ones they stray: every 2nd frame, more than 2 px on 16 % of otb_mini's frames; every 5th, on 41 %
# (the fast model's boxes, tools/keyframe_stride.py; docs/annotating.md)
DEFAULT_KEYFRAME_STRIDE = 1
DEFAULT_MAX_VIDEO_MB = 2000
MEGABYTE = 1 << 20
# Label Studio numbers a task's frames by its Video tag's frameRate; a video whose own rate differs would have
# Label Studio's frame f drift this far from the video's f-th frame by its end: refused
MAX_FRAME_DRIFT = 0.5


@dataclass(frozen=True)
class BackendSettings:
    label_studio: LabelStudio  # where the videos are read
    keyframe_stride: int = DEFAULT_KEYFRAME_STRIDE
    max_frames: int | None = None  # frames tracked past the earliest start; None: to the video's end


class Trackers:
    """The trackers the requests use, one each at a time: a request waits for a free one, so that the frames in
    flight (one per tracker) bound the server's memory, whatever the videos' lengths."""

    def __init__(self, trackers: list[SiamFCTracker]):
        self.count = len(trackers)
        self._free: queue.SimpleQueue[SiamFCTracker] = queue.SimpleQueue()
        for tracker in trackers:
            self._free.put(tracker)

    @contextmanager
    def lease(self) -> Iterator[SiamFCTracker]:
        tracker = self._free.get()
        try:
            yield tracker
        finally:
            self._free.put(tracker)


def build_trackers(spec: TrackerSpec, count: int) -> Trackers:
    """`count` trackers over one model, built once here; a backend that is not thread-safe (ONNX Runtime's
    reuse their output buffers) builds a model for each tracker instead."""
    first = spec.model()
    models = [first] + [first if first.backend.thread_safe else spec.model() for _ in range(count - 1)]
    return Trackers([SiamFCTracker(model) for model in models])


def model_version(spec: TrackerSpec, model: Model) -> str:
    """What Label Studio files the predictions under: the config, the weights (name and the start of their
    SHA-256, so that retrained weights of the same name differ) and any --set overrides."""
    version = f"siamtrack:{model.name}"
    weights = Path(model.weights_path) if model.weights_path else None
    if weights is not None and weights.is_file():
        version += f":{weights.name}@{hashlib.sha256(weights.read_bytes()).hexdigest()[:8]}"
    if spec.overrides:
        version += ":" + ",".join(spec.overrides)
    return version


class Backend:
    """Answers Label Studio's /setup and /predict (their JSON bodies, as dicts)."""

    def __init__(self, settings: BackendSettings, trackers: Trackers, version: str):
        self.settings, self.trackers, self.version = settings, trackers, version
        self.tracked_tasks = 0  # answered with a prediction, for the closing line
        self._count = threading.Lock()

    def setup(self, body: dict) -> dict:
        video_control(body.get("schema", ""))  # a project the backend cannot serve fails here, as it connects
        return {"model_version": self.version}

    def predict(self, body: dict, cancelled: Callable[[], bool] = lambda: False) -> dict:
        """One answer per task, in order: a prediction, or an empty list where the task has no box to track
        (Label Studio then stores none for it)."""
        control = video_control(body.get("label_config", ""))
        tasks = body.get("tasks")
        if not isinstance(tasks, list):
            raise AnnotationError("the request has no list of tasks")
        context = (body.get("params") or {}).get("context") or {}
        results = [self._predict_task(task, control, context, cancelled) for task in tasks]
        return {"results": results, "model_version": self.version}

    def _predict_task(self, task: dict, control: VideoControl, context: dict, cancelled) -> dict | list:
        regions = [drawn for drawn in map(drawn_region, regions_to_track(task, control, context)) if drawn]
        if not regions:
            return []
        data = task.get("data") or {}
        # the tracker first: the videos on disk are bounded by the trackers too, not by the requests waiting
        with self.trackers.lease() as tracker, tempfile.TemporaryDirectory(prefix="siamtrack-label-studio-") as folder:
            video = self.settings.label_studio.download(control.video_url(data), Path(folder))
            return self._track(tracker, video, regions, control, control.fps(data), task.get("id"), cancelled)

    def _track(self, tracker: SiamFCTracker, video: Path, regions: list[DrawnRegion], control: VideoControl,
               fps: float, task_id, cancelled) -> dict:
        started = time.perf_counter()
        source = open_source(str(video))
        try:
            check_frame_rate(source.fps, fps, source.frame_count)
            frames = ((source.frame_index, frame) for frame in source)
            position, first = next(frames, (None, None))
            if first is None:
                raise AnnotationError("the video has no frame that can be read")
            height, width = first.shape[:2]
            writers = [SequenceWriter(region, self.settings.keyframe_stride, width, height, fps) for region in regions]
            starts = [Start(region.frame - 1, to_pixels(region.start, width, height)) for region in regions]
            first_start = min(start.frame for start in starts)
            last = first_start + self.settings.max_frames if self.settings.max_frames else float("inf")
            tracked = 0
            for answer in track_starts(tracker, _chain((position, first), frames), starts, last, cancelled):
                for target, box, lost in zip(answer.ids, answer.boxes, answer.lost):
                    writers[target].add(answer.frame + 1, box, bool(lost))
                tracked += 1
            frame_count = source.frame_count or (source.frame_index + 1)
            video_ended = source.ended is not None or source.frame_index + 1 >= frame_count
        finally:
            source.close()
        seconds = time.perf_counter() - started
        with self._count:
            self.tracked_tasks += 1
        log.info("task %s: %d region%s, %d frames tracked in %.1f s (%.1f fps)", task_id, len(regions),
                 "" if len(regions) == 1 else "s", tracked, seconds, tracked / max(seconds, 1e-9))
        result = [prediction_region(region, writer.finish(video_ended), writer.score, control, frame_count, fps)
                  for region, writer in zip(regions, writers)]
        return {"result": result, "score": min(writer.score for writer in writers), "model_version": self.version}


def regions_to_track(task: dict, control: VideoControl, context: dict) -> list[dict]:
    """The interactive request's regions, or else those of the task's latest annotation (not skipped)."""
    if isinstance(context.get("result"), list):
        return _ours(context["result"], control)
    annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    annotations.sort(key=lambda a: (a.get("updated_at") or "", a.get("id") or 0))
    return _ours(annotations[-1].get("result") or [], control) if annotations else []


def _ours(results: list, control: VideoControl) -> list[dict]:
    return [r for r in results if isinstance(r, dict) and r.get("type") == REGION_TYPE
            and r.get("from_name") == control.from_name]


def check_frame_rate(video_fps: float, label_studio_fps: float, frame_count: int | None) -> None:
    """Refuse a video whose frames Label Studio would number by another rate than its own."""
    drift = abs(video_fps - label_studio_fps) / video_fps * (frame_count or video_fps)
    if drift > MAX_FRAME_DRIFT:
        raise AnnotationError(f"the video is {video_fps:g} fps but the labeling config's Video frameRate is "
                              f"{label_studio_fps:g}: Label Studio's frames would not be the video's. Set "
                              f'frameRate="{video_fps:g}" on the Video tag')


def prediction_region(drawn: DrawnRegion, keyframes: list[dict], score: float, control: VideoControl,
                      frame_count: int, fps: float) -> dict:
    """The region as Label Studio stores it: the drawn one's id and labels, the tracked keyframes."""
    value = {**drawn.region.get("value", {}), "sequence": keyframes, "framesCount": frame_count,
             "duration": frame_count / fps}
    return {"id": drawn.region.get("id"), "from_name": control.from_name, "to_name": control.to_name,
            "type": REGION_TYPE, "origin": "prediction", "value": value, "score": score}


def _chain(first, rest):
    yield first
    yield from rest
