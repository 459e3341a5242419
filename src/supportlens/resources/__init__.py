"""The files that ship inside the package (codebook, configs, sample data) and the one rule that finds
a file the user named, so that every command works from any folder after ``pip install``.

The repository keeps these files where a reader looks for them, ``configs/`` and ``data/``;
pyproject.toml's ``package-dir`` maps those folders to the packages ``supportlens.resources.configs``
and ``supportlens.resources.data``, so the wheel carries one copy of each and an editable install
reads the repository's own files. The bundled tree mirrors the repository's paths
(``configs/tfidf.yaml``, ``data/transcripts/smp01_child_welfare.txt``), so a bundled config's
relative paths resolve inside the bundle as they do in the repository.

The rule (`resolve`):
  1. a path that exists is used as is (a user's file always wins);
  2. a relative path that does not exist here, or a bare name (``default``, ``tfidf``, ``codebook``,
     ``experiments/setfit-minilm``), is tried as ``configs/<name>.yaml`` in this folder, then among
     the bundled files; a file the user named (``--config``, ``--codebook`` or its default) that
     comes from the bundle is noted (logger ``supportlens.resources``, which the CLI prints), since
     a run should say which file it used;
  3. otherwise the path comes back unchanged, for the caller's "not found" error (`bundled_hint`).
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path, PurePosixPath

logger = logging.getLogger(__name__)

# top-level folder of the repository -> the package it ships as (pyproject.toml, package-dir)
_PACKAGES = {"configs": "supportlens.resources.configs", "data": "supportlens.resources.data"}


def bundled_file(name: str | Path) -> Path | None:
    """The bundled file at repository-relative ``name`` (``configs/tfidf.yaml``), else None.

    A filesystem path: pip installs packages unpacked, and the callers open files by path."""
    parts = PurePosixPath(Path(name).as_posix()).parts
    if len(parts) < 2 or parts[0] not in _PACKAGES or ".." in parts:
        return None
    try:
        found = resources.files(_PACKAGES[parts[0]]).joinpath(*parts[1:])
    except ModuleNotFoundError:  # an old editable install made before the mapping: nothing bundled
        return None
    return Path(str(found)) if found.is_file() else None


def sample_transcripts() -> list[Path]:
    """The bundled sample transcripts (authored, illustrative), for `supportlens init` to copy."""
    folder = Path(str(resources.files(_PACKAGES["data"]).joinpath("transcripts")))
    return sorted(p for p in folder.glob("smp*") if p.is_file())


def _candidates(name: str) -> list[str]:
    """The repository-relative names ``name`` may stand for: itself, and under configs/ with .yaml."""
    names = [name] if PurePosixPath(name).suffix else [name, f"{name}.yaml"]
    out = []
    for n in names:
        out.append(n)
        if PurePosixPath(n).parts[0] not in _PACKAGES:
            out.append(f"configs/{n}")
    return out


def resolve(path: str | Path, note: bool = True) -> Path:
    """The file ``path`` names: the user's own when it exists, else the bundled copy, else ``path``
    unchanged for the caller to report missing. ``note=False`` for the paths inside a config: an
    option (``--data``) may still replace them, and the run logs the resolved config anyway."""
    given = Path(path)
    if given.exists() or given.is_absolute() or not str(path).strip():
        return given
    candidates = _candidates(given.as_posix())
    for candidate in candidates[1:]:  # a project's own configs/<name>.yaml before the bundled one
        if Path(candidate).is_file():
            return Path(candidate)
    for candidate in candidates:
        found = bundled_file(candidate)
        if found is not None:
            if note:
                logger.info("no %s in %s: using the one bundled with supportlens (%s)", candidate, Path.cwd(), found)
            return found
    return given


def bundled_configs() -> list[str]:
    """Names ``--config`` accepts for the bundled configs (``tfidf``, ``experiments/setfit-minilm``)."""
    try:
        root = resources.files(_PACKAGES["configs"])
    except ModuleNotFoundError:
        return []
    names = []
    for entry in root.iterdir():
        if entry.is_dir():
            names += [f"{entry.name}/{PurePosixPath(e.name).stem}" for e in entry.iterdir() if e.name.endswith(".yaml")]
        elif entry.name.endswith(".yaml") and entry.name != "codebook.yaml":
            names.append(PurePosixPath(entry.name).stem)
    return sorted(names, key=lambda n: ("/" in n, n))


def bundled_hint(kind: str) -> str:
    """The end of a "not found" message: the bundled names that would have worked."""
    if kind == "codebook":
        return "; `codebook` names the one bundled with supportlens"
    names = bundled_configs()
    shown = [n for n in names if "/" not in n]
    more = len(names) - len(shown)
    return f"; bundled with supportlens: {', '.join(shown)}" + (
        f" and {more} under experiments/ (e.g. {next(n for n in names if '/' in n)})" if more else ""
    )
