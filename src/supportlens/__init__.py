"""supportlens: code implementation-support interviews as push, pull, co-creation or none.

The public API (importing it is cheap; heavy libraries load on first use):

    from supportlens import load_config, load_codebook, load_coded, train, load_classifier

The functions ``train`` and ``segment`` live in the modules ``training`` and ``segmentation``: a
function named like its module would be replaced by the module as soon as the module is imported.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_config": ".config", "Config": ".config",
    "load_codebook": ".codebook", "Codebook": ".codebook",
    "load_coded": ".dataset", "DataError": ".dataset",
    "grouped_split": ".splits",
    "build_model": ".models", "load_classifier": ".models",
    "train": ".training", "cross_validate": ".training",
    "evaluate_model": ".evaluate", "evaluate_file": ".evaluate",
    "cohens_kappa": ".agreement", "krippendorff_alpha": ".agreement",
    "read_transcript": ".read", "expand_inputs": ".read", "ReadError": ".read",
    "segment": ".segmentation", "SpeakerRules": ".segmentation",
    "Labeler": ".predict", "predict_files": ".predict",
    "import_qdpx": ".qda", "export_suggestions": ".qda", "export_codebook": ".qda",
    "predict_to_qdpx": ".qda", "QdaError": ".qda",
    "build_report": ".report", "render_report": ".report",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'supportlens' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
