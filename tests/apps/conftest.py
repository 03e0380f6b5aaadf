"""Fixtures for the app tests."""

import subprocess
import sys

import pytest

from tests.helpers import REPO
from tests.helpers.apps import free_port, wait_until_up


@pytest.fixture
def serve_script():
    """Start ``python apps/NAME.py ARGS --port P`` as users do; yields its URL; stops it afterwards."""
    procs = []

    def start(name: str, *args: str) -> str:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "apps" / f"{name}.py"), *args, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}/"
        wait_until_up(url, proc)
        return url

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
