"""`pip install .` (README's first command): the installed package finds its shipped configs and weights."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_installed_package_finds_its_configs_and_weights(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(REPO)], check=True, cwd=tmp_path)
    probe = ("import siamtrack, siamtrack.config as c, siamtrack.core.checkpoint as t; "
             "cfg = c.load_config(); print(siamtrack.__file__); print(c.resolve_weights_path(cfg)); "
             "print(t.build_net(None, None)[2])")
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert all(line.startswith(str(target)) for line in out), out
    assert out[1].endswith("siamfc_lite0.pt") and Path(out[1]).is_file()
