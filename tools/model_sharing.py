"""One model, many trackers, measured: a model's build time against making trackers over it, and a server's
memory and first answers as browser tabs open, on 127.0.0.1 only.

    python tools/model_sharing.py builds --trackers 20
    python tools/model_sharing.py tabs --tabs 1 8 --config siamfc_lite0

`builds`: per config and backend, the seconds Model.load takes, and the seconds `--trackers` trackers over that
model take to make (the median of 5 rounds; a tracker holds only its targets and buffers), as a share of one
build.
`tabs`: for each count, a fresh `siamtrack serve` (`python -m siamtrack` in the current folder: to measure another
checkout, run this from its folder with PYTHONPATH set to it), that many WebSocket tabs opened at once, each sending init and one
Car1 frame as soon as its session says ready: the time from opening the sockets to each tab's first boxes,
and the server's RSS before the tabs and once every tab has its first answer (all still open).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time

import numpy as np
from serve_load import OTB_CAR1, rss_mib, sequence_frames, start_server

FIRST_ANSWER_TIMEOUT_S = 300.0
REPEATS = 5


def builds(args) -> None:
    from siamtrack import Model, SiamFCTracker
    from siamtrack.config import shipped_configs
    from siamtrack.process import set_up
    set_up(args.threads)
    print(f"load average {os.getloadavg()[0]:.1f}, {args.threads} thread(s)")
    print(f"| config | backend | model build s | {args.trackers} trackers over it, ms | share of one build |")
    print("|---|---|---|---|---|")
    for config in args.config or shipped_configs():
        for backend in args.backend:
            overrides = ('weights=""', "model.pretrained=false") if config == "siamfc_alexnet" else ()
            start = time.perf_counter()
            model = Model.load(config, device="cpu", backend=backend, overrides=overrides, quiet=True)
            built = time.perf_counter() - start
            made = []
            for _ in range(REPEATS):  # the median of a few: one run can meet a pause of the busy machine
                start = time.perf_counter()
                trackers = [SiamFCTracker(model) for _ in range(args.trackers)]
                made.append(time.perf_counter() - start)
                assert all(t.model is model for t in trackers)
            made = float(np.median(made))
            print(f"| {config} | {backend} | {built:.2f} | {1000 * made:.1f} | {100 * made / built:.2f} % |")


def tabs(args) -> None:
    frames, box = sequence_frames(OTB_CAR1, 1)
    print(f"load average {os.getloadavg()[0]:.1f}; {args.config} ({args.backend[0]}), {args.threads} thread(s), "
          f"siamtrack from {os.environ.get('PYTHONPATH') or 'the installed package'}")
    print("| tabs | RSS before, MiB | RSS with every tab answered, MiB | first answer median s | slowest s |")
    print("|---|---|---|---|---|")
    for count in args.tabs:
        server, url = start_server(argparse.Namespace(clients=count, config=args.config, backend=args.backend[0],
                                                      threads=args.threads))
        try:
            time.sleep(1.0)
            before = rss_mib(server.pid)
            answered, after = asyncio.run(gathered(url, count, frames[0], box, server))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        print(f"| {count} | {before:.0f} | {after:.0f} | {np.median(answered):.2f} | {max(answered):.2f} |")


async def gathered(url: str, count: int, frame: bytes, box: list[float], server) -> tuple[list[float], float]:
    """`count` tabs opened at once, each answered once; the server's RSS while all are still open."""
    from websockets.asyncio.client import connect
    sockets = [await connect(url.replace("http://", "ws://").rstrip("/") + "/ws", max_size=None)
               for _ in range(count)]
    start = time.perf_counter()

    async def first(ws) -> float:
        async with asyncio.timeout(FIRST_ANSWER_TIMEOUT_S):
            while json.loads(await ws.recv())["type"] != "ready":
                pass
            await ws.send(json.dumps({"type": "init", "boxes": [box]}))
            await ws.send(frame)
            while json.loads(await ws.recv())["type"] != "boxes":
                pass
        return time.perf_counter() - start

    try:
        answered = await asyncio.gather(*(first(ws) for ws in sockets))
        return list(answered), rss_mib(server.pid)
    finally:
        for ws in sockets:
            await ws.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["builds", "tabs"])
    parser.add_argument("--config", nargs="+", help="configs (builds: default every shipped one; tabs: the first)")
    parser.add_argument("--backend", nargs="+", default=["torch"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--trackers", type=int, default=20, help="builds: trackers made over each model")
    parser.add_argument("--tabs", type=int, nargs="+", default=[1, 8], help="tabs: tab counts, one server each")
    args = parser.parse_args()
    if args.what == "builds":
        builds(args)
    else:
        args.config = (args.config or ["siamfc_lite0"])[0]
        tabs(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
