"""The download helper against a local HTTP server on 127.0.0.1: a download is checked and cached, a cached
copy is used without the network, a wrong hash is refused and nothing is kept, and an unreachable server
gives a message that says where to put the file by hand."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from functools import partial
from pathlib import Path

import pytest

from dgm_course.data.download import DownloadUnavailable, HashMismatch, cache_dir, fetch, sha256

CONTENT = b"a public-domain painting, in bytes\n" * 1000
SHA = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www on a free port of 127.0.0.1; yields (base URL, list of requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "painting.jpg").write_bytes(CONTENT)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fetch_downloads_checks_and_caches(server, tmp_path):
    base, requests = server
    cache = tmp_path / "cache"
    path = fetch(f"{base}/painting.jpg", SHA, directory=cache)
    assert path == cache / "painting.jpg" and path.read_bytes() == CONTENT and sha256(path) == SHA
    assert requests == ["/painting.jpg"]
    again = fetch(f"{base}/painting.jpg", SHA.upper(), directory=cache)  # from the cache: no second request
    assert again == path and requests == ["/painting.jpg"]
    assert not list(cache.glob("*.part"))


def test_a_cached_copy_needs_no_network(server, tmp_path):
    base, _ = server
    cache = tmp_path / "cache"
    fetch(f"{base}/painting.jpg", SHA, name="minotaur.jpg", directory=cache)
    offline = f"http://127.0.0.1:{_closed_port()}/painting.jpg"
    assert fetch(offline, SHA, name="minotaur.jpg", directory=cache).read_bytes() == CONTENT


def test_a_wrong_hash_is_refused_and_nothing_is_kept(server, tmp_path):
    base, _ = server
    cache = tmp_path / "cache"
    wrong = "0" * 64
    with pytest.raises(HashMismatch, match=f"SHA-256 {SHA}, not the expected {wrong}"):
        fetch(f"{base}/painting.jpg", wrong, directory=cache)
    assert list(cache.iterdir()) == []
    # a damaged cached copy is replaced by a fresh download
    (cache / "painting.jpg").write_bytes(b"truncated")
    assert fetch(f"{base}/painting.jpg", SHA, directory=cache).read_bytes() == CONTENT


def test_offline_and_missing_files_say_what_to_do(server, tmp_path):
    base, _ = server
    cache = tmp_path / "cache"
    with pytest.raises(DownloadUnavailable, match=r"put a copy of the file \(SHA-256 [0-9a-f]{64}\) at .*painting.jpg"):
        fetch(f"http://127.0.0.1:{_closed_port()}/painting.jpg", SHA, directory=cache, timeout=5)
    with pytest.raises(DownloadUnavailable, match="HTTP 404"):
        fetch(f"{base}/missing.jpg", SHA, directory=cache)
    assert not list(cache.glob("*.part"))
    with pytest.raises(ValueError, match="SHA-256 in hex"):
        fetch(f"{base}/painting.jpg", "abc", directory=cache)


def test_the_cache_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DGM_DATA", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("DGM_DATA")
    assert cache_dir() == Path.home() / ".cache" / "dgm_course"


def test_bad_arguments_are_refused_before_anything_is_written(server, tmp_path):
    base, requests = server
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="sha must be a SHA-256 in hex .*got None"):
        fetch(f"{base}/painting.jpg", None, directory=cache)
    for url in ("painting.jpg", "ftp://example/painting.jpg", "http:///painting.jpg"):
        with pytest.raises(ValueError, match="url must be an http"):
            fetch(url, SHA, directory=cache)
    for name in ("../escape.jpg", "sub/dir.jpg", ".."):
        with pytest.raises(ValueError, match="name must be a plain file name"):
            fetch(f"{base}/painting.jpg", SHA, name=name, directory=cache)
    assert requests == [] and not cache.exists() and not (tmp_path / "escape.jpg").exists()


def test_a_connection_dropped_mid_file_is_retryable_not_a_changed_file(tmp_path):
    """The server promises the whole file and closes halfway: that is a failed download (try again), not a file
    with another hash."""

    class HalfHandler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(CONTENT)))
            self.end_headers()
            self.wfile.write(CONTENT[: len(CONTENT) // 2])
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HalfHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(DownloadUnavailable, match="trying again may work"):
            fetch(f"http://127.0.0.1:{httpd.server_address[1]}/painting.jpg", SHA, directory=tmp_path)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left


def test_a_copy_placed_by_hand_is_kept_when_offline(tmp_path):
    mine = tmp_path / "painting.jpg"
    mine.write_bytes(b"my own scan of the painting")
    with pytest.raises(DownloadUnavailable, match="has another SHA-256 and was left as it is"):
        fetch(f"http://127.0.0.1:{_closed_port()}/painting.jpg", SHA, directory=tmp_path, timeout=5)
    assert mine.read_bytes() == b"my own scan of the painting"


def test_concurrent_fetches_of_one_file_do_not_collide(server, tmp_path):
    base, _ = server
    cache = tmp_path / "cache"
    results, errors = [], []

    def one():
        try:
            results.append(fetch(f"{base}/painting.jpg", SHA, directory=cache))
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 6 and sha256(results[0]) == SHA
    assert [p.name for p in cache.iterdir()] == ["painting.jpg"]
