"""Write output files so that a reader never sees half of one.

Every file supportlens writes for people (labels, summaries, coding sheets, QDA projects,
reports) goes through a temporary file in the target folder, is flushed to disk, and is renamed
into place: an interrupted run leaves the previous file or none, never a truncated one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


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
