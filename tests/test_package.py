"""The package's public API, used as the README shows it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import CODEBOOK, ROOT, fast_overrides


def test_readme_api_snippet_works_every_time(coded_file, tmp_path):
    """`from supportlens import load_config, train, load_classifier` then `train(...)`, twice.
    The modules that define `train` and `segment` (training, segmentation), once imported as the CLI
    imports them, must not shadow the functions, and stay ordinary modules for patching."""
    script = textwrap.dedent(f"""
        import supportlens
        from supportlens import load_config, train, load_classifier
        cfg = load_config({str(CODEBOOK.parent / "tfidf.yaml")!r}, {fast_overrides()!r} + ["data.path={coded_file}"])
        for _ in range(2):
            result = train(cfg, track=False, log=lambda message: None)
            model = load_classifier(result.model_dir)
            assert model.predict_proba(["we designed the plan together"]).shape == (1, 4)
        # the modules, imported again
        import supportlens.cli.app, supportlens.training.trainer, supportlens.transcripts.segmentation
        from supportlens import train as again, segment, read_transcript
        assert again is train is supportlens.train and callable(supportlens.train)
        import supportlens.training.trainer as module  # a module, as a user or a patch target expects
        assert module.train is train and callable(module.add_coded)
        transcript = read_transcript({str(ROOT / "data" / "transcripts" / "smp01_child_welfare.txt")!r})
        assert segment(transcript) and segment(transcript) == supportlens.segment(transcript)
        from supportlens.training.trainer import add_coded  # the module's other names stay importable
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


def test_licence_metadata_is_an_spdx_expression():
    """`license = { text = "MIT" }` made setuptools warn three times during `make demo` that the
    table form is deprecated: the SPDX string needs setuptools 77 or later to build."""
    import tomllib
    import warnings

    from packaging.requirements import Requirement
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert not [w for w in caught if "license" in str(w.message).lower()], [str(w.message) for w in caught]
    assert dist.metadata.license_expression == "MIT"
    build = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]["requires"]
    setuptools = next(Requirement(r) for r in build if Requirement(r).name == "setuptools")
    assert not setuptools.specifier.contains("76.99") and setuptools.specifier.contains("77.0")
