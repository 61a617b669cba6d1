"""README's code blocks, and those of the pages under docs/ it links, run as written: every Python block in an
empty folder; README's Usage block's quick commands in order in another (each uses what the ones before it
wrote); the slow ones, and every other siamtrack command, parsed, with the folders and files they name checked
from the repository."""
import os
import re
import shlex
import signal
import subprocess
import sys
from contextlib import suppress
from pathlib import Path

import pytest
from conftest import SHARED_DATA
from test_live import free_port, needs

from siamtrack.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PAGES = "\n".join([README, *(page.read_text() for page in sorted((ROOT / "docs").glob("*.md")))])
# what README would write where a reader must substitute their own: OTB_DIR, RUN_DIR, video.mp4, host/...
PLACEHOLDER = re.compile(r"\b[A-Z][A-Z0-9]*_(DIR|PATH|FILE)\b|\bvideo\.mp4\b|://host\b|\[--")
# Usage commands that take minutes to hours, or a camera: their options are parsed and folders checked only
NOT_RUN = ("siamtrack run 0", "siamtrack eval", "siamtrack train", "siamtrack bench")
FOLDER_OPTIONS = ("--root", "--data", "--sequence")
RUN_BUDGET_S = 600  # a hang guard: the commands take about a minute on a quiet 2-core machine


def code_blocks(language: str, text: str = PAGES) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def usage_block() -> str:
    return code_blocks("bash", README.split("\n## Usage\n")[1])[0]


def commands(block: str) -> list[str]:
    """The block's command lines, comments dropped."""
    lines = (line.split("  #")[0].strip() for line in block.replace("\\\n", " ").splitlines())
    return [line for line in lines if line]


def siamtrack_args(line: str) -> list[list[str]]:
    """The arguments of each `siamtrack` command on a line (after `&&`, if chained)."""
    return [shlex.split(part)[1:] for part in line.split("&&") if part.split()[:1] == ["siamtrack"]]


SERVE_CLIENT = "websockets.sync.client"  # the serve client's block: it needs a server (the test below)


@pytest.mark.parametrize("index", range(len(code_blocks("python"))))
def test_python_block_runs_as_written(index, tmp_path):
    if SERVE_CLIENT in code_blocks("python")[index]:
        pytest.skip("the serve client needs a server: test_serve_client_block_runs_against_a_server")
    run = subprocess.run([sys.executable, "-c", code_blocks("python")[index]], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_bash_commands_are_concrete_and_parse():
    """No placeholder for the reader to fill in, and every siamtrack command's options exist."""
    parser = build_parser()
    for block in code_blocks("bash"):
        for line in commands(block):
            assert not PLACEHOLDER.search(line), line
            for args in siamtrack_args(line):
                parser.parse_args(args)  # a usage error exits


def named_paths(args: list[str]) -> list[str]:
    """The folders and YAML files a siamtrack command's options name."""
    paths = [value for option, value in zip(args, args[1:]) if option in FOLDER_OPTIONS]
    trackers = [value for option, value in zip(args, args[1:]) if option in ("--trackers", "--config")]
    return paths + [name for value in trackers for name in value.split(",") if name.endswith(".yaml")]


def test_commands_name_folders_and_files_that_exist():
    """In the repository's folder, as README's commands run; ../shared/data where this machine has it."""
    for block in code_blocks("bash"):
        for line in commands(block):
            for args in siamtrack_args(line):
                for path in named_paths(args):
                    elsewhere = path.startswith("../shared/") and not SHARED_DATA.is_dir()
                    assert (ROOT / path).exists() or elsewhere, line


def test_usage_commands_run_in_order_in_a_fresh_folder(tmp_path):
    """demo, run on its video, on its frames and on it served as a stream, export: each as written."""
    needs("ffmpeg")
    script = "\n".join(["set -e", *(line for line in commands(usage_block()) if not line.startswith(NOT_RUN))])
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    shell = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, env=env, start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = shell.communicate(timeout=RUN_BUDGET_S)
    finally:
        with suppress(ProcessLookupError):  # the background ffmpeg server, if the run did not use it up
            os.killpg(shell.pid, signal.SIGKILL)
    assert shell.returncode == 0, err
    for made in ("demo.mp4", "tracked.mp4", "boxes.txt", "two.txt", "frames/150.png", "frames.boxes.txt",
                 "live.txt", "onnx/exemplar.onnx", "onnx/search.onnx"):
        assert (tmp_path / made).is_file(), made
    assert "; end of folder -> frames.boxes.txt" in out and "; stream ended -> live.txt" in out, out


def test_serve_client_block_runs_against_a_server(tmp_path):
    """README's client, as written but for the port, against `siamtrack serve` on 127.0.0.1."""
    pytest.importorskip("starlette")
    pytest.importorskip("websockets")
    block = next(b for b in code_blocks("python") if SERVE_CLIENT in b)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "siamtrack", "serve", "--port", str(port), "--config",
                               "siamfc_lite0_fast", "--device", "cpu"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().startswith("serve: open")
        run = subprocess.run([sys.executable, "-c", block.replace(":8000/", f":{port}/")], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and "'frame': 29" in run.stdout, run.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_every_page_is_linked_from_readme_and_every_link_leads_somewhere():
    pages = {page.name for page in (ROOT / "docs").glob("*.md")}
    assert pages <= set(re.findall(r"\]\(docs/([\w.-]+\.md)", README)), "a docs page README does not link"
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name} links {target}, which is not there"
