"""`siamtrack serve`: a web page for tracking in the browser, on machines without a display.

An ASGI app (Starlette, run by uvicorn) serves a plain HTML/CSS/JS page from static/ and one WebSocket
per browser tab. Each tab is a Session with its own tracker: frames come in from the browser's camera,
an uploaded video or (only with --allow-server-sources) a camera or stream the server opens; boxes go
back. The tracker knows nothing of this package; this package builds trackers from a TrackerSpec.
Import it only through the `serve` extra: starlette and uvicorn are not needed by anything else.
"""
