"""Model kinds behind one interface; built from config, loaded from a model folder.

The only package that imports torch, transformers and onnxruntime. Importing it is cheap: every
name here is looked up on first use, and a model class (with scikit-learn, and torch for most
kinds) is imported only when it is named, built or loaded (`registry`). So `supportlens runs`,
`report` and `agreement` start without them. Imports `config`, `codebook`, `calibration` and `io`;
never corpus, evaluation, tracking or the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

from supportlens.models.registry import MODEL_KINDS, model_class

# public name -> the module that defines it, imported on first use (``from supportlens.models import
# FineTuneClassifier`` imports torch then, not before)
_NAMES = {
    "META_FILE": "supportlens.models.meta",
    "ModelLoadError": "supportlens.models.meta",
    "TextClassifier": "supportlens.models.base",
    "build_model": "supportlens.models.registry",
    "load_classifier": "supportlens.models.registry",
    **{name: module for module, name in MODEL_KINDS.values()},
}


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    if name == "MODEL_CLASSES":  # every kind's class: imports them all
        return {kind: model_class(kind) for kind in MODEL_KINDS}
    raise AttributeError(f"module 'supportlens.models' has no attribute {name!r}")


__all__ = ["MODEL_CLASSES", "MODEL_KINDS", "model_class", *_NAMES]
