"""Load the apps (scripts in apps/, not a package) and serve them on a free local port."""

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlparse

from tests.helpers import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [  # as root in a closed network: no sandbox, and no background calls home
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browser_available() -> bool:
    """Chromium is here, or CI demands it (GANTK_REQUIRE_BROWSER=1 makes a missing one a failure)."""
    return os.path.exists(CHROMIUM) or bool(os.environ.get("GANTK_REQUIRE_BROWSER"))


def open_page(pw, outside: list[str], height: int = 900):
    """Debian's chromium through playwright, and a 1200 px wide page that records in ``outside`` every
    request leaving 127.0.0.1 (the apps must load nothing from the internet)."""
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1200, "height": height})
    page.on("request", lambda r: urlparse(r.url).hostname not in ("127.0.0.1", None) and outside.append(r.url))
    return browser, page


def load_app(name: str):
    """Import ``apps/NAME.py`` as ``python apps/NAME.py`` would see it (``apps/`` on the path)."""
    if str(REPO / "apps") not in sys.path:
        sys.path.insert(0, str(REPO / "apps"))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "apps" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen | None = None, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the app exited with code {proc.returncode}: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"nothing answered at {url} within {timeout} s")
