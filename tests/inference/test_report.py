"""The HTML report: built from a real predict run on a tiny TF-IDF model, checked as markup and,
in a real headless Chromium, as the page a reader sees after its script has run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from conftest import CODEBOOK, ROOT, make_rows
from supportlens.cli import app
from supportlens.codebook import codebook_from_dict, load_codebook
from supportlens.inference.labeler import Labeler
from supportlens.inference.predict import predict_files, summarise
from supportlens.inference.report import ReportError, build_report, read_predictions, render_report, shade, write_report
from supportlens.models import TfidfLogReg, load_classifier
from supportlens.transcripts.read import read_transcript
from supportlens.transcripts.segmentation import segment

SAMPLES = ROOT / "data" / "transcripts"
LABELS = ["push", "pull", "co_creation", "none"]
runner = CliRunner()


# -- a small DOM, so tests read the page the way a browser builds it ---------------------------
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def walk(self):
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def find_all(self, tag: str | None = None, **attrs: str | None) -> list[Node]:
        """Nodes of ``tag`` having each attribute (None: present with any value)."""
        out = []
        for node in self.walk():
            if tag is not None and node.tag != tag:
                continue
            if all(k in node.attrs and (v is None or node.attrs[k] == v) for k, v in attrs.items()):
                out.append(node)
        return out

    def has_class(self, name: str) -> bool:
        return name in (self.attrs.get("class") or "").split()


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k.replace("_", "-"): (v if v is not None else "") for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Node(tag, {k: (v or "") for k, v in attrs}))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse(page: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(page)
    builder.close()
    return builder.root


def by_class(dom: Node, name: str) -> list[Node]:
    return [n for n in dom.walk() if n.has_class(name)]


def squash(text: str) -> str:
    return " ".join(text.split())


# -- fixtures: the real path (train -> save -> predict) on two sample transcripts --------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    rows = make_rows(6, 2)
    model = TfidfLogReg(labels=LABELS).fit([r["text"] for r in rows], [r["label"] for r in rows])
    d = tmp_path_factory.mktemp("model") / "m"
    model.save(d, extra={"review_threshold": 0.5})
    return d


@pytest.fixture(scope="module")
def labels_file(model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("labels") / "labels.jsonl"
    report = predict_files(
        [str(SAMPLES / "smp01_child_welfare.txt"), str(SAMPLES / "smp06_juvenile_justice.md")],
        Labeler(load_classifier(model_dir)),
        out,
    )
    assert report.files_done == 2 and not report.failures
    return out


@pytest.fixture(scope="module")
def predictions(labels_file) -> pd.DataFrame:
    frame = pd.read_json(labels_file, lines=True)
    # the tiny model is unsure about much of real talk: both kinds of passage must be in the page
    assert frame["needs_review"].any() and not frame["needs_review"].all()
    return frame


# -- the page in a real browser -----------------------------------------------------------------
def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required under CI (.ci/run installs Debian's chromium)")
        pytest.skip("chromium not installed (apt-get install -y chromium); CI runs this test")
    return found


def _browser_dom(page: Path, profile: Path) -> str:
    args = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_browser_shows_every_passage_the_legend_and_review_links(labels_file, predictions, tmp_path):
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(labels_file), "--out", str(out), "--codebook", str(CODEBOOK)])
    assert result.exit_code == 0, result.output
    assert f"{len(predictions)} passages" in result.output

    dom = parse(_browser_dom(out, tmp_path / "chromium-profile"))

    # the inline script ran: it marks the page and fills the status line
    html_node = dom.find_all("html")[0]
    assert html_node.attrs.get("data-rendered") == "true"
    status = dom.find_all(id="status")[0]
    assert squash(status.text()) == (
        f"Showing {len(predictions)} of {len(predictions)} passages "
        f"({int(predictions['needs_review'].sum())} flagged for review)."
    )
    assert "hidden" not in dom.find_all(id="controls")[0].attrs
    # the interviewer's turns are shown too, though the status line counts only the scored passages
    turns = dom.find_all(**{"data-unscored": None})
    assert turns and not any("hidden" in t.attrs for t in turns)

    # every predicted passage is on the page, once, with its label, flag and text
    shown = dom.find_all("article", **{"data-passage": None})
    assert len(shown) == len(predictions)
    expected = {(r.source, int(r.passage_index)): r for r in predictions.itertuples()}
    seen = {(n.attrs["data-source"], int(n.attrs["data-index"])): n for n in shown}
    assert seen.keys() == expected.keys()
    for key, node in seen.items():
        row = expected[key]
        assert node.attrs["data-label"] == row.label
        assert node.attrs["data-review"] == ("true" if row.needs_review else "false")
        assert by_class(node, "text")[0].text() == row.text
        assert ("⚑" in node.text()) == bool(row.needs_review)
    # grouped by transcript, in passage order
    for section in dom.find_all("section", **{"class": "transcript"}):
        indices = [int(n.attrs["data-index"]) for n in section.find_all("article")]
        assert indices == sorted(indices)
        assert {n.attrs["data-source"] for n in section.find_all("article")} == {section.attrs["data-source"]}

    # the legend is the codebook: names, short and full definitions, in order
    book = load_codebook(CODEBOOK)
    entries = dom.find_all("li", **{"class": "legend-entry"})
    assert [e.attrs["data-code"] for e in entries] == book.labels
    for entry, code in zip(entries, book.codes):
        assert squash(by_class(entry, "code-name")[0].text()) == f"{code.name} {code.label}"
        assert squash(by_class(entry, "code-short")[0].text()) == code.short
        assert squash(by_class(entry, "code-definition")[0].text()) == code.definition

    # the review list links to exactly the flagged passages
    ids = {n.attrs["id"] for n in dom.walk() if "id" in n.attrs}
    links = [
        a.attrs["href"][1:] for item in dom.find_all("li", **{"data-review-item": None}) for a in item.find_all("a")
    ]
    flagged = {n.attrs["id"] for n in shown if n.attrs["data-review"] == "true"}
    assert len(links) == len(flagged) and set(links) == flagged <= ids


# -- the markup, without a browser --------------------------------------------------------------
def test_page_is_self_contained_and_every_anchor_resolves(predictions, codebook):
    page = render_report(predictions, codebook)
    # nothing is fetched: no external file, stylesheet, font or script, and a CSP that forbids them
    assert not re.search(r"<link\b|\bsrc\s*=|url\(|@import|https?://(?!www\.w3\.org/2000/svg)", page)
    assert "default-src 'none'" in page
    dom = parse(page)
    assert len(dom.find_all("article", **{"data-passage": None})) == len(predictions)
    ids = [n.attrs["id"] for n in dom.walk() if "id" in n.attrs]
    assert len(ids) == len(set(ids))
    targets = [a.attrs["href"][1:] for a in dom.find_all("a", href=None) if a.attrs["href"].startswith("#")]
    assert targets and set(targets) <= set(ids)
    assert all(a.attrs["href"].startswith("#") for a in dom.find_all("a", href=None))
    # the filters are hidden until the script shows them
    assert "hidden" in dom.find_all(id="controls")[0].attrs


def test_profile_bars_are_word_shares_per_transcript(predictions, codebook):
    dom = parse(render_report(predictions, codebook))
    expected = summarise(predictions, codebook.labels).set_index("source")
    sections = dom.find_all("section", **{"class": "transcript"})
    assert [s.attrs["data-source"] for s in sections] == sorted(predictions["source"].unique())
    for section in sections:
        bar = section.find_all("svg")[0]
        shares = {r.attrs["data-code"]: float(r.attrs["data-share"]) for r in bar.find_all("rect")}
        row = expected.loc[section.attrs["data-source"]]
        for label in codebook.labels:
            assert shares.get(label, 0.0) == pytest.approx(row[f"word_share_{label}"], abs=1e-4)
        assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
        # segments follow the codebook's order and colours
        assert list(shares) == [lab for lab in codebook.labels if lab in shares]
        fills = {r.attrs["data-code"]: r.attrs["fill"] for r in bar.find_all("rect")}
        assert all(fills[lab] == codebook.code(lab).color for lab in fills)


def test_text_from_the_data_is_escaped(codebook):
    nasty = '<script>alert("x")</script> & <b>bold</b>'
    frame = pd.DataFrame(
        [
            {
                "source": 'dir/a"b<c>.txt',
                "passage_index": 0,
                "speaker": "<img src=x onerror=alert(1)>",
                "role": "participant",
                "text": nasty,
                "label": "push",
                "confidence": 0.4,
                "needs_review": True,
            },
            {
                "source": 'dir/a"b<c>.txt',
                "passage_index": 1,
                "speaker": "Eve",
                "role": "participant",
                "text": "plain",
                "label": "none",
                "confidence": 0.9,
                "needs_review": False,
            },
        ]
    )
    page = render_report(frame, codebook, title="<i>title</i>")
    assert page.count("<script>") == 1  # only the page's own
    assert "<img" not in page and "<b>bold" not in page and "<i>title" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    dom = parse(page)
    article = dom.find_all("article", **{"data-index": "0"})[0]
    assert by_class(article, "text")[0].text() == nasty  # the reader sees the words as spoken
    assert article.attrs["data-source"] == 'dir/a"b<c>.txt'
    assert not any(n.tag == "img" for n in dom.walk())
    assert all(isinstance(c, str) for c in by_class(article, "text")[0].children)  # no element made from data
    assert dom.find_all("title")[0].text() == "<i>title</i>"


def test_a_codebook_colour_cannot_break_out_of_the_css(codebook):
    raw = codebook.to_dict()
    raw["codes"][0]["color"] = "red;}</style><script>alert(1)</script>"
    raw["codes"][1]["color"] = "#abc"
    book = codebook_from_dict(raw)
    frame = pd.DataFrame(
        [
            {
                "source": "s.txt",
                "passage_index": 0,
                "speaker": "A",
                "text": "t",
                "label": "push",
                "confidence": 1.0,
                "needs_review": False,
            },
            {
                "source": "s.txt",
                "passage_index": 1,
                "speaker": "A",
                "text": "u",
                "label": "pull",
                "confidence": 1.0,
                "needs_review": False,
            },
        ]
    )
    page = render_report(frame, book)
    assert "alert(1)" not in page and page.count("<script>") == 1
    dom = parse(page)
    styles = [a.attrs["style"] for a in dom.find_all("article")]
    assert "#888888" in styles[0]  # the unusable colour fell back to grey
    assert "rgba(170, 187, 204, 0.600)" in styles[1]  # a short hex colour is expanded


def test_shading_runs_from_chance_to_certainty():
    assert shade(0.25, 4) == pytest.approx(0.08)
    assert shade(1.0, 4) == pytest.approx(0.60)
    assert shade(0.1, 4) == pytest.approx(0.08)  # below chance is clipped, not negative
    steps = [shade(c, 4) for c in (0.3, 0.5, 0.7, 0.9)]
    assert steps == sorted(steps) and len(set(steps)) == 4


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_csv_and_parquet_outputs_give_the_same_page(labels_file, predictions, codebook, tmp_path, suffix):
    other = tmp_path / f"labels{suffix}"
    predictions.to_csv(other, index=False) if suffix == ".csv" else predictions.to_parquet(other, index=False)
    frame = read_predictions(other)
    assert len(frame) == len(predictions)
    assert frame["needs_review"].tolist() == predictions["needs_review"].tolist()
    assert render_report(frame, codebook) == render_report(read_predictions(labels_file), codebook)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.drop(columns=["confidence"]), "missing column(s) confidence"),
        (
            lambda f: f.assign(confidence=[0.5, 0.5, "high"] + [0.5] * (len(f) - 3)),
            "row 3: field 'confidence' must be a number in [0, 1]; got 'high'",
        ),
        (lambda f: f.assign(confidence=[0.5, 1.5] + [0.5] * (len(f) - 2)), "row 2: field 'confidence'"),
        (
            lambda f: f.assign(needs_review=[True, "maybe"] + [False] * (len(f) - 2)),
            "row 2: field 'needs_review' must be true or false; got 'maybe'",
        ),
        (
            lambda f: f.assign(label=["push", "push", "push", "advocacy"] + ["push"] * (len(f) - 4)),
            "row 4: label 'advocacy' is not a code of codebook",
        ),
        (lambda f: f.assign(passage_index=["x"] + [1] * (len(f) - 1)), "row 1: field 'passage_index'"),
        (lambda f: f.iloc[:0], "has no passages"),
    ],
)
def test_bad_predictions_name_file_row_and_field(predictions, tmp_path, change, message):
    bad = tmp_path / "bad.jsonl"
    change(predictions.copy()).to_json(bad, orient="records", lines=True)
    with pytest.raises(ReportError) as info:
        build_report(bad, tmp_path / "r.html", codebook=CODEBOOK)
    assert message in str(info.value) and str(bad) in str(info.value)
    assert not (tmp_path / "r.html").exists()


def test_codebook_comes_from_the_model_unless_given(labels_file, model_dir, tmp_path):
    book = load_codebook(CODEBOOK).to_dict()
    book["codes"][0]["name"] = "Top-down delivery"
    book["codes"][0]["definition"] = "A definition only this model's codebook has."
    with_book = tmp_path / "model-with-book"
    shutil.copytree(model_dir, with_book)
    (with_book / "codebook.yaml").write_text(yaml.safe_dump(book), encoding="utf-8")

    out = tmp_path / "from-model.html"
    result = runner.invoke(app, ["report", str(labels_file), "--out", str(out), "--model", str(with_book)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "Top-down delivery" in page and "A definition only this model&#x27;s codebook has." in page
    assert f"model: {with_book}" in page

    # --codebook wins over the model's
    result = runner.invoke(
        app, ["report", str(labels_file), "--out", str(out), "--model", str(with_book), "--codebook", str(CODEBOOK)]
    )
    assert result.exit_code == 0, result.output
    assert "Top-down delivery" not in out.read_text(encoding="utf-8")

    # a model folder with no codebook at all says what to do
    result = runner.invoke(
        app, ["report", str(labels_file), "--out", str(tmp_path / "x.html"), "--model", str(model_dir)]
    )
    assert result.exit_code == 2
    assert "has no codebook.yaml" in result.output and "--codebook" in result.output


def test_default_codebook_is_the_projects(labels_file, tmp_path, monkeypatch):
    out = tmp_path / "r.html"
    monkeypatch.chdir(ROOT)
    assert runner.invoke(app, ["report", str(labels_file), "--out", str(out)]).exit_code == 0
    assert "Co-creation / exchange" in out.read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # no configs/ here: the codebook bundled with supportlens, and a note saying so
    elsewhere = tmp_path / "elsewhere.html"
    result = runner.invoke(app, ["report", str(labels_file), "--out", str(elsewhere)])
    assert result.exit_code == 0, result.output
    assert "Co-creation / exchange" in elsewhere.read_text(encoding="utf-8")
    assert "no configs/codebook.yaml in" in result.output and "bundled with supportlens" in result.output


def test_cli_errors_and_atomic_output(labels_file, tmp_path):
    missing = runner.invoke(
        app, ["report", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "r.html"), "--codebook", str(CODEBOOK)]
    )
    assert missing.exit_code == 2 and "nope.jsonl: predictions file not found" in missing.output
    wrong = runner.invoke(
        app, ["report", str(labels_file), "--out", str(tmp_path / "r.pdf"), "--codebook", str(CODEBOOK)]
    )
    assert wrong.exit_code == 2 and "--out must end in .html" in wrong.output
    nowhere = runner.invoke(
        app, ["report", str(labels_file), "--out", str(tmp_path / "no" / "r.html"), "--codebook", str(CODEBOOK)]
    )
    assert nowhere.exit_code == 2 and "output folder does not exist" in nowhere.output

    out = tmp_path / "r.html"
    out.write_text("old page", encoding="utf-8")
    write_report("<!DOCTYPE html><p>new</p>", out)
    assert out.read_text(encoding="utf-8") == "<!DOCTYPE html><p>new</p>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # like any file the user writes, not mkstemp's 0600


def test_a_near_certain_confidence_is_not_shown_as_certain(codebook):
    """A flagged passage at 0.9993 read '100% ⚑'; it reads '>99%', and only 1.0 reads 100%."""
    frame = pd.DataFrame(
        [
            {
                "source": "s.txt",
                "passage_index": 0,
                "speaker": "A",
                "text": "t",
                "label": "push",
                "confidence": 0.9993,
                "needs_review": True,
                "p_push": 0.9993,
                "p_pull": 0.0007,
            },
            {
                "source": "s.txt",
                "passage_index": 1,
                "speaker": "A",
                "text": "u",
                "label": "pull",
                "confidence": 1.0,
                "needs_review": False,
            },
        ]
    )
    dom = parse(render_report(frame, codebook))
    confs = [by_class(a, "conf")[0] for a in dom.find_all("article")]
    assert [c.text() for c in confs] == [">99%", "100%"]
    assert "Push >0.99" in confs[0].attrs["title"]
    review = squash(dom.find_all("ol", **{"class": "review"})[0].text())
    assert ">99%" in review and "100%" not in review


def test_shown_shares_add_up_to_100(codebook):
    """Rounded one by one, 28.51 + 38.51 + 24.51 + 8.47 read 29 + 39 + 25 + 8 = 101%."""
    from supportlens.inference.report import _share_caption, profile_bar, rounded_percents

    shares = dict(zip(codebook.labels, (0.2851, 0.3851, 0.2451, 0.0847)))
    assert sum(rounded_percents(shares).values()) == 100
    caption = squash(parse(_share_caption(shares, codebook)).text())
    shown = [int(x) for x in re.findall(r"(\d+)%", caption)]
    assert len(shown) == 4 and sum(shown) == 100
    label = parse(profile_bar(shares, codebook, "t")).find_all("svg")[0].attrs["aria-label"]
    assert sum(int(x) for x in re.findall(r"(\d+)%", label)) == 100
    assert rounded_percents({"a": 0.0, "b": 0.0}) == {"a": 0, "b": 0}


def test_outside_the_project_the_codebook_comes_from_the_prediction_record(model_dir, tmp_path, monkeypatch):
    """predict records the labelling model's codebook beside its output; report needs no --model."""
    book = load_codebook(CODEBOOK).to_dict()
    book["codes"][0]["name"] = "Top-down delivery"
    labelled_by = tmp_path / "model-with-book"
    shutil.copytree(model_dir, labelled_by)
    meta = json.loads((labelled_by / "supportlens.json").read_text(encoding="utf-8"))
    (labelled_by / "supportlens.json").write_text(json.dumps({**meta, "codebook": book}), encoding="utf-8")
    out = tmp_path / "labels.csv"
    predict_files([str(SAMPLES / "smp01_child_welfare.txt")], Labeler(load_classifier(labelled_by)), out)
    monkeypatch.chdir(tmp_path)  # no configs/codebook.yaml here
    result = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "Top-down delivery" in (tmp_path / "r.html").read_text(encoding="utf-8")
    # --codebook still wins
    result = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "r.html"), "--codebook", str(CODEBOOK)])
    assert result.exit_code == 0 and "Top-down delivery" not in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_a_tie_for_the_dominant_approach_names_both(codebook):
    from supportlens.inference.report import _dominant

    assert (
        _dominant(pd.Series({"dominant": "push/pull"}), codebook)
        == f"{codebook.code('push').name} = {codebook.code('pull').name}"
    )
    assert _dominant(pd.Series({"dominant": "none"}), codebook) == codebook.code("none").name


def test_cli_report_of_predictions_with_no_passages_leaves_the_earlier_page_alone(tmp_path):
    """Predictions with a header and no rows: no page, the earlier one keeps every byte, and the
    message says it was not written."""
    empty = tmp_path / "labels.csv"
    empty.write_text("source,passage_index,speaker,text,label,confidence,needs_review\n", encoding="utf-8")
    page = tmp_path / "report.html"
    page.write_bytes(b"<!DOCTYPE html><p>last week's report</p>")
    result = runner.invoke(app, ["report", str(empty), "--out", str(page), "--codebook", str(CODEBOOK)])
    assert result.exit_code == 2
    assert f"labels.csv: has no passages; {page} was not written (it is unchanged)" in " ".join(result.output.split())
    assert page.read_bytes() == b"<!DOCTYPE html><p>last week's report</p>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv", "report.html"]


# -- interviewer turns: the questions the scored answers respond to ------------------------------
def _expected_turns(source: str) -> list[tuple[str, str]]:
    """(role, text) of every passage of a transcript, in order, as predict segments it."""
    return [(p.role, p.text) for p in segment(read_transcript(source))]


def test_interviewer_turns_sit_unscored_between_the_passages(labels_file, predictions, tmp_path):
    """The page left the questions out, so answers read without them and numbers jumped (#1, #3, #5)."""
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(labels_file), "--out", str(out), "--codebook", str(CODEBOOK)])
    assert result.exit_code == 0, result.output
    assert "note:" not in result.output  # every transcript was found
    dom = parse(out.read_text(encoding="utf-8"))
    for section in dom.find_all("section", **{"class": "transcript"}):
        source = section.attrs["data-source"]
        block = predictions[predictions["source"] == source]
        items = [n for n in section.walk() if "data-passage" in n.attrs or "data-unscored" in n.attrs]
        # the whole interview in its order: each question right before the answer it prompted
        assert [
            ("interviewer" if "data-unscored" in n.attrs else "participant", by_class(n, "text")[0].text())
            for n in items
        ] == _expected_turns(source)
        unscored = [n for n in items if "data-unscored" in n.attrs]
        assert unscored and all(n.attrs["data-role"] == "interviewer" for n in unscored)
        for turn in unscored:  # unscored: no code, confidence, flag or number, and marked as such
            assert not any(by_class(turn, c) for c in ("label", "conf", "flag", "pid"))
            assert "not scored" in turn.text() and "style" not in turn.attrs
        # numbering has no gaps: the scored passages are #1..#N
        passages = [n for n in items if "data-passage" in n.attrs]
        assert [by_class(n, "pid")[0].text() for n in passages] == [f"#{k}" for k in range(1, len(block) + 1)]
        # tallies count only the scored passages
        facts = squash(by_class(section, "facts")[0].text())
        assert facts.startswith(f"{len(block)} passages ·")
        assert facts.endswith(f"{len(unscored)} interviewer turns not scored")
    header = dom.find_all("header")[0]
    assert by_class(header, "facts")[0].attrs["data-passages"] == str(len(predictions))
    for row in dom.find_all("table")[0].find_all("tr")[1:]:
        source = row.find_all("a")[0].attrs["href"][1:]
        section = dom.find_all("section", id=source)[0]
        assert int(row.find_all("td")[1].text()) == len(section.find_all(**{"data-passage": None}))
    review = dom.find_all("li", **{"data-review-item": None})
    assert len(review) == int(predictions["needs_review"].sum())
    for item in review:  # the review list uses the same numbers as the page
        target = dom.find_all(id=item.attrs["data-review-item"])[0]
        assert f"passage {by_class(target, 'pid')[0].text()}" in item.text()


@pytest.mark.parametrize(
    "spoil, problem",
    [
        (lambda path: path.unlink(), "transcript not found at"),
        (
            lambda path: path.write_text(path.read_text(encoding="utf-8").replace("Dana", "Dina"), encoding="utf-8"),
            "has changed since it was labelled",
        ),
    ],
)
def test_a_transcript_gone_or_changed_still_reports_without_its_questions(model_dir, tmp_path, spoil, problem):
    transcript = tmp_path / "smp01.txt"
    shutil.copy(SAMPLES / "smp01_child_welfare.txt", transcript)
    labels = tmp_path / "labels.csv"
    predict_files(
        [str(transcript), str(SAMPLES / "smp06_juvenile_justice.md")], Labeler(load_classifier(model_dir)), labels
    )
    spoil(transcript)
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(labels), "--out", str(out), "--codebook", str(CODEBOOK)])
    assert result.exit_code == 0, result.output
    assert f"note: {transcript}: interviewer turns not shown: " in result.output and problem in result.output
    dom = parse(out.read_text(encoding="utf-8"))
    sections = {s.attrs["data-source"]: s for s in dom.find_all("section", **{"class": "transcript"})}
    gone, found = sections.pop(str(transcript)), sections.pop(str(SAMPLES / "smp06_juvenile_justice.md"))
    assert not sections
    note = squash(gone.find_all(**{"data-turns-missing": None})[0].text())
    assert note.startswith("Interviewer turns could not be shown:") and problem in note
    assert not gone.find_all(**{"data-unscored": None})  # no question is shown out of place
    assert len(gone.find_all(**{"data-passage": None})) == (pd.read_csv(labels)["source"] == str(transcript)).sum()
    # the other transcript is untouched by it
    assert found.find_all(**{"data-unscored": None}) and not found.find_all(**{"data-turns-missing": None})


def test_a_relative_source_is_found_beside_the_predictions(model_dir, tmp_path, monkeypatch):
    """predict run inside a project folder records sources relative to it; report runs from anywhere."""
    shutil.copy(SAMPLES / "smp01_child_welfare.txt", tmp_path / "smp01.txt")
    monkeypatch.chdir(tmp_path)
    predict_files(["smp01.txt"], Labeler(load_classifier(model_dir)), tmp_path / "labels.jsonl")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    summary = build_report(tmp_path / "labels.jsonl", tmp_path / "r.html", codebook=CODEBOOK)
    assert summary.notes == [] and summary.unscored_turns > 0
    # offsets alone place the turns: a predictions file without them names the reason
    frame = pd.read_json(tmp_path / "labels.jsonl", lines=True).drop(columns=["start", "end"])
    frame.to_json(tmp_path / "no-offsets.jsonl", orient="records", lines=True)
    summary = build_report(tmp_path / "no-offsets.jsonl", tmp_path / "r.html", codebook=CODEBOOK)
    assert summary.unscored_turns == 0 and "no 'start' and 'end' offsets" in summary.notes[0]
