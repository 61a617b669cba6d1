"""`siamtrack serve` under load, on 127.0.0.1 only: N WebSocket clients tracking at once, bounded in time.

    python tools/serve_load.py --clients 8 --seconds 20 --config siamfc_lite0_fast --rounds 3
    python tools/serve_load.py --clients 1 --seconds 5 --config siamfc_lite0 --beside-run   # and `run` beside it

Starts `siamtrack serve` on a free port; each client then does what the page does with a camera, once
every client's tracker is built: init on the sequence's first frame with its true box, then the
sequence's JPEG frames at --fps (there and back, so that the target never jumps), at most --in-flight
unanswered, each timed from sending to its boxes. Prints per client the fps (answers a second), the
frame-to-box latency (median, p90), the server's decode and tracking time and the frames it dropped; the
server's resident memory (RSS) before the clients, at its peak and --settle seconds after they left
(--rounds times); and how long the page took to load while they tracked. --beside-run then tracks the
same frames with `siamtrack run`, served by ffmpeg as a --fps MPEG-TS stream on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

OTB_CAR1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "otb_mini" / "Car1"
IN_FLIGHT = 1  # frames a client has sent and not had answered, at most: the page's
MIB = 2 ** 20
PAGE_LOADS = 3  # page loads timed during the load
STALL_S = 60.0  # a client waiting this long for an answer reports it and stops


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


def sequence_frames(folder: Path, count: int) -> tuple[list[bytes], list[float]]:
    """The sequence's first `count` JPEG files as sent by a browser, there and back; its first true box."""
    files = sorted((folder / "img").glob("*.jpg"))[:count]
    jpegs = [f.read_bytes() for f in files]
    first = np.loadtxt(folder / "groundtruth_rect.txt", delimiter=",", max_rows=1)
    return jpegs + jpegs[-2:0:-1], [float(first[0]) - 1, float(first[1]) - 1, float(first[2]), float(first[3])]


def start_server(args) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "siamtrack", "serve", "--port", "0", "--max-sessions", str(max(8, args.clients)),
               "--config", args.config, "--backend", args.backend, "--device", "cpu", "--threads", str(args.threads)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    if not line.startswith("serve: open "):
        server.kill()
        sys.exit(f"the server did not start: {line!r}")
    return server, line.split()[-1]


async def client(url: str, frames: list[bytes], box: list[float], fps: float, seconds: float, in_flight: int,
                 everyone_ready: asyncio.Barrier) -> dict:
    """One page's worth of tracking, once every client's session is ready (all start together): the latencies
    of the frames answered, the answers, the drops."""
    from websockets.asyncio.client import connect
    async with connect(url.replace("http://", "ws://").rstrip("/") + "/ws", max_size=None) as ws:
        async with asyncio.timeout(STALL_S * 3):  # every session ready first
            while json.loads(await ws.recv())["type"] != "ready":
                pass
            if await everyone_ready.wait() == 0:  # one of them says so
                everyone_ready.tracking_since = time.perf_counter()
        sent: dict[int, float] = {}
        latencies: list[float] = []
        track_ms: list[float] = []  # the server's decode and tracking, per frame
        answers, dropped = 0, 0
        room = asyncio.Event()

        async def receive():
            nonlocal answers, dropped
            async for text in ws:
                answer = json.loads(text)
                if answer["type"] != "boxes":
                    raise RuntimeError(f"the server answered {answer}")
                latencies.append(time.perf_counter() - sent[answer["frame"]])
                for number in [n for n in sent if n <= answer["frame"]]:  # answers come in order
                    del sent[number]
                answers, dropped = answers + 1, answer["dropped"]
                track_ms.append(answer["track_ms"])
                room.set()

        receiver = asyncio.create_task(receive())
        await ws.send(json.dumps({"type": "init", "boxes": [box]}))
        number, started = 0, time.perf_counter()
        while time.perf_counter() < started + seconds:
            if len(sent) >= in_flight:
                room.clear()
                await asyncio.wait([receiver, asyncio.create_task(room.wait())], timeout=STALL_S,
                                   return_when=asyncio.FIRST_COMPLETED)
                if receiver.done():
                    receiver.result()  # raises what ended it
                    raise RuntimeError("the server closed the socket")
                if not room.is_set():
                    raise RuntimeError(f"no answer in {STALL_S:g} s ({answers} answers so far)")
                continue
            sent[number] = time.perf_counter()
            await ws.send(frames[number % len(frames)])
            number += 1
            await asyncio.sleep(max(0.0, started + number / fps - time.perf_counter()))
        elapsed = time.perf_counter() - started
        receiver.cancel()
    return {"fps": answers / elapsed, "latencies": latencies[1:], "sent": number, "answers": answers,
            "dropped": dropped, "track_ms": track_ms[1:]}


def spread(seconds) -> str:
    """Median and p90 in ms, as two table cells."""
    if not len(seconds):
        return "- | -"
    ms = 1000 * np.asarray(seconds)
    return f"{np.median(ms):.0f} | {np.percentile(ms, 90):.0f}"


def time_page(url: str) -> float:
    start = time.perf_counter()
    urllib.request.urlopen(url, timeout=30).read()
    return time.perf_counter() - start


async def load(args, url: str, server: subprocess.Popen, frames, box) -> tuple[list[dict], list[float], float]:
    """The clients' results, the page load times while they all track, and the server's peak RSS."""
    everyone_ready = asyncio.Barrier(args.clients)
    everyone_ready.tracking_since = None
    clients = asyncio.gather(*(client(url, frames, box, args.fps, args.seconds, args.in_flight, everyone_ready)
                               for _ in range(args.clients)))
    peak, loads = 0.0, []
    while not clients.done():
        await asyncio.sleep(0.5)
        peak = max(peak, rss_mib(server.pid))
        since = everyone_ready.tracking_since
        if since and len(loads) < PAGE_LOADS and time.perf_counter() - since > (len(loads) + 1) * args.seconds / (
                PAGE_LOADS + 1):
            loads.append(await asyncio.to_thread(time_page, url))
    return await clients, loads, peak


def beside_run(args, box: list[float]) -> str:
    """`siamtrack run` on the same frames as a --fps stream from ffmpeg on 127.0.0.1: its summary line."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stream = f"tcp://127.0.0.1:{port}"
    ffmpeg = subprocess.Popen(["ffmpeg", "-loglevel", "error", "-re", "-framerate", str(args.fps), "-i",
                               str(args.sequence / "img" / "%04d.jpg"), "-frames:v", str(args.frames),
                               "-c:v", "mpeg1video", "-q:v", "2", "-f", "mpegts", f"{stream}?listen=1"])
    try:
        time.sleep(1.0)  # ffmpeg listening
        bbox = ",".join(f"{v:g}" for v in box)
        run = subprocess.run([sys.executable, "-m", "siamtrack", "run", stream, "--bbox", bbox, "--boxes", os.devnull,
                              "--reconnect", "0", "--config", args.config, "--backend", args.backend, "--device", "cpu",
                              "--threads", str(args.threads)], capture_output=True, text=True, timeout=600)
    finally:
        ffmpeg.kill()
    return run.stdout.strip().splitlines()[-1] if run.returncode == 0 else f"run failed: {run.stderr.strip()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the clients track (default 20)")
    parser.add_argument("--config", default="siamfc_lite0_fast")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fps", type=float, default=30.0, help="each client's camera rate (default 30)")
    parser.add_argument("--in-flight", type=int, default=IN_FLIGHT,
                        help=f"frames a client has unanswered, at most (default {IN_FLIGHT}, as the page)")
    parser.add_argument("--sequence", type=Path, default=OTB_CAR1, help="an OTB sequence folder (default: Car1)")
    parser.add_argument("--frames", type=int, default=150, help="its first frames used (default 150)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the clients leave before RSS")
    parser.add_argument("--beside-run", action="store_true", help="then `siamtrack run` on the same frames")
    parser.add_argument("--rounds", type=int, default=1, help="the clients come and go this many times, on one "
                                                              "server (RSS after each: does it come back?)")
    args = parser.parse_args()
    frames, box = sequence_frames(args.sequence, args.frames)
    server, url = start_server(args)
    try:
        time.sleep(1.0)
        before, rounds = rss_mib(server.pid), []
        for _ in range(args.rounds):
            results, loads, peak = asyncio.run(load(args, url, server, frames, box))
            time.sleep(args.settle)
            rounds.append((peak, rss_mib(server.pid)))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print(f"{args.clients} client(s), {args.config} ({args.backend} backend), {args.threads} thread(s), "
          f"{args.fps:g} fps cameras, {args.in_flight} in flight, {args.sequence.name}, "
          f"load average {os.getloadavg()[0]:.1f}; the last round:")
    print("| client | fps | latency median ms | latency p90 ms | decode + track median ms | frames sent | answered | "
          "dropped |")
    print("|---|---|---|---|---|---|---|---|")
    for index, r in enumerate(results):
        print(f"| {index} | {r['fps']:.1f} | {spread(r['latencies'])} | {np.median(r['track_ms']):.0f} | {r['sent']} | "
              f"{r['answers']} | {r['dropped']} |")
    every = np.concatenate([r["latencies"] for r in results])
    print(f"all clients: {sum(r['fps'] for r in results):.1f} answers/s, latency median | p90 ms: {spread(every)}")
    print(f"server RSS: {before:.0f} MiB before the clients; by round, at the peak -> {args.settle:g} s after they "
          f"left: {', '.join(f'{peak:.0f} -> {after:.0f}' for peak, after in rounds)} MiB")
    print(f"page loads while they all tracked (the last round): {', '.join(f'{1000 * s:.0f} ms' for s in loads)}")
    if args.beside_run:
        print(f"siamtrack run, same frames as a {args.fps:g} fps stream: {beside_run(args, box)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
