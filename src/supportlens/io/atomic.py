"""Write output files so that a reader never sees half of one.

Every file supportlens writes for people (labels, summaries, coding sheets, QDA projects,
reports) goes through a temporary file in the target folder, is flushed to disk, and is renamed
into place: an interrupted run leaves the previous file or none, never a truncated one.
Folders that must be whole (a trained model) are built the same way, beside their final place,
and take a free name rather than replace anything there.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _default_mode() -> int:
    return 0o666 & ~_umask()


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``
    (whatever ``write`` returns, e.g. ``Path.write_text``'s character count, is ignored).

    The file gets ordinary permissions (mkstemp's are 0600, which would keep shared outputs
    private to their writer)."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_new_folder(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary folder beside ``path`` (named ``.<name>.*.tmp``, so
    listings that skip hidden names skip it), then rename it to ``path``, or to the first free
    ``path-2``, ``path-3``, … when another run (or anything else) holds that name; the path it got.

    An existing folder is never replaced, and a failure (Ctrl-C included) removes the temporary
    folder: no half-written folder ever appears under a name that looks finished."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        write(staging)
        _fsync_tree(staging)
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's 0700 would keep a shared model private
        final = _rename_to_free_name(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_dir(path.parent)
    return final


def _rename_to_free_name(staging: Path, path: Path) -> Path:
    """Rename ``staging`` to ``path`` or ``path-N``, the first name nothing holds. The existence
    check keeps a rename from replacing an empty folder (POSIX allows that); the rename's own
    refusal covers a name taken between the check and the rename."""
    for n in range(1, 10_000):
        candidate = path if n == 1 else path.with_name(f"{path.name}-{n}")
        if candidate.exists() or candidate.is_symlink():
            continue
        try:
            os.rename(staging, candidate)
        except OSError as exc:  # taken meanwhile: EEXIST/ENOTEMPTY on POSIX, FileExistsError on Windows
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) or isinstance(exc, FileExistsError):
                continue
            raise
        return candidate
    raise FileExistsError(f"{path}: no free folder name from {path.name}-2 to {path.name}-9999")


def _fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder`` to disk, so the rename never publishes empty files after
    a power cut."""
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as fh:
                os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (the rename) where the platform allows it (not on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
