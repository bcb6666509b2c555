"""Run directories that never mix two runs' files, checked before any data is loaded.

A new run goes into a directory that does not exist or is empty; an existing run is either
continued (resume) or replaced whole (force: its old files are removed first). Default names
never collide: a name taken by another run gets -2, -3, ... appended.
"""
import os
import shutil
import tempfile
import time

from .errors import GlyphnetError

# Less free space than this on the run directory's disk is refused before training.
MIN_FREE_BYTES = 32 * 2**20
# Files that mark a directory as a glyphnet run (only such a directory is replaced by force).
RUN_FILES = ("config.toml", "model.npz", "checkpoint.npz", "metrics.json", "history.csv")


def _existing_ancestor(path):
    path = os.path.abspath(path)
    while not os.path.lexists(path):
        path = os.path.dirname(path)
    return path


def check_writable(path):
    """Raise a GlyphnetError naming the path unless run files can be written into ``path``
    (created if need be): a file in the way, a folder without write permission or a disk
    with less than MIN_FREE_BYTES free are each one clear message."""
    base = _existing_ancestor(path)
    if not os.path.isdir(base):
        if base == os.path.abspath(path):
            raise GlyphnetError(f"{path} is a file, not a directory; choose another --out")
        raise GlyphnetError(f"{base} is a file in the way of the run directory {path}")
    try:
        fd, probe = tempfile.mkstemp(dir=base, prefix=".glyphnet-probe.", suffix=".tmp")
        try:
            os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise GlyphnetError(f"cannot write the run directory {path}: {base}: "
                            f"{exc.strerror or exc}") from None
    free = shutil.disk_usage(base).free
    if free < MIN_FREE_BYTES:
        raise GlyphnetError(f"cannot write the run directory {path}: only {free / 2**20:.1f} "
                            f"MiB free on its disk ({base}); free some space or choose "
                            f"another --out")


def is_run(path):
    """Whether ``path`` is a directory holding a glyphnet run's files."""
    return os.path.isdir(path) and any(os.path.exists(os.path.join(path, f))
                                       for f in RUN_FILES)


def prepare(path, resume=False, force=False):
    """Make ``path`` ready for a run, or raise a GlyphnetError saying why not.

    resume: ``path`` must be a run with a checkpoint (it is continued as it is).
    force: an existing run directory there is emptied first.
    Otherwise an existing non-empty ``path`` is refused.
    """
    if resume and force:
        raise GlyphnetError("--resume and --force contradict each other: choose one")
    if resume:
        if not os.path.isfile(os.path.join(path, "checkpoint.npz")):
            raise GlyphnetError(f"{path}: no checkpoint.npz there, nothing to resume"
                                if os.path.isdir(path) else f"{path}: no such run directory")
        if not os.path.isfile(os.path.join(path, "config.toml")):
            raise GlyphnetError(f"{path}: no config.toml there, the run cannot be resumed")
    elif os.path.isdir(path) and os.listdir(path):
        if not force:
            raise GlyphnetError(f"{path} already exists and is not empty; use --resume {path} "
                                f"to continue the run there or --force to replace it")
        if not is_run(path):
            raise GlyphnetError(f"{path} holds files but no glyphnet run (no "
                                f"{', '.join(RUN_FILES)}); --force replaces only run "
                                f"directories, choose another --out")
        check_writable(path)
        for name in os.listdir(path):
            full = os.path.join(path, name)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
    check_writable(path)
    return path


def new_name(stem, parent="runs"):
    """Create and return a fresh directory parent/STEM-YYYYmmdd-HHMMSS (with -2, -3, ... when
    that name is taken, also by a run started at the same second elsewhere)."""
    base = os.path.join(parent, f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    check_writable(parent)
    os.makedirs(parent, exist_ok=True)
    for n in range(1, 10_000):
        candidate = base if n == 1 else f"{base}-{n}"
        try:
            os.mkdir(candidate)
        except FileExistsError:
            continue
        return candidate
    raise GlyphnetError(f"no free run directory name like {base} in {parent}")
