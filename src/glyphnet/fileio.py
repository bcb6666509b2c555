"""Writing files so that a crash or an error never leaves half a file behind."""
import contextlib
import glob
import os
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path, mode="wb"):
    """Open a temporary file beside ``path`` for writing; when the block ends without an error
    it replaces ``path`` (with the permissions a new file would get), otherwise it is removed.
    Parent folders are created. Temporary files of an earlier write of ``path`` that was
    killed before it could clean up are removed first."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    for leftover in glob.glob(os.path.join(glob.escape(directory),
                                           f".{glob.escape(os.path.basename(path))}.*.tmp")):
        with contextlib.suppress(OSError):
            os.unlink(leftover)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path, content):
    """Write text or bytes to ``path`` atomically."""
    with atomic_open(path, "wb" if isinstance(content, bytes) else "w") as f:
        f.write(content)
