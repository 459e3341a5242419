"""ONNX Runtime as the CPU engine for fine-tuned classifiers.

Why: on a 2-core CPU, ONNX Runtime scores passages faster than eager torch, with the same fp32
logits to about 1e-6 (experiments/bench_predict.py). What it takes: a fused bias + GELU kernel,
LayerNorm and residual Add left unfused (ORT's fused SkipLayerNormalization is the slower one on our
CPU), eager attention in the graph instead of SDPA's NaN guards, a last layer that computes only
the [CLS] token the classifier reads, one thread per batch with as many batches in flight as torch
has threads, and for ``--fast`` int8 MatMuls (dynamic quantisation).

The ONNX graph is exported lazily, the first time a model folder is scored on CPU, and cached:
- where: ``<model folder>/onnx/<key>/``; if the model folder cannot be written, the user cache
  (``$SUPPORTLENS_CACHE``, else ``$XDG_CACHE_HOME/supportlens`` or ``~/.cache/supportlens``),
  under ``onnx/<key>/``. ``key`` hashes the saved weights, config and tokenizer files plus
  :data:`EXPORT_VERSION`, so a changed model never meets a stale graph;
- how: every file is written atomically next to a ``.json`` sidecar (size and SHA-256), written
  after it. A file without a sidecar (an interrupted export) or that no longer matches it
  (corruption) is deleted and rebuilt;
- checked: a fresh export is compared with torch on probe passages before it is cached. The
  TorchScript exporter, for one, produced wrong logits for transformers 5 BERT models without
  failing, so we use the ``torch.export`` (dynamo) exporter and never trust an export unchecked.

Lazy export rather than export in ``save``: models trained before this engine existed, and folders
copied from elsewhere, get it too; training runs and their MLflow artifacts stay as they were
(no extra 90 MB per run); and a graph is only built on machines that score on CPU.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from supportlens.io.atomic import write_atomic
from supportlens.io.cache import cache_root
from supportlens.models.encoders import file_sha256, folder_digest, length_sorted_batches

log = logging.getLogger("supportlens")

EXPORT_VERSION = 1  # bump when the exported graph or its quantisation changes
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
MAX_EXPORT_ERROR = 1e-3  # max |logit difference| vs torch on the probe passages (fp32 gives ~1e-6)
# ONNX Runtime graph rewrites we turn off. Its fused SkipLayerNormalization kernel took 3-4x the
# time of the LayerNormalization + Add it replaces on our passages (AMD EPYC Zen 4, ORT 1.32), 19% of
# the int8 graph's time: without it int8 scores 18% and fp32 7% more passages per CPU second, with
# fp32 logits equal to ~1e-7 (experiments/bench_predict.py, README "Labelling speed").
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)
# Most passages per ONNX Runtime call, whatever batch size the caller asks for. Smaller batches keep
# a layer's activations in the core's cache: on 480 corpus excerpts, one thread, int8 scored 179
# passages per CPU second in batches of 4, 170 in 8, 153 in 16 and 141 in 32 (fp32 gains less).
MAX_BATCH = 4
# The int8 graph scores one passage per call. Dynamic quantisation scales each call's activations
# by their largest value, so in a batch a passage's int8 logits would depend on its batch-mates, and
# a --fast label on which files were scored together. Alone, each passage gets the same label in
# every run, for about 2% of int8 speed on one thread (1 passage: 172 per CPU second, 4: 174) and
# 5-10% in the two-thread benchmark (README, "Labelling speed").
INT8_BATCH = 1

# Probe passages for the export check: different lengths, so padding and the dynamic axes are used.
PROBE_TEXTS = (
    "we designed the plan together with the families and the staff, and shared every decision",
    "the county asked for help",
    "ok",
)


class OnnxUnavailable(RuntimeError):
    """ONNX Runtime cannot be used for this model (not installed, export failed, no cache)."""


def onnx_runtime_installed() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


# -- cache ------------------------------------------------------------------------------------
def user_cache_dir() -> Path:
    """Where graphs go when the model folder is read-only."""
    return cache_root()


def weights_key(hf_dir: Path) -> str:
    """Hash of every file of the saved transformers model (weights, config, tokenizer)."""
    if not any(p.is_file() for p in Path(hf_dir).rglob("*")):
        raise OnnxUnavailable(f"{hf_dir}: no saved model files to export")
    return folder_digest(hf_dir, salt=f"supportlens-onnx-v{EXPORT_VERSION}")


class GraphCache:
    """Verified, atomically written graph files for one model (see the module docstring)."""

    def __init__(self, model_dir: Path, key: str):
        self.key = key
        self.roots = [Path(model_dir) / "onnx" / key, user_cache_dir() / "onnx" / key]

    def find(self, name: str) -> Path | None:
        """The first intact cached copy of ``name``; broken copies are removed on the way."""
        for root in self.roots:
            path = root / name
            if not path.exists() and not _sidecar(path).exists():
                continue
            problem = _verify(path)
            if problem is None:
                return path
            log.warning("ONNX cache %s is %s; rebuilding it", path, problem)
            _discard(path)
        return None

    def store(self, name: str, write: Callable[[Path], object]) -> Path:
        """Write ``name`` with ``write(tmp_path)`` into the first writable root."""
        errors = []
        for root in self.roots:
            try:  # can we write here at all? (read-only model folder, missing permissions)
                root.mkdir(parents=True, exist_ok=True)
                tempfile.TemporaryFile(dir=root).close()
            except OSError as exc:
                errors.append(f"{root}: {exc.strerror or exc}")
                continue
            path = write_atomic(root / name, write)
            _write_sidecar(
                path, {"file": name, "bytes": path.stat().st_size, "sha256": file_sha256(path), "key": self.key}
            )
            return path
        raise OnnxUnavailable("cannot write the ONNX cache: " + "; ".join(errors))


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _write_sidecar(path: Path, record: dict) -> None:
    text = json.dumps(record)
    write_atomic(_sidecar(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _discard(path: Path) -> None:
    for stale in (path, _sidecar(path)):
        with contextlib.suppress(OSError):
            stale.unlink()


def _verify(path: Path) -> str | None:
    """None if ``path`` matches its sidecar, else what is wrong with it."""
    try:
        record = json.loads(_sidecar(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "incomplete (no checksum file)"
    except (OSError, ValueError):
        return "unreadable (bad checksum file)"
    if not path.is_file():
        return "missing"
    if path.stat().st_size != record.get("bytes") or file_sha256(path) != record.get("sha256"):
        return "corrupt (checksum mismatch)"
    return None


# -- export and quantisation ------------------------------------------------------------------
@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's and quantiser's progress prints, warnings and root-logger notes.

    A NullHandler on the root logger stops ``logging.warning`` from configuring a stderr
    handler behind our back (onnxruntime.quantization logs through the root logger)."""
    root = logging.getLogger()
    null = logging.NullHandler()
    root.addHandler(null)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
        root.removeHandler(null)


def input_names(model, tokenizer) -> list[str]:
    """Tokenizer outputs that the model's forward accepts, in the tokenizer's order."""
    import inspect

    accepted = inspect.signature(model.forward).parameters
    return [name for name in tokenizer.model_input_names if name in accepted]


def export_fp32(model, tokenizer, max_length: int, dest: Path) -> None:
    """Export ``model`` (a transformers sequence classifier on CPU) with dynamic batch and length.

    Eager attention is exported rather than SDPA: SDPA's decomposition adds IsNaN/Where guards
    that cost 6-8% of ONNX Runtime's time on our passages."""
    import torch

    names = input_names(model, tokenizer)
    example = tokenizer(
        list(PROBE_TEXTS[:2]), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    batch, length = torch.export.Dim("batch"), torch.export.Dim("sequence")
    model.eval()
    attention = getattr(model.config, "_attn_implementation", None)
    with _quiet(), torch.no_grad():
        try:
            if attention not in (None, "eager"):
                model.set_attn_implementation("eager")
            program = torch.onnx.export(
                first_token_classifier(model) or model,
                (),
                kwargs={name: example[name] for name in names},
                dynamo=True,
                input_names=names,
                output_names=["logits"],
                dynamic_shapes={name: {0: batch, 1: length} for name in names},
                optimize=True,
                verbose=False,
            )
        finally:
            if attention not in (None, "eager"):
                model.set_attn_implementation(attention)
        assert program is not None  # with dynamo=True, export returns the program
        program.save(str(dest))


def first_token_classifier(model):
    """A BERT sequence classifier whose last layer computes only the first token, or None.

    The pooler reads only the first ([CLS]) token of the last layer, so its queries, attention
    output and feed-forward for every other token are wasted: 3/4 of the last layer's work, about
    12% of a 6-layer model. Keys and values still see every token, so the logits are the same
    (checked against torch after every export). Other architectures are exported as they are."""
    import torch

    if type(model).__name__ != "BertForSequenceClassification":
        return None
    config, bert = model.config, getattr(model, "bert", None)
    if (
        bert is None
        or bert.pooler is None
        or config.is_decoder
        or config.add_cross_attention
        or getattr(config, "position_embedding_type", "absolute") != "absolute"
    ):
        return None

    class FirstTokenBert(torch.nn.Module):
        def __init__(self, classifier):
            super().__init__()
            self.classifier = classifier

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            bert = self.classifier.bert
            hidden = bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            # additive mask, as transformers' eager attention uses it: 0 for tokens, -inf-ish for padding
            bias = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
            *layers, last = bert.encoder.layer
            for layer in layers:
                out = layer(hidden, bias)
                hidden = out[0] if isinstance(out, tuple) else out
            first = _first_token_layer(last, hidden, bias)
            pooled = bert.pooler(first)
            return self.classifier.classifier(self.classifier.dropout(pooled))

    return FirstTokenBert(model).eval()


def _first_token_layer(layer, hidden, bias):
    """``layer`` (a BertLayer in eval mode) applied to ``hidden`` with queries from token 0 only."""
    import torch

    att = layer.attention.self
    heads, size = att.num_attention_heads, att.attention_head_size
    batch = hidden.shape[0]
    query = att.query(hidden[:, :1]).view(batch, 1, heads, size).transpose(1, 2)
    key = att.key(hidden).view(batch, -1, heads, size).transpose(1, 2)
    value = att.value(hidden).view(batch, -1, heads, size).transpose(1, 2)
    weights = torch.softmax(query @ key.transpose(2, 3) * size**-0.5 + bias, dim=-1)
    context = (weights @ value).transpose(1, 2).reshape(batch, 1, heads * size)
    attended = layer.attention.output(context, hidden[:, :1])
    return layer.output(layer.intermediate(attended), attended)


def quantize_int8(source: Path, dest: Path) -> None:
    """Dynamic int8 quantisation of the MatMul weights, one scale per output channel.

    Signed int8 weights (QInt8) and ORT's u8 x s8 kernels; see bench_predict.py for the
    alternatives measured."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():
        quantize_dynamic(str(source), str(dest), per_channel=True, weight_type=QuantType.QInt8)


# -- the engine -------------------------------------------------------------------------------
class OnnxEngine:
    """ONNX Runtime sessions for one fine-tuned model: fp32 always, int8 once asked for."""

    def __init__(self, fp32_path: Path, cache: GraphCache, threads: int):
        self.cache = cache
        self.threads = max(1, threads)
        self.fp32_path = fp32_path
        self.fp32 = self._session(fp32_path)
        self.names = [i.name for i in self.fp32.get_inputs()]
        self.int8 = None
        self.int8_path: Path | None = None
        self.exported = False  # True when this engine built the graph instead of reusing the cache

    @classmethod
    def for_model(cls, model, tokenizer, model_dir: Path, max_length: int, threads: int) -> OnnxEngine:
        """Open the cached graph of the model saved in ``model_dir``, exporting it on first use."""
        if not onnx_runtime_installed():
            raise OnnxUnavailable("onnxruntime is not installed (pip install onnxruntime)")
        hf_dir = Path(model_dir) / "hf"
        cache = GraphCache(model_dir, weights_key(hf_dir))
        path = cache.find(FP32_FILE)
        if path is not None:
            try:
                return cls(path, cache, threads)
            except OnnxUnavailable as exc:  # intact but unloadable (e.g. written by another ORT)
                log.warning("%s; exporting it again", exc)
                _discard(path)
        started = time.perf_counter()
        try:
            path = cache.store(FP32_FILE, lambda tmp: export_fp32(model, tokenizer, max_length, tmp))
        except OnnxUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - exporters raise many types; all mean "no graph"
            raise OnnxUnavailable(f"ONNX export failed ({type(exc).__name__}: {str(exc)[:200]})") from exc
        try:
            engine = cls(path, cache, threads)
            error = engine.max_error_vs(model, tokenizer, max_length)
            if not error <= MAX_EXPORT_ERROR:
                raise OnnxUnavailable(f"the exported graph disagrees with torch (max logit difference {error:.2g})")
        except OnnxUnavailable:
            _discard(path)  # never leave a graph we would not use in the cache
            raise
        engine.exported = True
        log.info("exported %s in %.0f s", path, time.perf_counter() - started)
        return engine

    def _session(self, path: Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # one thread per run, ``threads`` runs at once (see logits): no spinning thread pool
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            return ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=list(DISABLED_OPTIMIZERS)
            )
        except Exception as exc:  # noqa: BLE001 - ORT raises its own pybind types
            raise OnnxUnavailable(f"{path}: ONNX Runtime cannot load it ({str(exc)[:200]})") from exc

    def enable_int8(self) -> None:
        """Open (quantising and caching on first use) the int8 graph."""
        if self.int8 is not None:
            return
        path = self.cache.find(INT8_FILE)
        if path is None:
            try:
                path = self.cache.store(INT8_FILE, lambda tmp: quantize_int8(self.fp32_path, tmp))
            except OnnxUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001
                raise OnnxUnavailable(f"int8 quantisation failed ({type(exc).__name__}: {str(exc)[:200]})") from exc
        self.int8 = self._session(path)
        self.int8_path = path

    def logits(
        self, tokenizer, texts: Sequence[str], batch_size: int, max_length: int, int8: bool = False
    ) -> np.ndarray:
        """Logits in input order, from length-sorted batches (at most :data:`MAX_BATCH` passages in
        fp32, one in int8) tokenised while earlier ones run.

        ``threads`` batches run at once, each on one thread: on 2 cores this beat one batch on
        two threads by ~15% for int8 (and tied in fp32), since these matrices are too small to
        split well and an idle thread pool spins (experiments/bench_predict.py)."""
        session = self.int8 if int8 else self.fp32
        if session is None:
            raise RuntimeError("call enable_int8() before scoring with int8")
        batch_size = INT8_BATCH if int8 else max(1, min(batch_size, MAX_BATCH))
        out: np.ndarray | None = None
        running: deque = deque()

        def collect() -> None:
            nonlocal out
            idx, future = running.popleft()
            values = future.result()[0]
            if out is None:
                out = np.zeros((len(texts), values.shape[1]), dtype=np.float32)
            out[idx] = values

        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            for idx, batch in length_sorted_batches(tokenizer, texts, batch_size, max_length):
                feed = {name: batch[name].numpy() for name in self.names}
                running.append((idx, pool.submit(session.run, None, feed)))
                if len(running) > self.threads:  # bounded: tokenised batches do not pile up
                    collect()
            while running:
                collect()
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def max_error_vs(self, model, tokenizer, max_length: int) -> float:
        """Largest |logit| difference between this fp32 graph and torch on the probe passages."""
        import torch

        texts = list(PROBE_TEXTS)
        ours = self.logits(tokenizer, texts, len(texts), max_length)
        batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        with torch.inference_mode():
            theirs = model(**{name: batch[name] for name in self.names}).logits.float().numpy()
        return float(np.abs(ours - theirs).max())
