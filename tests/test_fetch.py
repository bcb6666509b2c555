"""`glyphnet data fetch` against files served on a loopback port: progress, SHA-256 checks,
resuming with HTTP Range, clean failures, the zip-archive source."""
import hashlib
import http.server
import io
import os
import threading
import zipfile

import pytest

from glyphnet import cli
from glyphnet.data import fetch
from glyphnet.data.datasets import DATASETS
from glyphnet.errors import DataError

NAMES = ["emnist-balanced-train-images-idx3-ubyte.gz", "emnist-balanced-test-labels-idx1-ubyte.gz"]


class Server(http.server.ThreadingHTTPServer):
    """Serves ``files`` (path -> bytes). ``drop_after`` bytes: the next responses stop early
    (``drops`` times); ``ranges``: whether Range requests are honoured."""

    def __init__(self, files):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files, self.drop_after, self.drops, self.ranges = files, None, 0, True
        self.requests = []

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and srv.ranges:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if srv.drops and srv.drop_after is not None:
            srv.drops -= 1
            payload = payload[:srv.drop_after]  # the client then sees the connection close
            self.close_connection = True
        self.wfile.write(payload)


@pytest.fixture
def server():
    contents = {name: os.urandom(200_000 + 1000 * i) for i, name in enumerate(NAMES)}
    files = {f"/mirror/{n}": body for n, body in contents.items()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, body in contents.items():
            zf.writestr(f"gzip/{n}", body)
        zf.writestr("gzip/emnist-letters-train-labels-idx1-ubyte.gz", b"other split")
    files["/EMNIST/gzip.zip"] = buf.getvalue()
    srv = Server(files)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    srv.table = {n: (len(b), hashlib.sha256(b).hexdigest()) for n, b in contents.items()}
    srv.contents = contents
    yield srv
    srv.shutdown()
    srv.server_close()


def run_fetch(server, dest, url, **kw):
    return fetch.fetch("emnist-balanced", dest=str(dest), url=url, files=server.table,
                       stream=io.StringIO(), timeout=5, **kw)


def assert_fetched(server, dest):
    assert sorted(os.listdir(dest)) == sorted(NAMES)  # nothing else: no .part, no temp files
    for n in NAMES:
        assert (dest / n).read_bytes() == server.contents[n]


def test_per_file_mirror_with_progress(server, tmp_path):
    stream = io.StringIO()
    paths = fetch.fetch("emnist-balanced", dest=str(tmp_path), url=server.url + "/mirror/",
                        files=server.table, stream=stream, timeout=5)
    assert paths == [str(tmp_path / n) for n in NAMES]
    assert_fetched(server, tmp_path)
    assert "100%" in stream.getvalue() and "MB/s" in stream.getvalue()
    # A second run only checks the files.
    before = len(server.requests)
    stream = io.StringIO()
    fetch.fetch("emnist-balanced", dest=str(tmp_path), url=server.url + "/mirror",
                files=server.table, stream=stream)
    assert len(server.requests) == before and "already present and verified" in stream.getvalue()


def test_dropped_connection_is_resumed_with_a_range_request(server, tmp_path):
    server.drop_after, server.drops = 50_000, 2
    run_fetch(server, tmp_path, server.url + "/mirror")
    assert_fetched(server, tmp_path)
    first = [r for p, r in server.requests if p.endswith(NAMES[0])]
    assert first == [None, "bytes=50000-", "bytes=100000-"]


def test_server_without_range_support_restarts_the_download(server, tmp_path):
    server.drop_after, server.drops, server.ranges = 70_000, 1, False
    run_fetch(server, tmp_path, server.url + "/mirror")
    assert_fetched(server, tmp_path)


def test_interrupted_download_keeps_only_a_part_file_then_resumes(server, tmp_path):
    server.drop_after, server.drops = 30_000, 5
    with pytest.raises(DataError, match=r"interrupted .* the partial file .*\.part is kept"):
        run_fetch(server, tmp_path, server.url + "/mirror", retries=1)
    assert os.listdir(tmp_path) == [NAMES[0] + ".part"]
    assert (tmp_path / (NAMES[0] + ".part")).stat().st_size == 60_000
    server.drops = 0
    run_fetch(server, tmp_path, server.url + "/mirror")
    assert_fetched(server, tmp_path)
    assert ("/mirror/" + NAMES[0], "bytes=60000-") in server.requests


def test_checksum_mismatch_deletes_the_download(server, tmp_path):
    bad = dict(server.table)
    bad[NAMES[1]] = (bad[NAMES[1]][0], "0" * 64)
    with pytest.raises(DataError, match=r"SHA-256 of the download is [0-9a-f]{64}, expected 0+;"):
        fetch.fetch("emnist-balanced", dest=str(tmp_path), url=server.url + "/mirror",
                    files=bad, stream=None)
    assert os.listdir(tmp_path) == [NAMES[0]]  # the good file stays, the bad one is gone


def test_missing_file_and_unreachable_server_fail_cleanly(server, tmp_path):
    with pytest.raises(DataError, match="HTTP 404"):
        run_fetch(server, tmp_path, server.url + "/nowhere")
    assert os.listdir(tmp_path) == []
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    with pytest.raises(DataError, match="cannot download .*are you online"):
        fetch.fetch("emnist-balanced", dest=str(tmp_path), url=f"http://127.0.0.1:{port}/x",
                    files=server.table, stream=None, timeout=2)
    assert os.listdir(tmp_path) == []


def test_zip_archive_source_extracts_only_the_wanted_members(server, tmp_path):
    server.drop_after, server.drops = 100_000, 1
    run_fetch(server, tmp_path, server.url + "/EMNIST/gzip.zip")
    assert_fetched(server, tmp_path)  # archive deleted, the other split not extracted
    keep = tmp_path / "keep"
    run_fetch(server, keep, server.url + "/EMNIST/gzip.zip", keep_archive=True)
    assert sorted(os.listdir(keep)) == sorted(NAMES + ["gzip.zip"])


def test_zip_with_a_corrupt_member_is_deleted(server, tmp_path):
    bad = dict(server.table)
    bad[NAMES[0]] = (bad[NAMES[0]][0], "f" * 64)
    with pytest.raises(DataError, match="does not match the official size/SHA-256"):
        fetch.fetch("emnist-balanced", dest=str(tmp_path), url=server.url + "/EMNIST/gzip.zip",
                    files=bad, stream=None)
    assert os.listdir(tmp_path) == []


def test_cli_fetch_into_the_data_directory(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GLYPHNET_DATA", "unused")  # --data-dir wins over it
    entry = DATASETS["emnist-balanced"]
    monkeypatch.setattr(entry, "fetch", {**entry.fetch, "files": server.table})
    code = cli.main(["data", "--data-dir", str(tmp_path), "fetch", "emnist-balanced",
                     "--url", server.url + "/mirror"])
    assert code == 0
    assert_fetched(server, tmp_path / "emnist")
    assert "2 verified file(s)" in capsys.readouterr().out


def test_official_table_matches_the_published_sizes():
    files = DATASETS["emnist-balanced"].fetch["files"]
    assert files["emnist-balanced-train-images-idx3-ubyte.gz"][0] == 28207740
    assert len(files) == 4 and all(len(sha) == 64 for _, sha in files.values())
