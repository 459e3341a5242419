import numpy as np
import pytest

from supportlens.agreement import cohens_kappa, krippendorff_alpha, percent_agreement


def test_known_kappa():
    # 2x2 table [[20, 5], [10, 15]]: po = .7, pe = .5 -> kappa = .4
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohens_kappa(a, b) == pytest.approx(0.4)
    assert percent_agreement(a, b) == pytest.approx(0.7)


def test_alpha_matches_hand_computation():
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    # nominal alpha for two coders: 1 - (n-1) * D_o / sum_c n_c(n - n_c) ... computed directly:
    n = 100
    n_y = 25 + 30
    n_n = n - n_y
    disagreements = 15
    expected = 1 - (n - 1) * (2 * disagreements) / (2 * n_y * n_n)
    assert krippendorff_alpha(a, b) == pytest.approx(expected)


def test_identical_constant_codings():
    assert cohens_kappa(["a"] * 5, ["a"] * 5) == 1.0
    assert krippendorff_alpha(["a"] * 5, ["a"] * 5) == 1.0


def test_empty():
    assert np.isnan(cohens_kappa([], []))
