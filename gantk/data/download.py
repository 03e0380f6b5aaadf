"""Download, verify and extract a dataset, all or nothing.

Everything is written into a hidden ``.<name>.partial-*`` folder beside the destination and renamed
into place only after every file matched its checksum and the layout checks passed, so a failed or
interrupted download never leaves a half-written dataset folder behind.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path, PurePosixPath

from gantk import staging
from gantk.data.cards import DatasetCard, RemoteFile
from gantk.errors import DataError


class UnverifiedDownloadWarning(UserWarning):
    """A file was downloaded whose publisher gives no checksum; only its layout was checked."""


MAX_BYTES = 16 << 30  # no dataset card names a larger file; a server that never stops is cut off here
STALL_BYTES = 16 << 10  # fewer bytes than this in a whole stall window: the transfer has stalled


class Limits:
    """How long and how much one download may take: ``timeout`` per socket read (no byte at all),
    ``stall_s`` a window in which fewer than ``STALL_BYTES`` arrived (a server dribbling a byte at a
    time), ``total_s`` the whole file, ``max_bytes`` its size."""

    def __init__(
        self, timeout: float = 60.0, stall_s: float = 120.0, total_s: float = 6 * 3600.0, max_bytes: int = MAX_BYTES
    ) -> None:
        self.timeout, self.stall_s, self.total_s, self.max_bytes = timeout, stall_s, total_s, max_bytes


class _TooSlow(Exception):
    """One URL failed a limit: its reason goes to the user with the URL; the mirrors are tried next."""


def download_dataset(card: DatasetCard, dest: Path, timeout: float = 60.0, limits: Limits | None = None) -> Path:
    """Fetch every file of ``card`` into ``dest`` (which must not hold data yet) and return ``dest``."""
    limits = limits or Limits(timeout)
    if not card.files:
        raise DataError(
            f"dataset '{card.name}' is not here and its card {card.path} lists nothing to download; place it in "
            f"{dest} or under $GANTK_DATA/{card.name}, laid out as the card describes."
        )
    if dest.exists() and any(dest.iterdir()):
        raise DataError(f"cannot download dataset '{card.name}' into {dest}: the folder exists and is not empty.")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging.remove_stale(dest, "partial")  # what a killed download left
        tmp = staging.staging_folder(dest, "partial")
    except OSError as exc:
        raise DataError(f"cannot download dataset '{card.name}' into {dest}: {exc.strerror or exc}.") from None
    try:
        for remote in card.files:
            archive = _fetch(remote, tmp / ".download", limits)
            if remote.extract:
                _extract(archive, tmp, remote.strip)
                archive.unlink()
            else:
                target = tmp / remote.save_as
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(archive, target)
        shutil.rmtree(tmp / ".download", ignore_errors=True)
        _check_layout(card, tmp)
        if dest.exists():
            dest.rmdir()  # empty, checked above
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _fetch(remote: RemoteFile, folder: Path, limits: Limits) -> Path:
    """Stream one file to ``folder`` while hashing it; try mirrors on network errors and on a transfer
    that stalls, runs too long, grows too large, or ends short of its announced length."""
    folder.mkdir(parents=True, exist_ok=True)
    name = PurePosixPath(remote.url.split("?")[0]).name or "download"
    target = folder / name
    failures = []
    for url in (remote.url, *remote.mirrors):
        sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        try:
            with urllib.request.urlopen(url, timeout=limits.timeout) as response, open(target, "wb") as out:
                for chunk in _chunks(response, limits):
                    sha256.update(chunk)
                    md5.update(chunk)
                    out.write(chunk)
        except _TooSlow as exc:
            failures.append(f"{url}: {exc}")
            continue
        except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as exc:
            failures.append(f"{url}: {getattr(exc, 'reason', None) or exc or type(exc).__name__}")
            continue
        if remote.sha256 and sha256.hexdigest() != remote.sha256.lower():
            raise DataError(
                f"checksum mismatch for {url}: expected sha256 {remote.sha256}, got {sha256.hexdigest()}. "
                "The download was deleted and nothing was extracted; the file may be corrupt or changed upstream."
            )
        if remote.md5 and md5.hexdigest() != remote.md5.lower():
            raise DataError(
                f"checksum mismatch for {url}: expected md5 {remote.md5}, got {md5.hexdigest()}. "
                "The download was deleted and nothing was extracted; the file may be corrupt or changed upstream."
            )
        if not (remote.sha256 or remote.md5):
            warnings.warn(
                f"{url} has no published checksum; gantk checked only the layout of what it extracted "
                f"(sha256 of the file as downloaded: {sha256.hexdigest()}).",
                UnverifiedDownloadWarning,
                stacklevel=3,
            )
        return target
    raise DataError(
        f"could not download {remote.url}: {'; '.join(failures)}. Without internet access, put the data "
        "in place by hand (see the dataset card) or point at it with --data PATH or $GANTK_DATA."
    )


def _chunks(response, limits: Limits):
    """The response's bytes as they arrive (``read1``: never waits for a full buffer), within ``limits``."""
    announced = response.headers.get("Content-Length")
    announced = int(announced) if announced and announced.isdigit() else None
    if announced is not None and announced > limits.max_bytes:
        raise _TooSlow(f"it announces {announced:,} bytes, more than the {limits.max_bytes:,} a download may take")
    start = window = time.monotonic()
    received = in_window = 0
    while chunk := response.read1(1 << 20):
        received += len(chunk)
        in_window += len(chunk)
        now = time.monotonic()
        if received > limits.max_bytes:
            raise _TooSlow(f"it sent more than the {limits.max_bytes:,} bytes a download may take")
        if now - start > limits.total_s:
            raise _TooSlow(f"the download took longer than {limits.total_s:g} s ({received:,} bytes so far)")
        if now - window >= limits.stall_s:
            if in_window < STALL_BYTES:
                raise _TooSlow(
                    f"the transfer stalled: {in_window:,} bytes in the last {now - window:.0f} s "
                    f"({received:,} bytes so far)"
                )
            window, in_window = now, 0
        yield chunk
    if announced is not None and received != announced:
        raise _TooSlow(f"the transfer ended after {received:,} of the {announced:,} bytes announced (truncated)")


def _safe_member(name: str, strip: str) -> PurePosixPath | None:
    """The member's path inside the destination, or None to skip it; refuses paths that escape."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise DataError(f"archive member {name!r} points outside the dataset folder; refusing to extract.")
    if strip:
        prefix = PurePosixPath(strip)
        if path == prefix or prefix not in path.parents:
            return None
        path = path.relative_to(prefix)
    return path


def _extract(archive: Path, dest: Path, strip: str) -> None:
    """Extract a zip or tar archive into ``dest``, dropping the leading ``strip`` folder."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                rel = _safe_member(info.filename, strip)
                if rel is None or info.is_dir():
                    continue
                out = dest / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        return
    try:
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                rel = _safe_member(member.name, strip)
                if rel is None or not member.isfile():
                    continue  # directories are made as needed; links and devices are never extracted
                out = dest / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(member)
                assert src is not None
                with src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except tarfile.TarError as exc:
        head = archive.read_bytes()[:64] if archive.is_file() else b""
        hint = " (it starts like an HTML page: the server sent an error or login page)" if b"<" in head[:16] else ""
        raise DataError(
            f"{archive.name} is neither a zip nor a readable tar archive{hint}: {str(exc).splitlines()[0]}"
        ) from None


def _check_layout(card: DatasetCard, root: Path) -> None:
    for pattern, expected in card.expect.items():
        found = len(list(root.glob(pattern)))
        if found != expected:
            raise DataError(
                f"dataset '{card.name}' after download: expected {expected} files matching {pattern}, found "
                f"{found}. The archive's layout differs from the card ({card.path}); nothing was kept."
            )
