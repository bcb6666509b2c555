"""Downloading the data sets that are too big to bundle: ``glyphnet data fetch emnist-balanced``.

Each file is downloaded to NAME.part, resumed with an HTTP Range request when the connection
drops (or on the next run), checked against its known size and SHA-256, and only then renamed to
its final name; a file that fails the check is deleted. So a final name never holds half a file.

Two kinds of source URL work:
- a .zip archive (the official NIST ``gzip.zip``, 561 MB, which holds every EMNIST split): it is
  downloaded (resumably), the wanted members are extracted and verified, and the archive is
  deleted unless ``keep_archive`` is set;
- any other URL is a base: each file is fetched from BASE/FILENAME (a mirror of the .gz files).
"""
import hashlib
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from http.client import HTTPException

from ..errors import DataError

CHUNK = 1 << 16


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verified(path, size, sha256):
    return os.path.isfile(path) and (size is None or os.path.getsize(path) == size) and (
        sha256 is None or sha256_of(path) == sha256)


class Progress:
    """'\\r name  12.3 / 28.2 MB  43%  2.1 MB/s' lines on a stream (nothing when stream is None)."""

    def __init__(self, name, total, done=0, stream=sys.stderr):
        self.name, self.total, self.done, self.stream = name, total, done, stream
        self.start, self.start_bytes, self.last = time.perf_counter(), done, 0.0

    def update(self, n):
        self.done += n
        now = time.perf_counter()
        if self.stream is not None and (now - self.last > 0.2 or self.done == self.total):
            self.last = now
            rate = (self.done - self.start_bytes) / max(now - self.start, 1e-9) / 1e6
            total = f" / {self.total / 1e6:.1f}" if self.total else ""
            pct = f"  {100 * self.done / self.total:3.0f}%" if self.total else ""
            self.stream.write(f"\r  {self.name}  {self.done / 1e6:.1f}{total} MB{pct}  "
                              f"{rate:.1f} MB/s")
            self.stream.flush()

    def close(self):
        if self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()


def download(url, path, size=None, sha256=None, retries=3, timeout=30, stream=sys.stderr):
    """Download ``url`` to ``path`` via PATH.part, resuming with HTTP Range after a dropped
    connection (up to ``retries`` times, and again on a later call), then verify the size and
    SHA-256 (when given) and rename. Raises DataError on failure; the .part file is kept only
    when the download was interrupted, so the next call can resume it."""
    part = path + ".part"
    name = os.path.basename(path)
    for attempt in range(retries + 1):
        have = os.path.getsize(part) if os.path.exists(part) else 0
        if size is not None and have > size:
            os.remove(part)
            have = 0
        if size is not None and have == size:
            break
        try:
            if _download_once(url, part, have, size, name, timeout, stream):
                break
        except _Interrupted as exc:
            if attempt == retries:
                raise DataError(f"download of {url} interrupted ({exc.reason}) after "
                                f"{exc.done} bytes; the partial file {part} is kept: run the "
                                f"same command again to resume") from None
            if stream is not None:
                stream.write(f"  connection lost ({exc.reason}); resuming at byte "
                             f"{exc.done}\n")
    got = os.path.getsize(part)
    if size is not None and got != size:
        os.remove(part)
        raise DataError(f"{url}: downloaded {got} bytes but {name} should have {size}; the "
                        f"file was deleted")
    if sha256 is not None:
        digest = sha256_of(part)
        if digest != sha256:
            os.remove(part)
            raise DataError(f"{url}: SHA-256 of the download is {digest}, expected {sha256}; "
                            f"the file is corrupt or not the official one and was deleted")
    os.replace(part, path)
    return path


class _Interrupted(Exception):
    def __init__(self, reason, done):
        super().__init__(reason)
        self.reason, self.done = reason, done


def _download_once(url, part, have, size, name, timeout, stream):
    """One HTTP request appending to ``part`` from byte ``have``; True when complete."""
    headers = {"User-Agent": "glyphnet-fetch"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                          timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have and size is None:
            return True  # the server says there is nothing after byte ``have``
        _drop_empty(part)
        raise DataError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, HTTPException) as exc:
        _drop_empty(part)
        reason = getattr(exc, "reason", exc)
        hint = f"; the partial file {part} is kept for resuming" if have else ""
        raise DataError(f"cannot download {url}: {reason} (are you online? a different "
                        f"source can be given with --url){hint}") from None
    with response:
        status = response.status
        if have and status == 206:
            start = response.headers.get("Content-Range", "").split(" ")[-1].split("-")[0]
            if start != str(have):
                raise DataError(f"{url}: the server resumed at byte {start or '?'} instead of "
                                f"{have}; delete {part} and try again")
            mode = "ab"
        elif status == 200:
            have, mode = 0, "wb"  # no resume support: start again
        else:
            raise DataError(f"cannot download {url}: unexpected HTTP status {status}")
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else size
        bar = Progress(name, total, have, stream)
        done = have
        try:
            with open(part, mode) as f:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    f.write(block)
                    done += len(block)
                    bar.update(len(block))
        except (OSError, HTTPException) as exc:
            bar.close()
            raise _Interrupted(str(exc) or type(exc).__name__, done) from None
        bar.close()
    if total is not None and done < total:
        raise _Interrupted("connection closed early", done)
    return True


def _drop_empty(part):
    if os.path.exists(part) and os.path.getsize(part) == 0:
        os.remove(part)


def extract_members(archive, files, dest, stream=sys.stderr):
    """Extract each wanted file (matched by its base name anywhere in the zip) to ``dest``,
    verifying size and SHA-256 before it gets its final name."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{archive}: not a readable zip archive ({exc})") from None
    with zf:
        members = {os.path.basename(i.filename): i for i in zf.infolist() if not i.is_dir()}
        missing = [n for n in files if n not in members]
        if missing:
            raise DataError(f"{archive}: the archive does not contain {', '.join(missing)}")
        out = []
        for name, (size, sha256) in files.items():
            path = os.path.join(dest, name)
            fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{name}.")
            try:
                with os.fdopen(fd, "wb") as f, zf.open(members[name]) as src:
                    shutil.copyfileobj(src, f, CHUNK)
                if not _verified(tmp, size, sha256):
                    raise DataError(f"{archive}: member {name} does not match the official "
                                    f"size/SHA-256")
                os.replace(tmp, path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(f"{archive}: cannot extract {name} ({exc})") from None
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
            if stream is not None:
                stream.write(f"  extracted and verified {name}\n")
            out.append(path)
    return out


def fetch(name, dest=None, url=None, keep_archive=False, files=None, stream=sys.stderr,
          retries=3, timeout=30, root=None):
    """Download data set ``name`` into ``dest`` (default: DATA/<folder>, DATA being
    $GLYPHNET_DATA or ~/.glyphnet/data). ``url`` overrides the source (a .zip archive or a base
    URL); ``files`` overrides the {file name: (size, sha256)} table (for mirrors and tests).
    Returns the list of file paths."""
    from .datasets import DATASETS, data_dir
    fetchable = [n for n, entry in DATASETS.items() if entry.fetch]
    if name not in fetchable:
        raise DataError(f"no download known for {name!r}; fetchable: {', '.join(fetchable)}")
    entry = DATASETS[name]
    files = files or entry.fetch["files"]
    url = url or entry.fetch["url"]
    dest = dest or os.path.join(data_dir(root), entry.folder)
    os.makedirs(dest, exist_ok=True)
    todo = {n: v for n, v in files.items() if not _verified(os.path.join(dest, n), *v)}
    if stream is not None:
        for n in files:
            if n not in todo:
                stream.write(f"  {n}: already present and verified\n")
    if todo:
        if url.lower().split("?")[0].endswith(".zip"):
            archive = os.path.join(dest, os.path.basename(url.split("?")[0]))
            if stream is not None:
                stream.write(f"downloading {url} (the official archive holds every split; "
                             f"only {len(todo)} file(s) are kept)\n")
            if not os.path.exists(archive):  # kept from an earlier run: complete
                download(url, archive, retries=retries, timeout=timeout, stream=stream)
            try:
                extract_members(archive, todo, dest, stream)
            except DataError:
                os.remove(archive)  # a bad archive must not be reused on the next run
                raise
            if not keep_archive:
                os.remove(archive)
        else:
            base = url.rstrip("/")
            for n, (size, sha256) in todo.items():
                if stream is not None:
                    stream.write(f"downloading {base}/{n}\n")
                download(f"{base}/{n}", os.path.join(dest, n), size, sha256, retries, timeout,
                         stream)
    return [os.path.join(dest, n) for n in files]
