"""The registry of model kinds: each kind names the class that says it is that kind, and a kind's
module is imported only when the kind is used."""

import subprocess
import sys

import pytest

from supportlens.models import MODEL_KINDS, ModelLoadError, load_classifier, model_class


@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_each_kind_names_its_class(kind):
    assert model_class(kind).kind == kind


def test_importing_the_models_package_loads_no_model_library():
    """`import supportlens.models` (as tracking does) must not import torch, scikit-learn or a kind."""
    script = (
        "import sys, supportlens.models, supportlens.models.registry\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sklearn', 'supportlens.models.tfidf')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_an_unknown_kind_in_a_model_folder_is_a_load_error(tmp_path):
    (tmp_path / "supportlens.json").write_text('{"kind": "mystery", "params": {}, "classes": []}', encoding="utf-8")
    with pytest.raises(ModelLoadError, match="unknown model kind 'mystery'"):
        load_classifier(tmp_path)
