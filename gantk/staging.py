"""Folders written beside their destination and renamed into place: checkpoints, exports, downloads.

Three things every such writer needs, in one place:

* a temporary name short enough for any legal destination name (``.{name}.tmp-XXXXXXXX`` on a
  245-character name passes the file system's 255-byte limit; the name is cut here, never the
  destination's),
* the process id in it, so a later writer can tell a folder that a killed process left behind from one
  that a live process is still writing, and remove only the former,
* the modes ``mkdir`` and ``open`` would have given under the umask: ``mkdtemp`` makes the folder 0700
  and safetensors writes 0600 files, so an export meant to be shipped was unreadable by anyone else.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_KEEP = 64  # characters of the destination's name kept in the temporary name: enough to recognise it


def staging_folder(dest: Path, kind: str = "tmp") -> Path:
    """A new hidden folder beside ``dest`` for writing it (``kind``: tmp, partial)."""
    return Path(tempfile.mkdtemp(prefix=f".{dest.name[:_KEEP]}.{kind}-{os.getpid()}-", dir=dest.parent))


def stale_staging(dest: Path, kind: str = "tmp") -> list[Path]:
    """Folders :func:`staging_folder` made for ``dest`` whose process is gone (killed mid-write)."""
    prefix = f".{dest.name[:_KEEP]}.{kind}-"
    stale = []
    for path in dest.parent.glob(f"{glob_escape(prefix)}*"):
        pid = path.name[len(prefix) :].partition("-")[0]
        if path.is_dir() and (not pid.isdigit() or not _alive(int(pid))):
            stale.append(path)
    return stale


def remove_stale(dest: Path, kind: str = "tmp") -> None:
    for path in stale_staging(dest, kind):
        shutil.rmtree(path, ignore_errors=True)


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def umask() -> int:
    """The process's umask, read without changing it (``os.umask`` sets it: racy with threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(folder: Path) -> None:
    """Give ``folder`` and everything in it the modes a plain ``mkdir`` / ``open`` would have."""
    mask = umask()
    folder.chmod(0o777 & ~mask)
    for path in folder.rglob("*"):
        if not path.is_symlink():
            path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)
