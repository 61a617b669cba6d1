"""Sessions' folders: private temporary folders named after the server's process, so that a server that
was killed (SIGKILL, a power cut) leaves folders the next one can tell from those of a server still running,
and removes."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

PREFIX = "siamtrack-serve-"
OWN = re.compile(rf"^{PREFIX}(\d+)-")  # siamtrack-serve-PID-XXXXXXXX


def session_folder() -> Path:
    """A new private folder (mode 0700) for one session of this process."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))


def remove_stale_folders(root: Path | None = None) -> list[Path]:
    """Remove the session folders under `root` (default: the temporary folder) that belong to this user and
    to a process that is gone; returns them. A folder of a process still running is left alone."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        match = OWN.match(folder.name)
        try:
            mine = folder.is_dir() and not folder.is_symlink() and folder.stat().st_uid == os.getuid()
        except OSError:
            continue
        if match and mine and not _running(int(match.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process is there
    except (ProcessLookupError, OverflowError):  # OverflowError: a number no process id can be
        return False
    except PermissionError:  # another user's process
        return True
    return True
