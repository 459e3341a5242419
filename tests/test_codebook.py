import pytest

from supportlens.cli.common import in_cli_terms
from supportlens.codebook import CodebookError, codebook_from_dict, load_codebook


def test_labels_and_ids(codebook):
    assert codebook.labels == ["push", "pull", "co_creation", "none"]
    assert codebook.label2id["co_creation"] == 2
    assert codebook.id2label[0] == "push"


@pytest.mark.parametrize(
    "alias",
    ["Co-creation/exchange", "co creation", "exchange", "CO_CREATION", "Co-creation or exchange", " co-creation "],
)
def test_aliases_normalise(codebook, alias):
    assert codebook.normalise(alias) == "co_creation"


def test_unknown_alias_is_none(codebook):
    assert codebook.normalise("maybe") is None


def test_every_code_is_fully_defined(codebook):
    for code in codebook.codes:
        assert code.short and code.definition and code.use_when and code.do_not_use_when
    assert "contrast" in codebook.multiple_approaches_rule or "used to" in codebook.multiple_approaches_rule


def test_alias_claimed_twice_is_an_error():
    raw = {
        "codes": [
            {"label": "a", "short": "x", "definition": "x", "aliases": ["both"]},
            {"label": "b", "short": "y", "definition": "y", "aliases": ["both"]},
        ]
    }
    with pytest.raises(CodebookError, match="'both'"):
        codebook_from_dict(raw)


def test_missing_definition(tmp_path):
    path = tmp_path / "cb.yaml"
    path.write_text("codes:\n  - label: a\n    short: s\n  - label: b\n    short: s\n    definition: d\n")
    with pytest.raises(CodebookError, match=r"codes\[0\] is missing 'definition'"):
        load_codebook(path)


def test_roundtrip(tmp_path, codebook):
    codebook.save(tmp_path / "cb.yaml")
    again = load_codebook(tmp_path / "cb.yaml")
    assert again.labels == codebook.labels
    assert again.code("pull").definition == codebook.code("pull").definition


@pytest.mark.parametrize("examples", ['"one passage, not a list"', "[1, 2]", '["ok", ""]'])
def test_examples_must_be_a_list_of_passages(tmp_path, examples):
    path = tmp_path / "cb.yaml"
    path.write_text(
        "codes:\n  - label: a\n    short: s\n    definition: d\n"
        f"    examples: {examples}\n  - label: b\n    short: s\n    definition: d\n"
    )
    with pytest.raises(CodebookError, match=r"codes\[0\].examples must be a list of non-empty passages"):
        load_codebook(path)


def test_examples_feed_the_prior_and_roundtrip(tmp_path, codebook):
    assert all(c.examples for c in codebook.codes)
    assert codebook.code("pull").prior_texts()[-len(codebook.code("pull").examples) :] == list(
        codebook.code("pull").examples
    )
    codebook.save(tmp_path / "cb.yaml")
    assert load_codebook(tmp_path / "cb.yaml").code("push").examples == codebook.code("push").examples


def test_missing_relative_codebook_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        CodebookError, match=f"relative to {tmp_path}: run from the project folder, or give the codebook a"
    ) as err:
        load_codebook("configs/mine.yaml")
    # the command line names its option instead
    assert f"relative to {tmp_path}: run from the project folder, or give --codebook" in in_cli_terms(str(err.value))
    assert "`codebook` names the one bundled with supportlens" in str(err.value)
