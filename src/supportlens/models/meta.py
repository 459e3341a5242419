"""A saved model folder's metadata file: its name, its format version, and reading it back.

Apart from `base` (which needs scikit-learn) so that what only looks at a model folder, such as
`supportlens.tracking` finding one in a downloaded artifact, loads no model library.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

META_FILE = "supportlens.json"
FORMAT_VERSION = 1


class ModelLoadError(RuntimeError):
    """A model folder or pretrained encoder cannot be loaded."""


def read_meta(path: str | Path) -> dict[str, Any]:
    """The metadata of the model saved in folder ``path``; an error that says why it is not one."""
    path = Path(path)
    meta_file = path / META_FILE
    if not meta_file.is_file():
        raise ModelLoadError(f"{path}: not a supportlens model folder (no {META_FILE})")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ModelLoadError(
            f"{path}: saved by a newer supportlens (format {meta['format_version']}); upgrade supportlens to load it"
        )
    return meta
