"""The VOT toolkit's TraX protocol: siamtrack as a tracker the official vot-toolkit can run.

The toolkit starts the tracker process and sends it image paths and regions over TraX (stdin/stdout
or a socket it names in the environment); the tracker answers one rectangle per frame, with its
confidence. Requires the `vot` extra (PyPI `vot-trax`).
"""
from __future__ import annotations

import contextlib

import numpy as np

from .core.frame_loop import track_step
from .core.tracker import SiamFCTracker
from .errors import SiamtrackError
from .inputs import read_rgb


def region_to_box(region) -> tuple[float, float, float, float]:
    """A TraX rectangle as is, a polygon as its axis-aligned bounding box."""
    if hasattr(region, "bounds"):
        return region.bounds()
    points = np.array([region.get(i) for i in range(region.size())])
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


def serve(tracker: SiamFCTracker | None = None) -> None:
    """Answer TraX requests until the client quits."""
    try:
        from trax import TraxException
    except ImportError:
        raise SiamtrackError("the VOT protocol needs the vot extra: pip install 'siamtrack[vot]'") from None
    tracker = tracker or SiamFCTracker()
    try:
        _answer_requests(tracker)
    except TraxException as exc:
        raise SiamtrackError(f"TraX: {exc} (siamtrack vot is started by the VOT toolkit, which speaks TraX "
                             "to it; on its own it has no one to answer)") from None


def _answer_requests(tracker: SiamFCTracker) -> None:
    from trax import Image, Region, TraxException, TraxStatus
    from trax.region import Rectangle
    from trax.server import Server

    # not `with Server(...)`: its exit prints the traceback of any error; the caller reports it in one line
    server = Server([Region.RECTANGLE, Region.POLYGON], [Image.PATH], tracker_name="siamtrack",
                    tracker_family="SiamFC")
    try:
        while (request := server.wait()).type != TraxStatus.QUIT:
            frame = read_rgb(request.image["color"].path())
            starting = request.type == TraxStatus.INITIALIZE
            box, _ = track_step(tracker, frame, region_to_box(request.objects[0][0]) if starting else None)
            confidence = 1.0 if starting else tracker.score
            server.status([(Rectangle.create(*(float(v) for v in box)), {"confidence": float(confidence)})])
    except Exception as exc:
        with contextlib.suppress(TraxException):  # the client may be gone already
            server.quit(reason=str(exc))  # the toolkit logs why the tracker stopped
        raise
    server.quit()
