"""What every gantk Gradio app shares: offline settings, checked inputs, safe result files, launching.

Imported by the apps in this folder (``python apps/NAME.py`` puts the folder on ``sys.path``).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import gradio as gr  # noqa: E402

IMAGE_BUTTONS = ["download", "fullscreen"]  # no "share": it posts to Hugging Face
CACHE_SECONDS = 600  # result files older than this are deleted (ours and Gradio's cache)
QUEUE = {"default_concurrency_limit": 2, "max_size": 64}  # CPU-bound work: 2 at a time, a bounded wait

# System fonts only: the default theme would fetch web fonts from the internet.
THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "Consolas", "monospace"]
)


def whole_number(value, name: str, low: int, high: int) -> int:
    """``value`` as an int in [low, high], or a :class:`gr.Error` naming the field (API calls skip the UI)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{name} must be a whole number from {low} to {high}; got {value!r}.") from None
    if number != int(number) or not low <= number <= high:
        raise gr.Error(f"{name} must be a whole number from {low} to {high}; got {value!r}.")
    return int(number)


class ScratchFiles:
    """Result images as PNG files named by their content, written atomically, deleted after a while.

    Gradio, handed a PIL image, writes it to its cache in place, under a name made from the bytes: two
    concurrent requests for the same picture then overwrite a file while it is being served, and a client
    gets a truncated download (1 in 200 requests in benchmarks/app_load.py). Handed a finished file,
    Gradio copies it into its cache through a temporary name and a rename, which is safe.
    """

    def __init__(self, prefix: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=prefix))
        self.pruned_at = 0.0

    def save_png(self, image, name: str = "") -> str:
        """Save ``image``; with ``name`` the file is called that (in a folder named by the content), so a
        download arrives as, say, ``cat-x4.png`` rather than a hash."""
        buf = io.BytesIO()
        image.save(buf, "PNG")
        data = buf.getvalue()
        digest = hashlib.sha256(data).hexdigest()[:24]
        path = self.folder / digest / name if name else self.folder / f"{digest}.png"
        path.parent.mkdir(exist_ok=True)
        if path.exists():
            os.utime(path)  # handed out again: not to be pruned before Gradio has copied it
        else:
            tmp = path.with_suffix(f".{os.getpid()}-{time.monotonic_ns()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        self.prune()
        return str(path)

    def prune(self) -> None:
        """Delete files older than CACHE_SECONDS; the folder is scanned at most every tenth of that."""
        now = time.time()
        if now - self.pruned_at < CACHE_SECONDS / 10:
            return
        self.pruned_at = now
        cutoff = now - CACHE_SECONDS
        for old in self.folder.glob("**/*.png"):
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
                    if old.parent != self.folder:
                        old.parent.rmdir()
            except OSError:
                pass  # another request removed it first, or its folder is in use again


def port_is_free(host: str, port: int) -> bool:
    """True when a server could bind ``host:port`` now."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(host: str, port: int | None, default: int, name: str) -> int:
    """``port`` if free (else a one-line error naming it); without one, ``default`` or the next free port
    above it, so two apps started as the README says both come up."""
    if port is not None:
        if not 1 <= port <= 65535:
            raise SystemExit(f"{name}: error: --port must be between 1 and 65535; got {port}.")
        if not port_is_free(host, port):
            raise SystemExit(
                f"{name}: error: port {port} on {host} is in use (another app or server); pass another --port, or "
                "leave --port out to take the next free one."
            )
        return port
    for candidate in range(default, default + 100):
        if port_is_free(host, candidate):
            return candidate
    raise SystemExit(f"{name}: error: no free port in {default}..{default + 99} on {host}; pass --port.")


def launch(app: gr.Blocks, host: str, port: int, **extra) -> None:
    """Serve ``app``: errors shown to the user, no server-side rendering (no Node), system fonts only."""
    app.launch(
        server_name=host, server_port=port, show_error=True, ssr_mode=False, theme=THEME, footer_links=[], **extra
    )
