"""supportlens: code implementation-support interviews as push, pull, co-creation or none.

The public API (importing it is cheap; heavy libraries load on first use):

    from supportlens import load_config, load_codebook, load_coded, train, load_classifier

The stages are subpackages named for the pipeline (transcripts -> corpus -> models -> training ->
evaluation -> tracking -> inference -> qda/assist -> cli); each one's docstring says what it owns and
what it may import. No function here is named like a module, so importing one never hides the other.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_config": ".config",
    "Config": ".config",
    "load_codebook": ".codebook",
    "Codebook": ".codebook",
    "load_coded": ".corpus.dataset",
    "DataError": ".corpus.dataset",
    "grouped_split": ".corpus.splits",
    "build_model": ".models",
    "load_classifier": ".models",
    "train": ".training.trainer",
    "cross_validate": ".training.trainer",
    "evaluate_model": ".evaluation.evaluate",
    "evaluate_file": ".training.evaluate_run",
    "cohens_kappa": ".evaluation.agreement",
    "krippendorff_alpha": ".evaluation.agreement",
    "read_transcript": ".transcripts.read",
    "expand_inputs": ".transcripts.read",
    "ReadError": ".transcripts.read",
    "segment": ".transcripts.segmentation",
    "SpeakerRules": ".transcripts.segmentation",
    "Labeler": ".inference.labeler",
    "predict_files": ".inference.predict",
    "import_qdpx": ".qda.importing",
    "export_suggestions": ".qda.exporting",
    "export_codebook": ".qda.exporting",
    "predict_to_qdpx": ".inference.qdpx",
    "QdaError": ".qda.project",
    "build_report": ".inference.report",
    "render_report": ".inference.report",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'supportlens' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
