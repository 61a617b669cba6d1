"""A real Label Studio for the tests and tools/label_studio_timing.py: installed in a venv of its own
(.venv-label-studio, as its users install it; .ci/run makes it), started on 127.0.0.1 with a temporary data
folder and a user whose legacy token and personal access token are made at start; its REST API as a script
calls it; and `siamtrack label-studio` started beside it. Every process started here stops with its context.

`python tests/label_studio_harness.py` makes the data folder each start copies (.ci/run does, beside the other
installs): made once, where a new folder's first start spends most of a minute migrating its database.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the label-studio program: $SIAMTRACK_LABEL_STUDIO, else the venv .ci/run installs it in
LABEL_STUDIO = Path(os.environ.get("SIAMTRACK_LABEL_STUDIO", ROOT / ".venv-label-studio" / "bin" / "label-studio"))
INSTALL = ("python3 -m venv .venv-label-studio && .venv-label-studio/bin/pip install label-studio==1.23.2 'sentry-sdk<3'"
           " (.ci/run does)")
# a data folder `label-studio init` made (its database migrated, the test user in it), kept beside the program:
# each start copies it and starts in 10-25 s, where a new folder's first start takes 40-120 s on 2 cores
DATA_TEMPLATE = LABEL_STUDIO.parents[1] / "siamtrack-test-data"
START_TIMEOUT_S = 300.0  # a start that has to make the template first: 1-2 minutes on a busy 2-core machine
BACKEND_START_TIMEOUT_S = 120.0
USER, PASSWORD, LEGACY_TOKEN = "tester@example.com", "siamtrack-test-password", "siamtrack0legacy0token"
LABELING_CONFIG = ('<View><Video name="video" value="$video" frameRate="{fps:g}"/>'
                   '<VideoRectangle name="box" toName="video"/>'
                   '<Labels name="labels" toName="video"><Label value="Target" background="#00c853"/></Labels></View>')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, what: str, timeout: float, process: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process ended ({process.returncode}); its log ends: {tail(log)}")
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}; the log ends: {tail(log)}")


def tail(log: Path | None, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log and log.exists() else ""


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


def stop(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM to the process's group, as a service manager stops it (not Ctrl-C: a background job's children
    ignore SIGINT, and waited the whole timeout); kill it if it does not end."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def data_template() -> Path:
    """DATA_TEMPLATE, made first if it is not there (whole or not at all: made aside, then renamed)."""
    if DATA_TEMPLATE.is_dir():
        return DATA_TEMPLATE
    making = DATA_TEMPLATE.with_name(f"{DATA_TEMPLATE.name}.{os.getpid()}")
    shutil.rmtree(making, ignore_errors=True)
    making.mkdir(parents=True)
    subprocess.run([str(LABEL_STUDIO), "init", "--no-browser", "--data-dir", str(making / "data"), *user_options()],
                   cwd=making, env={**os.environ, **quiet_environment(making / "data")}, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=START_TIMEOUT_S)
    try:
        (making / "data").rename(DATA_TEMPLATE)
    except OSError:  # made meanwhile by another run: keep that one
        if not DATA_TEMPLATE.is_dir():
            raise
    shutil.rmtree(making, ignore_errors=True)
    return DATA_TEMPLATE


def user_options() -> list[str]:
    return ["--username", USER, "--password", PASSWORD, "--user-token", LEGACY_TOKEN, "--enable-legacy-api-token"]


def quiet_environment(data: Path) -> dict[str, str]:
    """Label Studio's settings for a test: its data in `data`, nothing sent out of this machine."""
    return {"LABEL_STUDIO_BASE_DATA_DIR": str(data), "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false"}


class Server:
    """A program serving HTTP on 127.0.0.1:`port`, started with its output in `log`, as a context manager: entered
    once its /health answers, stopped on leaving (or when it does not start)."""
    what = "the server"
    start_timeout_s = BACKEND_START_TIMEOUT_S

    def __init__(self, log: Path, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log, self.env = log, env
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def started(self) -> None:
        """What to do once it answers."""

    def __enter__(self):
        with self.log.open("w") as log:
            self.process = subprocess.Popen(self.command(), cwd=self.log.parent, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for(lambda: answers(f"{self.url}/health"), f"{self.what} to start", self.start_timeout_s,
                     self.process, self.log)
            self.started()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            stop(self.process)


class LabelStudio(Server):
    """`label-studio start` in `folder` (its data, its log), as a context manager; `api` calls its REST API."""
    what, start_timeout_s = "Label Studio", START_TIMEOUT_S

    def __init__(self, folder: Path, predict_timeout_s: float | None = None):
        super().__init__(folder / "label-studio.log",
                         {**os.environ, **quiet_environment(folder / "data"),
                          # the backend is on this machine: Label Studio refuses local addresses unless told
                          "ML_BLOCK_LOCAL_IP": "false", "SSRF_PROTECTION_ENABLED": "false"})
        self.folder = folder
        shutil.copytree(data_template(), folder / "data")
        if predict_timeout_s:
            self.env["ML_TIMEOUT_PREDICT"] = f"{predict_timeout_s:g}"
        self.personal_token = ""

    def command(self) -> list[str]:
        return [str(LABEL_STUDIO), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port),
                "--data-dir", str(self.folder / "data"), *user_options()]

    def started(self) -> None:
        # the default kind of key since Label Studio 1.18: a JWT refresh token the backend exchanges
        self.personal_token = self.api("POST", "/api/token/")["token"]

    def api(self, method: str, path: str, body: dict | None = None, file: Path | None = None,
            timeout: float = 600.0):
        """A REST call with the legacy token: JSON in (or one file, multipart), JSON out."""
        headers = {"Authorization": f"Token {LEGACY_TOKEN}"}
        data = None
        if file is not None:
            boundary = uuid.uuid4().hex
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
            data = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file.name}"\r\n'
                    f"Content-Type: application/octet-stream\r\n\r\n").encode() + file.read_bytes() + \
                f"\r\n--{boundary}--\r\n".encode()
        elif body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None
        return json.loads(text) if text else None

    def video_project(self, fps: float, backend_url: str) -> tuple[int, int]:
        """A video project with a VideoRectangle, connected to the backend (interactive): (project, ML backend) ids."""
        project = self.api("POST", "/api/projects", {"title": "Annotating video", "label_config":
                                                     LABELING_CONFIG.format(fps=fps)})["id"]
        backend = self.api("POST", "/api/ml", {"project": project, "url": backend_url, "title": "siamtrack",
                                               "is_interactive": True})["id"]
        return project, backend

    def upload(self, project: int, video: Path) -> int:
        """The video as a new task of the project (Label Studio keeps the file): its task id."""
        before = {task["id"] for task in self.tasks(project)}
        self.api("POST", f"/api/projects/{project}/import", file=video)
        (task,) = [task["id"] for task in self.tasks(project) if task["id"] not in before]
        return task

    def tasks(self, project: int) -> list[dict]:
        return self.api("GET", f"/api/tasks?project={project}&page_size=1000")["tasks"]

    def retrieve_predictions(self, project: int, task: int) -> float:
        """Label Studio asks the backend for the task's predictions (the Data Manager's action): seconds waited."""
        started = time.perf_counter()
        self.api("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}",
                 {"selectedItems": {"all": False, "included": [task]}})
        return time.perf_counter() - started

    def predictions(self, task: int) -> list[dict]:
        return self.api("GET", f"/api/predictions?task={task}")


class Backend(Server):
    """`siamtrack label-studio` on a free port, reading from `label_studio` with its personal access token."""
    what = "siamtrack label-studio"

    def __init__(self, label_studio: LabelStudio, folder: Path, *options: str):
        super().__init__(folder / "backend.log",
                         {**os.environ, "LABEL_STUDIO_URL": label_studio.url,
                          "LABEL_STUDIO_API_KEY": label_studio.personal_token, "PYTHONPATH": str(ROOT)})
        self.options = options

    def command(self) -> list[str]:
        return [sys.executable, "-m", "siamtrack", "label-studio", "--port", str(self.port), *self.options]

    def peak_rss_mib(self) -> float:
        """The backend's highest resident memory so far (VmHWM), from Linux's /proc."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc: not Linux?")


def encode_video(frames: Path, video: Path, fps: float) -> Path:
    """Numbered images (an ffmpeg pattern, e.g. folder/%04d.jpg) as an H.264 mp4 at a constant `fps`, the format
    Label Studio asks for: browsers play it, OpenCV reads it."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-framerate", f"{fps:g}", "-i", str(frames),
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-r", f"{fps:g}", str(video)], check=True)
    return video


if __name__ == "__main__":
    print(f"Label Studio's test data folder: {data_template()}")
