"""`siamtrack eval --cluster`: jobs as Ray tasks on a two-node Ray cluster on loopback, started here.

The results equal a local run's byte for byte, a node killed while it runs jobs loses none of them, and
bad input fails in one line. Each node gets one CPU and a small object store; every process the cluster
started is killed by its session id when the tests end, so nothing outlives them (`ray stop` would stop
every Ray process of the machine, a user's own cluster too).
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'siamtrack[cluster]')")

from test_live import free_port  # noqa: E402

from siamtrack import TrackerSpec  # noqa: E402
from siamtrack.cli import main  # noqa: E402
from siamtrack.errors import EvaluationError  # noqa: E402
from siamtrack.evaluation import evaluate  # noqa: E402
from siamtrack.evaluation import cluster as cluster_runner  # noqa: E402
from siamtrack.evaluation.cluster import RayCluster  # noqa: E402
from siamtrack.synthetic import make_clip  # noqa: E402

RAY = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
OBJECT_STORE_BYTES = 100 * 1024 ** 2  # per node: the tests move kilobytes
START_TIMEOUT_S = 180  # a node's start on a busy 2-core machine
STOP_TIMEOUT_S = 30
# the head notices a dead node after 3 missed health checks 0.5 s apart, not Ray's default 5 of 3 s
HEAD_SYSTEM_CONFIG = '{"health_check_period_ms": 500, "health_check_failure_threshold": 3}'
FAST = "siamfc_lite0_fast"
TASK_TITLE = "ray::_run_task"  # a Ray worker's process title while it runs siamtrack.evaluation.cluster's task
POLL_S = 0.05


def head_answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def process_title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:  # ended meanwhile
        return ""


def session_processes(session: int) -> list[int]:
    """The processes of a session: a `ray start` started in its own and everything it started (Ray's
    workers take process groups of their own, but stay in the session)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


class LoopbackCluster:
    """A Ray head and worker nodes on 127.0.0.1, each `ray start --block` in a session of its own."""

    def __init__(self, base: Path):
        self.base, self.port, self.client_port = base, free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.client_address = f"ray://127.0.0.1:{self.client_port}"
        self.nodes: dict[str, subprocess.Popen] = {}  # temp dir name -> its `ray start`

    def _start(self, name: str, *options: str, cpus: int = 1) -> None:
        log = open(self.base / f"{name}.log", "w")
        self.nodes[name] = subprocess.Popen(
            [RAY, "start", "--block", f"--num-cpus={cpus}", "--num-gpus=0", "--node-ip-address=127.0.0.1",
             f"--object-store-memory={OBJECT_STORE_BYTES}", "--disable-usage-stats", f"--temp-dir={self.base / name}",
             *options], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, workers: int, head_cpus: int = 1) -> None:
        self._start("head", "--head", f"--port={self.port}", f"--ray-client-server-port={self.client_port}",
                    "--include-dashboard=false", f"--system-config={HEAD_SYSTEM_CONFIG}", cpus=head_cpus)
        self.wait_for_nodes(1)  # a node joins a head that answers
        for number in range(1, workers + 1):
            self._start(f"node{number}", f"--address={self.address}")
        self.wait_for_nodes(1 + workers)

    def node_ids(self) -> dict[str, str]:
        """Each running node's id, by the name of its temp dir."""
        previous = signal.getsignal(signal.SIGTERM)  # ray.init sets its own
        ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
        try:
            return {next(name for name in self.nodes if f"{os.sep}{name}{os.sep}" in node["RayletSocketName"]):
                    node["NodeID"] for node in ray.nodes() if node["Alive"]}
        finally:
            ray.shutdown()
            signal.signal(signal.SIGTERM, previous)

    def wait_for_nodes(self, count: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            for name, node in self.nodes.items():
                assert node.poll() is None, f"ray node {name} exited: {(self.base / f'{name}.log').read_text()[-2000:]}"
            if head_answers(self.port) and len(self.node_ids()) >= count:  # ray.init waits minutes for no head
                return
            assert time.monotonic() < deadline, f"{count} ray nodes did not come up in {START_TIMEOUT_S} s"
            time.sleep(1)

    def kill(self, name: str) -> None:
        """Kill a node as a machine dies: every process it started, at once."""
        session = self.nodes[name].pid
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while (alive := session_processes(session)) and time.monotonic() < deadline:
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        self.nodes[name].wait(STOP_TIMEOUT_S)
        assert not session_processes(session), f"processes of ray node {name} outlived SIGKILL"

    def stop(self) -> None:
        for name in reversed(list(self.nodes)):  # the workers, then the head
            self.kill(name)


@pytest.fixture(scope="module")
def cluster():
    base = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    loopback = LoopbackCluster(base)
    try:
        loopback.start(workers=1)
        yield loopback
    finally:
        loopback.stop()
        shutil.rmtree(base, ignore_errors=True)


def write_otb(root: Path, sequences: int, frames: int) -> Path:
    for seed in range(sequences):
        clip = make_clip(num_frames=frames, seed=seed)
        (root / f"seq{seed}" / "img").mkdir(parents=True)
        for i, frame in enumerate(clip.frames, start=1):
            cv2.imwrite(str(root / f"seq{seed}" / "img" / f"{i:04d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        np.savetxt(root / f"seq{seed}" / "groundtruth_rect.txt", clip.boxes + [1, 1, 0, 0], fmt="%g", delimiter=",")
    return root


def result_bytes(out: Path) -> dict[str, bytes]:
    """Every result file under out/results, by path: boxes byte for byte, times (measurements) by name only."""
    return {str(p.relative_to(out)): b"" if "time" in p.name else p.read_bytes()
            for p in sorted((out / "results").rglob("*")) if p.is_file()}


# --- without a cluster

def test_a_cluster_address_is_checked_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["eval", "--dataset", "otb", "--root", ".", "--cluster", "spark://x"])
    assert exit.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "argument --cluster: must be 'ray' or ray://HOST:PORT, got 'spark://x'" in err and "\n" not in err


def test_ray_is_imported_only_when_a_run_on_a_cluster_starts():
    code = ("import sys, siamtrack.evaluation.cluster; from siamtrack.cli.main import build_parser; build_parser(); "
            "print('ray' in sys.modules)")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "False"


def test_an_address_where_no_cluster_answers_fails_at_once_in_one_line(tmp_path, monkeypatch):
    root = write_otb(tmp_path / "otb", sequences=1, frames=3)
    nowhere = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("RAY_ADDRESS", nowhere)
    for runner in (RayCluster(), RayCluster(f"ray://{nowhere}")):
        with pytest.raises(EvaluationError, match="no Ray cluster answers at") as error:
            evaluate("otb", root, ["kcf"], tmp_path / "out", runner=runner)
        assert "\n" not in str(error.value)


class FlakyRay:
    """A stand-in for ray whose init fails `failures` times as Ray Client does when its server's own ray.init
    fails, then joins; it counts the shutdowns that undo each failed try."""

    def __init__(self, failures: int, error: type = ConnectionAbortedError):
        self.failures, self.error, self.inits, self.shutdowns = failures, error, 0, 0

    def init(self, **kwargs):
        self.inits += 1
        if self.inits <= self.failures:
            raise self.error("Initialization failure from server:\nCall to `ray.init()` on the server failed with: x")

    def shutdown(self):
        self.shutdowns += 1


@pytest.mark.parametrize("failures, error, joined", [
    (2, ConnectionAbortedError, True),  # the server's init failed twice: the third try joins
    (3, ConnectionAbortedError, False),  # three times: a one-line error with the server's reason
    (1, ConnectionError, False),  # any other failure: at once
])
def test_a_failed_ray_client_connect_is_undone_and_tried_again_only_when_the_server_failed(
        failures, error, joined, monkeypatch):
    monkeypatch.setattr(cluster_runner, "CONNECT_PAUSE_S", 0.0)
    with socket.socket() as listening:  # something answers at the address
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        fake = FlakyRay(failures, error)
        address = f"ray://127.0.0.1:{listening.getsockname()[1]}"
        if joined:
            cluster_runner._connect(fake, address)
        else:
            with pytest.raises(EvaluationError) as failed:
                cluster_runner._connect(fake, address)
            assert "\n" not in str(failed.value) and "on the server failed with: x" in str(failed.value)
    assert fake.inits == min(failures + 1, 3 if error is ConnectionAbortedError else 1)
    assert fake.shutdowns == min(failures, fake.inits)  # every failed try undone (Ray leaves client mode on)


def test_without_ray_installed_the_error_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails, as where it is not installed
    root = write_otb(tmp_path / "otb", sequences=1, frames=3)
    with pytest.raises(EvaluationError, match=r"pip install 'siamtrack\[cluster\]'"):
        evaluate("otb", root, ["kcf"], tmp_path / "out", runner=RayCluster())
    assert not (tmp_path / "out" / "results").exists()


# --- on the loopback cluster

@pytest.mark.slow
def test_results_on_the_cluster_equal_a_local_run_byte_for_byte(cluster, tmp_path):
    root = write_otb(tmp_path / "otb", sequences=3, frames=30)
    trackers = [FAST, "csrt"]
    evaluate("otb", root, trackers, tmp_path / "local", TrackerSpec(device="cpu"), workers=2, threads=2)
    nodes = set()

    def seen(results, total):
        for result in results:
            nodes.add(result.node)
            yield result

    summary = evaluate("otb", root, trackers, tmp_path / "ray", TrackerSpec(device="cpu"), progress=seen,
                       runner=RayCluster(cluster.client_address))  # through Ray Client
    local = result_bytes(tmp_path / "local")
    assert len(local) == 2 * len(trackers) * 3  # boxes and times per tracker and sequence
    assert result_bytes(tmp_path / "ray") == local
    assert not summary.failed and not summary.notes  # fps measured on the nodes: no note on this machine's load
    assert nodes <= {node_id[:8] for node_id in cluster.node_ids().values()}


@pytest.mark.slow
def test_a_node_killed_while_it_runs_a_job_loses_no_result(cluster, tmp_path, monkeypatch):
    """The second node dies in the middle of a job: Ray runs that job again on the head, and every result
    is there, equal to a local run's. (The last test here: the cluster has one node after it.)"""
    root = write_otb(tmp_path / "otb", sequences=4, frames=30)
    evaluate("otb", root, [FAST], tmp_path / "local", TrackerSpec(device="cpu"))
    run_ended, killed = threading.Event(), []

    def kill_the_second_node_at_work():
        while not run_ended.wait(POLL_S):
            if any(process_title(pid).startswith(TASK_TITLE) for pid in session_processes(cluster.nodes["node1"].pid)):
                cluster.kill("node1")
                killed.append(True)
                return

    monkeypatch.setenv("RAY_ADDRESS", cluster.address)  # `--cluster ray`: the cluster RAY_ADDRESS names
    killer = threading.Thread(target=kill_the_second_node_at_work)
    killer.start()
    try:
        summary = evaluate("otb", root, [FAST], tmp_path / "ray", TrackerSpec(device="cpu"), runner=RayCluster())
    finally:
        run_ended.set()
        killer.join()
    assert killed, "the second node ran no job"
    assert "node1" not in cluster.node_ids()
    assert not summary.failed and len(summary.sequences) == 4
    assert result_bytes(tmp_path / "ray") == result_bytes(tmp_path / "local")
