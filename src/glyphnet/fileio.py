"""Writing files so that a crash or an error never leaves half a file behind, and reading
the npz archives glyphnet writes."""
import contextlib
import errno
import glob
import os
import tempfile
import zipfile

from .errors import GlyphnetError

# Write failures that are the disk's or the folder's, not a bug: one clear error naming the path.
DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path, mode="wb"):
    """Open a temporary file beside ``path`` for writing; when the block ends without an error
    it replaces ``path`` (with the permissions a new file would get), otherwise it is removed.
    Parent folders are created. Temporary files of an earlier write of ``path`` that was
    killed before it could clean up are removed first. A full disk or a folder that cannot be
    written is a GlyphnetError naming ``path``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        _disk_error(exc, path)
        raise
    for leftover in glob.glob(os.path.join(glob.escape(directory),
                                           f".{glob.escape(os.path.basename(path))}.*.tmp")):
        with contextlib.suppress(OSError):
            os.unlink(leftover)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                                   suffix=".tmp")
    except OSError as exc:
        _disk_error(exc, path)
        raise
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            _disk_error(exc, path)
        raise


def _disk_error(exc, path):
    if exc.errno in DISK_ERRORS:
        raise GlyphnetError(f"cannot write {path}: {exc.strerror}") from None


def write_atomic(path, content):
    """Write text or bytes to ``path`` atomically."""
    with atomic_open(path, "wb" if isinstance(content, bytes) else "w") as f:
        f.write(content)


# What reading a damaged, truncated or foreign .npz archive can raise.
NPZ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def read_npz(path):
    """Every array of the .npz archive at ``path`` as a dict, without pickle. Raises
    FileNotFoundError when there is no file, else one of NPZ_ERRORS for a damaged one."""
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    if not zipfile.is_zipfile(path):
        raise ValueError("not an .npz archive")
    import numpy as np
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
