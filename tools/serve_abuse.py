"""`siamtrack serve` under the attacks of issue #30, on 127.0.0.1 only, each bounded in time and size.

    python tools/serve_abuse.py                 # full size: minutes (the figures of docs/serve.md)
    python tools/serve_abuse.py --small         # seconds: what CI runs (tests/test_serve_abuse.py)

Starts `siamtrack serve --allow-server-sources` on a free port with a well-behaved tab: a client that
tracks the demo clip's target, one frame in flight, as the page does. Then, one after the other, each
attack: too many targets, DNS rebinding (a Host the server was not started for), sockets opened and closed
at once, a 4K upload of identical frames, server sources that would amplify requests, listen, bind or
follow a playlist, idle tabs holding every place, numbers that do not fit, a failed upload after a good
one, the headers. For each it prints whether the server held, the server's peak RSS during it, and the
well-behaved tab's latency meanwhile (median, p90, the longest wait); then SIGTERM with clients streaming,
and the time the server takes to exit and whether its folders went with it. Exit status 1 if any attack
was not held.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from contextlib import suppress
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

from siamtrack.synthetic import make_clip

MIB = 2 ** 20
# sockets here live across calls, closed by hand: websockets 17 would have each opened in a `with` block
warnings.filterwarnings("ignore", message=r"connect\(\) must be used as a context manager")
REBINDING = {"Host": "evil.example:8000", "Origin": "http://evil.example:8000"}


def jpeg(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


class Server:
    """`siamtrack serve` in its own process, with its RSS sampled every 0.1 s."""

    def __init__(self, args):
        command = [sys.executable, "-m", "siamtrack", "serve", "--port", "0", "--allow-server-sources",
                   "--max-sessions", str(args.max_sessions), "--idle-timeout", str(args.idle_timeout),
                   "--config", args.config, "--backend", args.backend, "--device", "cpu", "--threads", "1"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("serve: open "):
            self.process.kill()
            sys.exit(f"the server did not start: {line!r} {self.process.stderr.read()}")
        self.url = line.split()[-1].rstrip("/")
        self.port = int(self.url.rsplit(":", 1)[1])
        self.samples: list[tuple[float, float]] = []
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while self.process.poll() is None:
            with suppress(OSError):
                with open(f"/proc/{self.process.pid}/statm") as statm:
                    pages = int(statm.read().split()[1])
                self.samples.append((time.monotonic(), pages * os.sysconf("SC_PAGE_SIZE") / MIB))
            time.sleep(0.1)

    def peak_rss(self, since: float) -> float:
        return max((rss for t, rss in self.samples if t >= since), default=float("nan"))

    def folders(self) -> list[Path]:
        return list(Path(tempfile.gettempdir()).glob(f"siamtrack-serve-{self.process.pid}-*"))

    def ws(self, **kwargs):
        from websockets.sync.client import connect
        # no keepalive pings: a tab the server closed for idling would print the failed ping's traceback
        return connect(f"ws://127.0.0.1:{self.port}/ws", proxy=None, max_size=None, open_timeout=30, ping_interval=None,
                       **kwargs)

    def http(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, answer.getheaders(), answer.read()


def receive(ws, kinds: tuple[str, ...], timeout: float = 60) -> dict:
    """The next JSON message of one of `kinds` (others, and frames' JPEGs, skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        data = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(data, str) and (message := json.loads(data))["type"] in kinds:
            return message


def open_session(server: Server) -> tuple[object, str]:
    ws = server.ws()
    hello = receive(ws, ("hello",))
    receive(ws, ("ready",))
    return ws, hello["session"]


class GoodTab(threading.Thread):
    """A page tracking the clip's target, one frame in flight: (time answered, latency) of every frame."""

    def __init__(self, server: Server, clip):
        super().__init__(daemon=True)
        self.server, self.clip, self.answers, self.stop = server, clip, [], threading.Event()
        self.errors: list[str] = []  # what the server answered it instead of boxes: none, when all is well

    def run(self) -> None:
        ws, _ = open_session(self.server)
        frames = [jpeg(f) for f in self.clip.frames] + [jpeg(f) for f in self.clip.frames[-2:0:-1]]
        ws.send(json.dumps({"type": "init", "boxes": [self.clip.boxes[0].tolist()]}))
        number = 0
        while not self.stop.is_set():
            sent = time.monotonic()
            ws.send(frames[number % len(frames)])
            with suppress(TimeoutError):
                answer = receive(ws, ("boxes", "error"), timeout=120)
                if answer["type"] == "error":
                    self.errors.append(answer["message"])
                else:
                    self.answers.append((time.monotonic(), time.monotonic() - sent))
            number += 1
            time.sleep(max(0.0, 1 / 30 - (time.monotonic() - sent)))
        ws.close()

    def latency(self, since: float, until: float) -> str:
        """Median, p90 and longest wait (ms) of its answers in the window; the window's end counts as an answer
        still awaited."""
        times = [t for t, _ in self.answers if since <= t <= until]
        ms = 1000 * np.array([lat for t, lat in self.answers if since <= t <= until])
        waits = np.diff([since, *times, until]) * 1000
        if not len(ms):
            return f"no answer in {until - since:.1f} s"
        return f"{np.median(ms):.0f} / {np.percentile(ms, 90):.0f} / {waits.max():.0f} ms"


# --- the attacks: each returns (held, what was seen)


def targets(server, args, clip):
    ws, _ = open_session(server)
    ws.send(json.dumps({"type": "init", "boxes": [[10, 10, 20, 20]] * args.boxes}))
    refused = receive(ws, ("error",))["message"]
    ws.close()
    return "--max-targets" in refused, f"{args.boxes} boxes: {refused!r}"


def rebinding(server, args, clip):
    page, _, _ = server.http("GET", "/", headers=REBINDING)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw:
        raw.sendall(b"GET /ws HTTP/1.1\r\nHost: evil.example:8000\r\nOrigin: http://evil.example:8000\r\n"
                    b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    b"Sec-WebSocket-Version: 13\r\n\r\n")
        status = raw.recv(100).split(b"\r\n")[0].decode()
    upload, _, _ = server.http("POST", "/sessions/x/upload", b"x", headers=REBINDING)
    held = page == 400 and " 101 " not in status and upload == 400
    return held, f"page {page}, WebSocket {status!r}, upload {upload}"


def churn(server, args, clip):
    started = time.monotonic()
    busy = 0
    for _ in range(args.churn):
        with server.ws() as ws:
            busy += receive(ws, ("hello", "busy"))["type"] == "busy"
    spent = time.monotonic() - started
    time.sleep(1.0)
    ws, _ = open_session(server)  # a place is free again at once: nothing left behind
    ws.close()
    return True, f"{args.churn} sockets opened and closed in {spent:.1f} s ({busy} told busy); a new tab got in after"


def upload_bomb(server, args, clip):
    video = Path(tempfile.mkdtemp()) / "bomb.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=gray:s=4096x2160:r=30,drawbox="
                    "x=1800:y=900:w=400:h=300:color=red:t=fill", "-frames:v", str(args.bomb_frames), "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(video)], check=True, timeout=300)
    size = video.stat().st_size
    ws, session = open_session(server)
    status, _, body = server.http("POST", f"/sessions/{session}/upload", video.read_bytes())
    started = time.monotonic()
    ws.send(json.dumps({"type": "track_upload", "boxes": [[1800, 900, 400, 300]]}))
    done = receive(ws, ("upload_done", "error"), timeout=1800)
    spent = time.monotonic() - started
    on_disk = sum(f.stat().st_size for folder in server.folders() for f in folder.rglob("*") if f.is_file())
    ws.close()
    video.unlink()
    held = status == 200 and done["type"] == "upload_done" and on_disk < 50 * size + 20 * MIB
    return held, (f"a {size / MIB:.2f} MB mp4 of {args.bomb_frames} 4096x2160 frames: {done.get('frames')} tracked in "
                  f"{spent:.0f} s, {on_disk / MIB:.1f} MB on disk at the end; stopped: {done.get('stopped')}")


class CountingFiles:
    """Files over HTTP on 127.0.0.1, counting GET requests."""

    def __init__(self, folder: Path):
        outer = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                super().do_GET()

            def log_message(self, *args):
                pass

        self.requests = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def server_sources(server, args, clip):
    folder = Path(tempfile.mkdtemp())
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "2",
                    "-c:v", "mpeg4", "-movflags", "+faststart", str(folder / "clip.mp4")], check=True, timeout=60)
    data = (folder / "clip.mp4").read_bytes()
    (folder / "header_only.mp4").write_bytes(data[:data.find(b"mdat") + 4])
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-t", "2",
                    "-c:v", "mpeg1video", "-f", "hls", "-hls_time", "1", str(folder / "play.m3u8")],
                   check=True, timeout=60)
    files = CountingFiles(folder)
    seen, held = [], True
    ws, _ = open_session(server)
    ws.send(json.dumps({"type": "source", "source": f"{files.url}/header_only.mp4"}))
    started = time.monotonic()
    opened = receive(ws, ("source_opened", "error"))
    with suppress(TimeoutError):  # it ends after the server's 10 s of reconnecting; small: watched 3 s
        ended = receive(ws, ("source_ended", "error"), timeout=3 if args.small else 60)["message"]
    requests, watched = files.requests, time.monotonic() - started
    if args.small:
        ws.send(json.dumps({"type": "source", "source": None}))
        ended = "closed by the client"
    held &= requests < 6 * watched
    seen.append(f"opens, no frame: {requests} GETs in {watched:.1f} s ({opened['type']}, then {ended!r})")
    ws.send(json.dumps({"type": "source", "source": f"{files.url}/clip.mp4"}))
    receive(ws, ("source_opened",))
    started = time.monotonic()
    ended = receive(ws, ("source_ended", "error"), timeout=60)
    held &= ended.get("message") == "end of file"
    seen.append(f"a 2 s mp4: {ended.get('message')!r} after {time.monotonic() - started:.1f} s")
    for text in (f"tcp://127.0.0.1:{args.free_port}?listen=1", f"udp://127.0.0.1:{args.free_port}",
                 f"{files.url}/play.m3u8"):
        ws.send(json.dumps({"type": "source", "source": text}))
        answer = receive(ws, ("error", "source_opened"))
        listening = _listening(args.free_port)
        held &= answer["type"] == "error" and not listening
        seen.append(f"{text.split('://')[0]}...{text[-12:]}: {answer['type']}")
    ws.close()
    files.stop()
    return held, "; ".join(seen)


def _listening(port: int) -> bool:
    for table in ("/proc/net/tcp", "/proc/net/udp"):
        rows = Path(table).read_text().splitlines()[1:]
        if any(row.split()[1].endswith(f":{port:04X}") for row in rows):
            return True
    return False


def idle_tabs(server, args, clip):
    tabs = [open_session(server)[0] for _ in range(args.max_sessions - 1)]  # the good tab holds the last place
    with server.ws() as late:
        told = receive(late, ("hello", "busy"))["type"]
    started = time.monotonic()
    said = [receive(tab, ("idle",), timeout=args.idle_timeout + 30)["message"] for tab in tabs]
    freed = time.monotonic() - started
    for tab in tabs:
        tab.close()
    time.sleep(0.5)
    ws, _ = open_session(server)
    ws.close()
    return told == "busy" and len(said) == len(tabs), (f"{len(tabs)} idle tabs: a new one told {told}; all closed "
                                                       f"{freed:.1f} s later (--idle-timeout {args.idle_timeout}), "
                                                       "then a new one got in")


def numbers(server, args, clip):
    ws, session = open_session(server)
    answers = []
    for text in ('{"type": "init", "boxes": [[1, 2, 3, ' + "9" * 5000 + "]]}",
                 json.dumps({"type": "init", "boxes": [[1, 2, 1e308, 4]]}),
                 json.dumps({"type": "source", "source": "²"}),
                 json.dumps({"type": "source", "source": "99999999999999999999"})):
        ws.send(text)
        answers.append(receive(ws, ("error",))["message"])
    status, _, _ = server.http("GET", f"/sessions/{session}/frames/{'9' * 5000}.jpg")
    ws.send(jpeg(clip.frames[0]))
    alive = receive(ws, ("boxes",))["type"] == "boxes"
    ws.close()
    held = alive and status == 404 and not any("internal error" in a for a in answers)
    return held, f"4 messages answered in one line each, the session went on; frames/<5000 nines>.jpg: {status}"


def failed_upload(server, args, clip):
    from siamtrack.video import write_rgb_video
    video = write_rgb_video(Path(tempfile.mkdtemp()) / "clip.mp4", clip.frames[:5], 25.0)
    ws, session = open_session(server)
    server.http("POST", f"/sessions/{session}/upload", video.read_bytes())
    ws.send(json.dumps({"type": "track_upload", "boxes": [clip.boxes[0].tolist()]}))
    receive(ws, ("upload_done",))
    before = server.http("GET", f"/sessions/{session}/frames/0.jpg")[0]
    refused = server.http("POST", f"/sessions/{session}/upload", b"not a video\n")[0]
    after = [server.http("GET", f"/sessions/{session}/{name}")[0] for name in ("frames/0.jpg", "upload.boxes.txt")]
    ws.close()
    held = before == 200 and refused == 415 and after == [404, 404]
    return held, f"frame 0 {before}, then upload {refused}, then {after}"


def headers(server, args, clip):
    _, given, _ = server.http("GET", "/")
    names = {name.lower(): value for name, value in given}
    held = "frame-ancestors 'none'" in names.get("content-security-policy", "") and \
        names.get("x-content-type-options") == "nosniff" and names.get("x-frame-options") == "DENY"
    return held, f"CSP {names.get('content-security-policy', 'none')[:40]}..., nosniff, X-Frame-Options"


ATTACKS = [targets, rebinding, churn, upload_bomb, server_sources, idle_tabs, numbers, failed_upload, headers]


def sigterm_under_load(server, args, clip) -> str:
    """N clients streaming frames, then SIGTERM: seconds to exit, exit code, folders left."""
    frame = jpeg(clip.frames[0])
    clients, refused, stop = [], [], threading.Event()

    def stream():
        try:
            ws, _ = open_session(server)
            ws.send(json.dumps({"type": "init", "boxes": [clip.boxes[0].tolist()]}))
        except Exception as exc:  # noqa: BLE001 - counted: the wait below ends once every client is in or out
            refused.append(exc)
            return
        clients.append(ws)
        with suppress(Exception):
            while not stop.is_set():
                ws.send(frame)
                time.sleep(1 / 30)

    threads = [threading.Thread(target=stream, daemon=True) for _ in range(args.sigterm_clients)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(clients) + len(refused) < args.sigterm_clients and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(args.seconds)
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        server.process.kill()
        code = "killed after 120 s"
    stop.set()
    return (f"SIGTERM with {len(clients)} clients streaming ({len(refused)} refused): exited in "
            f"{time.monotonic() - started:.1f} s (code {code}), {len(server.folders())} session folders left")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="CI's size: seconds in all")
    parser.add_argument("--config", default="siamfc_lite0_fast")
    parser.add_argument("--backend", default="eager", help="eager: the quickest to build (default)")
    args = parser.parse_args()
    small = args.small
    args.boxes, args.churn = (400, 10) if small else (4000, 30)
    args.bomb_frames, args.max_sessions = (3, 4) if small else (300, 8)
    args.idle_timeout, args.seconds = (2, 1.0) if small else (20, 5.0)
    args.sigterm_clients = args.max_sessions
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        args.free_port = probe.getsockname()[1]
    clip = make_clip(num_frames=60)
    server = Server(args)
    good = GoodTab(server, clip)
    good.start()
    rows, failed = [], []
    try:
        time.sleep(2 * args.seconds)
        quiet = good.latency(time.monotonic() - 2 * args.seconds, time.monotonic())
        rows.append(("none (the tab alone)", "-", f"{server.peak_rss(0):.0f}", quiet, ""))
        for attack in ATTACKS:
            started = time.monotonic()
            held, seen = attack(server, args, clip)
            time.sleep(args.seconds / 5)
            rows.append((attack.__name__.replace("_", " "), "held" if held else "NOT HELD",
                         f"{server.peak_rss(started):.0f}", good.latency(started, time.monotonic()), seen))
            if not held:
                failed.append(attack.__name__)
        good.stop.set()
        good.join(timeout=30)  # its slot is free before the streaming clients of the last attack take theirs
        ending = sigterm_under_load(server, args, clip)
    finally:
        if server.process.poll() is None:
            server.process.kill()
    print(f"siamtrack serve ({args.config}, {args.backend}, 1 thread), {'small' if small else 'full'} size, "
          f"load average {os.getloadavg()[0]:.1f}:")
    print("| attack | server | peak RSS MiB | good tab's latency: median / p90 / longest wait | seen |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(ending)
    if good.errors:
        print(f"the good tab was answered {len(good.errors)} errors, the first: {good.errors[0]}")
    if failed:
        print(f"NOT HELD: {', '.join(failed)}")
    return 1 if failed or "killed" in ending else 0


if __name__ == "__main__":
    sys.exit(main())
