"""What the apps share: the port each one serves on (issue 16: two apps started as the README says)."""

import socket

import pytest

from tests.helpers.apps import free_port, load_app

app_common = load_app("app_common")


def test_without_port_an_app_takes_its_default_or_the_next_free_one():
    start = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", start))
        busy.listen()
        chosen = app_common.choose_port("127.0.0.1", None, start, "test app")
    assert chosen > start  # the first app holds the default: the second comes up beside it


def test_an_explicit_busy_port_is_one_line_naming_it():
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        with pytest.raises(SystemExit, match=rf"test app: error: port {port} on 127.0.0.1 is in use"):
            app_common.choose_port("127.0.0.1", port, 7860, "test app")


def test_the_two_apps_default_to_different_ports():
    assert load_app("synthesis").DEFAULT_PORT != load_app("superres").DEFAULT_PORT


def test_a_negative_pixel_limit_is_one_line_before_anything_loads(capsys):
    superres = load_app("superres")
    assert superres.main(["--max-pixels", "-5", "--checkpoint", "/nonexistent"]) == 2
    assert "--max-pixels must be between 1 and" in capsys.readouterr().err
