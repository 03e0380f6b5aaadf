"""The download path, against a local HTTP server on 127.0.0.1 serving archives built here."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
import warnings
import zipfile
from pathlib import Path

import pytest

from gantk.data.cards import DatasetCard, RemoteFile
from gantk.data.download import UnverifiedDownloadWarning, download_dataset
from gantk.errors import DataError


@pytest.fixture
def server(tmp_path: Path):
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _tar(root: Path, name: str, files: dict[str, bytes]) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    (root / name).write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def _card(url: str, sha256: str = "", **kw) -> DatasetCard:
    remote = RemoteFile(url=url, sha256=sha256, extract=True, strip="toy")
    return DatasetCard(name="toy", kind="image_folder", description="", files=(remote,), **kw)


def test_download_verify_extract(server, tmp_path: Path):
    root, base = server
    digest = _tar(root, "toy.tar.gz", {"toy/train/a.txt": b"a", "toy/train/b.txt": b"bb"})
    dest = tmp_path / "datasets" / "toy"
    download_dataset(_card(f"{base}/toy.tar.gz", digest, expect={"train/*.txt": 2}), dest)
    assert (dest / "train" / "b.txt").read_bytes() == b"bb"
    assert [p.name for p in dest.parent.iterdir()] == ["toy"]  # no temporary folder left


def test_checksum_mismatch_leaves_nothing(server, tmp_path: Path):
    root, base = server
    _tar(root, "toy.tar.gz", {"toy/a.txt": b"a"})
    dest = tmp_path / "datasets" / "toy"
    with pytest.raises(DataError, match="checksum mismatch.*expected sha256 0000"):
        download_dataset(_card(f"{base}/toy.tar.gz", "0" * 64), dest)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no half-written or temporary folder


def test_plain_file_with_md5_and_mirror(server, tmp_path: Path):
    root, base = server
    (root / "f.gz").write_bytes(b"payload")
    md5 = hashlib.md5(b"payload").hexdigest()
    remote = RemoteFile(url=f"{base}/missing.gz", mirrors=(f"{base}/f.gz",), md5=md5, save_as="raw/f.gz")
    card = DatasetCard(name="plain", kind="mnist", description="", files=(remote,))
    dest = download_dataset(card, tmp_path / "plain")
    assert (dest / "raw" / "f.gz").read_bytes() == b"payload"


def test_layout_mismatch_keeps_nothing(server, tmp_path: Path):
    root, base = server
    digest = _tar(root, "toy.tar.gz", {"toy/a.txt": b"a"})
    with pytest.raises(DataError, match="expected 5 files"):
        download_dataset(_card(f"{base}/toy.tar.gz", digest, expect={"*.txt": 5}), tmp_path / "toy")
    assert not (tmp_path / "toy").exists()


def test_unverified_download_warns(server, tmp_path: Path):
    root, base = server
    _tar(root, "toy.tar.gz", {"toy/a.txt": b"a"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        download_dataset(_card(f"{base}/toy.tar.gz"), tmp_path / "toy")
    assert any(issubclass(w.category, UnverifiedDownloadWarning) for w in caught)


def test_archive_escaping_the_folder_is_refused(server, tmp_path: Path):
    root, base = server
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.txt", "x")
    (root / "evil.zip").write_bytes(buf.getvalue())
    card = DatasetCard(
        name="evil", kind="image_folder", description="", files=(RemoteFile(url=f"{base}/evil.zip", extract=True),)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="outside the dataset folder"):
            download_dataset(card, tmp_path / "d" / "evil")
    assert not (tmp_path / "d" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_unreachable_server_is_a_clear_error(tmp_path: Path):
    remote = RemoteFile(url="http://127.0.0.1:9/nothing.tar.gz", sha256="0" * 64)
    card = DatasetCard(name="x", kind="mnist", description="", files=(remote,))
    with pytest.raises(DataError, match="could not download.*--data PATH"):
        download_dataset(card, tmp_path / "x", timeout=5)
    assert not (tmp_path / "x").exists()


def test_locate_downloads_into_datasets_folder(server, tmp_path: Path, monkeypatch):
    """The whole lookup chain: not in $GANTK_DATA, not in datasets/, so fetched by its card."""
    from gantk import data
    from gantk.data import cards

    root, base = server
    digest = _tar(root, "toy.tar.gz", {"toy/img/a.txt": b"a"})
    card_dir = tmp_path / "datasets"
    card_dir.mkdir()
    (card_dir / "toy.yaml").write_text(
        f"name: toy\nkind: image_folder\nfiles:\n  - url: {base}/toy.tar.gz\n    sha256: {digest}\n"
        "    extract: true\n    strip: toy\n"
    )
    monkeypatch.setattr(cards, "CARDS_DIR", card_dir)
    monkeypatch.setattr(cards, "DATA_DIR", card_dir)
    monkeypatch.setenv("GANTK_DATA", str(tmp_path / "elsewhere"))
    folder, kind = data.locate("toy")
    assert folder == card_dir / "toy" and kind == "image_folder"
    assert (folder / "img" / "a.txt").exists()


def test_a_card_without_files_says_where_to_put_the_data(tmp_path: Path):
    from gantk.data.cards import CARDS_DIR, load_card

    card = load_card(CARDS_DIR / "sr.yaml")
    assert card.files == () and card.kind == "sr"
    with pytest.raises(DataError, match=r"lists nothing to download; place it in .*sr"):
        download_dataset(card, tmp_path / "sr")
    assert not (tmp_path / "sr").exists()


@pytest.fixture
def odd_server():
    """A server that misbehaves by path: /dribble sends a byte every 20 ms without end, /short announces
    1,000 bytes and sends 10, /big sends 100 bytes."""
    import time

    class Odd(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            if self.path == "/dribble":
                self.send_header("Content-Length", str(10**9))
                self.end_headers()
                try:
                    for _ in range(2000):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.02)
                except OSError:
                    return
            elif self.path == "/short":
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"0123456789")
            else:
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b"y" * 100)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Odd)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(
    ("path", "limits", "message"),
    [
        ("/dribble", {"stall_s": 0.3}, r"/dribble: the transfer stalled: \d+ bytes in the last"),
        ("/dribble", {"total_s": 0.3, "stall_s": 100}, r"/dribble: the download took longer than 0.3 s"),
        ("/short", {}, r"/short: the transfer ended after 10 of the 1,000 bytes announced \(truncated\)"),
        ("/big", {"max_bytes": 10}, r"/big: it announces 100 bytes, more than the 10"),
    ],
)
def test_a_stalled_endless_truncated_or_oversized_download_is_refused_naming_the_url(
    odd_server, tmp_path, path, limits, message
):
    """Even for a card without a checksum, where a truncated file used to be accepted (issues 30, 33)."""
    from gantk.data.download import Limits

    remote = RemoteFile(url=f"{odd_server}{path}", save_as="f.bin")
    card = DatasetCard(name="odd", kind="image_folder", description="", files=(remote,))
    dest = tmp_path / "datasets" / "odd"
    with pytest.raises(DataError, match=message):
        download_dataset(card, dest, limits=Limits(**limits))
    assert list(dest.parent.iterdir()) == []  # no .partial-* folder kept


def test_a_partial_folder_a_killed_download_left_is_removed(server, tmp_path: Path):
    root, base = server
    digest = _tar(root, "toy.tar.gz", {"toy/train/a.txt": b"a"})
    dest = tmp_path / "datasets" / "toy"
    dest.parent.mkdir(parents=True)
    (dest.parent / ".toy.partial-999999999-xyz").mkdir()  # its process is gone
    download_dataset(_card(f"{base}/toy.tar.gz", digest, expect={"train/*.txt": 1}), dest)
    assert [p.name for p in dest.parent.iterdir()] == ["toy"]


def test_an_html_page_instead_of_an_archive_is_named_as_such(server, tmp_path: Path):
    root, base = server
    (root / "toy.tar.gz").write_bytes(b"<html><body>Access denied</body></html>")
    with (
        pytest.raises(
            DataError, match=r"toy.tar.gz is neither a zip nor a readable tar archive \(it starts like an HTML"
        ),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", UnverifiedDownloadWarning)
        download_dataset(_card(f"{base}/toy.tar.gz"), tmp_path / "datasets" / "toy")
    assert list((tmp_path / "datasets").iterdir()) == []
