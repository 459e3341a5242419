from pathlib import Path

import pytest

from supportlens.cli.common import in_cli_terms
from supportlens.config import DEFAULT_CODEBOOK, Config, ConfigError, load_config, parse_overrides

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("**/*.yaml"))


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.name != "codebook.yaml"], ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    assert cfg.model.kind in ("tfidf_logreg", "embed_logreg", "finetune", "codebook_prior", "setfit", "ensemble", "llm")
    for member in cfg.ensemble.members:  # ensemble members are shipped configs too
        assert (path.parents[1] / member).is_file() or Path(member).is_file(), member


def test_default_and_finetune_configs():
    root = Path(__file__).resolve().parents[1]
    assert load_config(root / "configs/default.yaml").model.kind == "ensemble"
    assert load_config(root / "configs/finetune.yaml").model.kind == "finetune"


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"train\.epoch"):
        load_config(path)


def test_unknown_section_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trian:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match="trian"):
        load_config(path)


def test_wrong_type_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: three\n")
    with pytest.raises(ConfigError, match=r"train\.epochs must be an integer"):
        load_config(path)


def test_bool_is_not_an_int(tmp_path):
    with pytest.raises(ConfigError, match="train.batch_size"):
        load_config(None, ["train.batch_size=true"])


def test_invalid_choice():
    with pytest.raises(ConfigError, match="model.kind must be one of"):
        load_config(None, ["model.kind=forest"])


def test_overrides_apply_and_int_becomes_float():
    cfg = load_config(None, ["train.epochs=3", "train.learning_rate=1", "tracking.register=sl"])
    assert cfg.train.epochs == 3
    assert cfg.train.learning_rate == 1.0 and isinstance(cfg.train.learning_rate, float)
    assert cfg.tracking.register == "sl"


def test_override_without_equals():
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_overrides(["train.epochs"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_range_checks():
    with pytest.raises(ConfigError, match="split.test_size"):
        load_config(None, ["split.test_size=0.7"])
    with pytest.raises(ConfigError, match="cv_folds"):
        load_config(None, ["split.cv_folds=1"])


def test_flat_has_dotted_keys():
    flat = load_config(None).flat()
    assert flat["train.epochs"] == 4
    assert "model.pretrained" in flat


def test_config_paths_work_from_any_directory(tmp_path, monkeypatch):
    """Paths written from the project root (configs/…, data/…) still resolve when the config is
    named from elsewhere; paths that exist from the working directory are kept as written."""
    project = tmp_path / "study"
    (project / "configs").mkdir(parents=True)
    (project / "data").mkdir()
    (project / "configs" / "codebook.yaml").write_text("codes: []\n")
    (project / "data" / "coded.csv").write_text("text,label\n")
    for name in ("a", "b"):
        (project / "configs" / f"{name}.yaml").write_text("model: {kind: tfidf_logreg}\n")
    main = project / "configs" / "main.yaml"
    main.write_text(
        "codebook: configs/codebook.yaml\ndata: {path: data/coded.csv}\nmodel: {kind: ensemble}\n"
        "ensemble: {members: [configs/a.yaml, b.yaml]}\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(main)
    assert Path(cfg.codebook) == project / "configs" / "codebook.yaml"
    assert Path(cfg.data.path) == project / "data" / "coded.csv"
    assert [Path(m) for m in cfg.ensemble.members] == [project / "configs" / "a.yaml", project / "configs" / "b.yaml"]
    monkeypatch.chdir(project)
    at_root = load_config(main)
    assert at_root.codebook == "configs/codebook.yaml" and at_root.ensemble.members[0] == "configs/a.yaml"
    missing = load_config(main, ["codebook=nowhere.yaml"])
    assert missing.codebook == "nowhere.yaml"  # left as written, for the error that names it


def test_missing_relative_config_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ConfigError, match=f"relative to {tmp_path}: run from the project folder, or give the config a"
    ) as err:
        load_config("configs/mine.yaml")
    # the command line names its option instead
    assert f"relative to {tmp_path}: run from the project folder, or give --config" in in_cli_terms(str(err.value))
    # and names the configs that would have worked from here
    assert "bundled with supportlens: default, embed-logreg, embed-prior, finetune, llm, tfidf, zeroshot and " in str(
        err.value
    )
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "absent.yaml")
    assert "relative to" not in str(err.value)  # an absolute path needs no hint


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.rdrop_alpha=-1", r"train\.rdrop_alpha must be 0 \(off\) or more, got -1"),
        ("train.layer_decay=0", r"train\.layer_decay must be in \(0, 1\], got 0"),
        ("train.layer_decay=1.5", r"train\.layer_decay must be in \(0, 1\], got 1.5"),
    ],
)
def test_regularisation_settings_are_checked(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_the_default_codebook_path_is_defined_once():
    """The config's default and every command's fallback are one constant, so they cannot drift."""
    from supportlens.cli import assist, qda
    from supportlens.cli import report as report_command
    from supportlens.inference import report

    assert Config().codebook == DEFAULT_CODEBOOK == "configs/codebook.yaml"
    for module in (assist, qda, report_command, report):
        assert module.DEFAULT_CODEBOOK is DEFAULT_CODEBOOK, module.__name__
