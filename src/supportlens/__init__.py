"""supportlens: code implementation-support interviews as push, pull, co-creation or none.

The public API (importing it is cheap; heavy libraries load on first use):

    from supportlens import load_config, load_codebook, load_coded, train, load_classifier

``supportlens.train`` and ``supportlens.segment`` are always the *functions*, also after their
modules have been imported; the modules themselves are ``sys.modules["supportlens.train"]``, or
reached by ``from supportlens.train import ...``.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_config": ".config", "Config": ".config",
    "load_codebook": ".codebook", "Codebook": ".codebook",
    "load_coded": ".dataset", "DataError": ".dataset",
    "grouped_split": ".splits",
    "build_model": ".models", "load_classifier": ".models",
    "train": ".train", "cross_validate": ".train",
    "evaluate_model": ".evaluate", "evaluate_file": ".evaluate",
    "cohens_kappa": ".agreement", "krippendorff_alpha": ".agreement",
    "read_transcript": ".read", "expand_inputs": ".read", "ReadError": ".read",
    "segment": ".segment", "SpeakerRules": ".segment",
    "Labeler": ".predict", "predict_files": ".predict",
    "import_qdpx": ".qda", "export_suggestions": ".qda", "export_codebook": ".qda",
    "predict_to_qdpx": ".qda", "QdaError": ".qda",
    "build_report": ".report", "render_report": ".report",
}
# API functions named like the module that defines them (supportlens.train.train)
_SAME_NAME = frozenset(name for name, module in _EXPORTS.items() if module == f".{name}")


class _Package(types.ModuleType):
    """The package module. Importing a submodule makes Python set it as an attribute of its
    package, so importing ``supportlens.train`` (which the CLI, `evaluate` and others do) would
    replace the function ``supportlens.train`` with the module; that one assignment is refused."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SAME_NAME and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value  # looked up once
        return value
    raise AttributeError(f"module 'supportlens' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
