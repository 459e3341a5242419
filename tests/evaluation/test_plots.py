"""The figures logged with every run: what a reader of the PNG sees (axes, labels, cells, bars)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from supportlens.calibration import expected_calibration_error, reliability_table
from supportlens.evaluation import plots
from supportlens.evaluation.evaluate import evaluate_proba

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def figures(monkeypatch) -> list:
    """The figures the plot functions draw, kept open for inspection (each function closes its
    figure once saved); closed after the test."""
    close = plt.close
    kept: list = []
    monkeypatch.setattr(plots.plt, "close", kept.append)
    yield kept
    for fig in kept:
        close(fig)


def _is_png(path: Path, size: tuple[int, int]) -> bool:
    """A PNG of ``size`` pixels (the figure size at 120 dpi): a complete image, not a stub."""
    with Image.open(path) as image:
        return path.read_bytes()[:8] == PNG_SIGNATURE and image.format == "PNG" and image.size == size


def _evaluation(codebook):
    """Ten coded excerpts scored so that the confusion is known: two human `push` the model called
    `pull`, one `none` it called `co_creation`; the human codes come in an order unlike the codebook's."""
    labels = codebook.labels  # push, pull, co_creation, none
    human = ["none", "none", "co_creation", "pull", "pull", "push", "push", "push", "push", "none"]
    model = ["none", "co_creation", "co_creation", "pull", "pull", "pull", "pull", "push", "push", "none"]
    proba = np.full((len(human), len(labels)), 0.1)
    for row, code in enumerate(model):
        proba[row, labels.index(code)] = 0.7
    return evaluate_proba(human, proba, labels, name="test")


def test_confusion_matrix_has_the_codebook_order_on_both_axes_and_a_count_in_each_cell(codebook, tmp_path, figures):
    evaluation = _evaluation(codebook)
    path = tmp_path / "confusion_matrix.png"
    assert plots.confusion_png(evaluation.confusion, evaluation.labels, path, "Confusion: test") == path
    assert _is_png(path, (600, 504))
    (fig,) = figures
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["push", "pull", "co_creation", "none"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["push", "pull", "co_creation", "none"]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("model", "human coder", "Confusion: test")
    assert np.array_equal(ax.images[0].get_array(), evaluation.confusion)
    # one number per cell, at (column = model, row = human)
    cells = {tuple(int(v) for v in t.get_position()): t.get_text() for t in ax.texts}
    assert len(ax.texts) == 16
    assert cells[(1, 0)] == "2"  # human push, model pull
    assert cells[(2, 3)] == "1"  # human none, model co_creation
    assert cells[(0, 1)] == "0"  # human pull, model push
    assert [cells[(i, i)] for i in range(4)] == ["2", "2", "1", "2"]


def test_confusion_matrix_numbers_stay_readable_on_dark_cells(codebook, tmp_path, figures):
    """White on the dark cells (over half the largest count), black on the light ones."""
    matrix = np.array([[9, 1, 0, 0], [0, 4, 5, 0], [0, 0, 3, 0], [1, 0, 0, 8]])
    plots.confusion_png(matrix, codebook.labels, tmp_path / "c.png", "Confusion")
    colours = {tuple(int(v) for v in t.get_position()): t.get_color() for t in figures[0].axes[0].texts}
    assert colours[(0, 0)] == colours[(3, 3)] == colours[(2, 1)] == "white"  # 9, 8 and 5 of 9
    assert colours[(1, 1)] == colours[(0, 1)] == colours[(1, 0)] == "black"  # 4, 0 and 1


def test_confusion_matrix_of_no_passages_is_still_drawn(codebook, tmp_path, figures):
    path = plots.confusion_png(np.zeros((4, 4), dtype=int), codebook.labels, tmp_path / "c.png", "Confusion")
    assert _is_png(path, (600, 504))
    texts = figures[0].axes[0].texts
    assert [t.get_text() for t in texts] == ["0"] * 16 and {t.get_color() for t in texts} == {"black"}


def test_reliability_diagram_draws_one_bar_per_filled_bin_and_skips_the_empty_ones(tmp_path, figures):
    confidence = np.array([0.95, 0.92, 0.91, 0.85, 0.55, 0.52])
    correct = np.array([True, True, False, True, False, True])
    table = reliability_table(confidence, correct)  # 10 bins, 7 of them empty
    ece = expected_calibration_error(confidence, correct)
    path = tmp_path / "reliability.png"
    assert plots.reliability_png(table, ece, path, "Reliability: test") == path
    assert _is_png(path, (552, 504))
    (ax,) = figures[0].axes
    (bars,) = ax.containers
    assert len(bars) == 3
    assert [round(b.get_x() + b.get_width() / 2, 6) for b in bars] == [0.55, 0.85, 0.95]  # bin centres
    assert [round(b.get_height(), 6) for b in bars] == [0.5, 1.0, round(2 / 3, 6)]  # accuracy in each
    diagonal, points = ax.lines
    assert list(diagonal.get_xdata()) == [0, 1] and list(diagonal.get_ydata()) == [0, 1]
    assert np.allclose(points.get_xdata(), [0.535, 0.85, (0.95 + 0.92 + 0.91) / 3])  # mean confidence
    assert np.allclose(points.get_ydata(), [0.5, 1.0, 2 / 3])
    assert ax.get_xlim() == (0, 1) and ax.get_ylim() == (0, 1)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("confidence", "accuracy")
    assert ax.get_title() == f"Reliability: test (ECE {ece:.3f})"
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == [
        "accuracy in bin",
        "mean confidence vs accuracy",
        "perfect calibration",
    ]


def test_reliability_diagram_of_no_passages_has_no_bars_and_is_still_written(tmp_path, figures):
    table = reliability_table(np.array([]), np.array([], dtype=bool))
    path = plots.reliability_png(table, 0.0, tmp_path / "reliability.png", "Reliability: empty")
    assert _is_png(path, (552, 504))
    ax = figures[0].axes[0]
    assert len(ax.containers[0]) == 0 and len(ax.lines[1].get_xdata()) == 0
    assert ax.get_title() == "Reliability: empty (ECE 0.000)"


def test_curve_draws_one_named_line_per_series(tmp_path, figures):
    path = tmp_path / "curve.png"
    series = {"tfidf_logreg": [0.41, 0.52, 0.6], "ensemble": [0.5, 0.63, 0.71]}
    assert plots.curve_png([10, 20, 40], series, path, "coded interviews", "macro-F1", "Learning curve") == path
    assert _is_png(path, (660, 480))
    (ax,) = figures[0].axes
    assert [line.get_label() for line in ax.lines] == ["tfidf_logreg", "ensemble"]
    for line, ys in zip(ax.lines, series.values()):
        assert list(line.get_xdata()) == [10, 20, 40] and list(line.get_ydata()) == ys
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("coded interviews", "macro-F1", "Learning curve")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["tfidf_logreg", "ensemble"]
