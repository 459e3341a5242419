"""Where supportlens keeps what it can rebuild: unpacked encoders, ONNX graphs, downloaded models.

One root for all of them, so a user can move or clear it in one place."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$SUPPORTLENS_CACHE``, else ``$XDG_CACHE_HOME/supportlens`` or ``~/.cache/supportlens``."""
    explicit = os.environ.get("SUPPORTLENS_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "supportlens"
