import numpy as np

from supportlens.calibration import coverage_at_precision, expected_calibration_error, fit_temperature, review_threshold


def test_temperature_softens_overconfident_logits():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    logits = rng.normal(size=(400, 3))
    logits[np.arange(400), y] += 1.0  # weakly informative...
    t = fit_temperature(logits * 10, y)  # ...but scaled to look very sure
    assert t > 3


def test_temperature_default_on_tiny_data():
    assert fit_temperature(np.zeros((2, 3)), np.array([0, 1])) == 1.0


def test_ece_perfect_and_bad():
    conf = np.array([0.9] * 10)
    assert expected_calibration_error(conf, np.array([1] * 9 + [0])) < 1e-9
    assert abs(expected_calibration_error(conf, np.zeros(10)) - 0.9) < 1e-9


def test_review_threshold_reaches_target_precision():
    conf = np.array([0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4])
    correct = np.array([1, 1, 1, 0, 1, 0, 0, 0], dtype=bool)
    t = review_threshold(conf, correct, 0.8)
    accepted = conf >= t
    assert correct[accepted].mean() >= 0.8
    assert t == 0.7  # the lowest threshold that still keeps 4/5 correct
    assert review_threshold(conf, np.zeros(8, dtype=bool), 0.8) == 1.0


def test_coverage():
    conf = np.array([0.9, 0.8, 0.7, 0.6])
    correct = np.array([1, 1, 0, 0], dtype=bool)
    assert coverage_at_precision(conf, correct, 0.9) == 0.5
    assert coverage_at_precision(conf, np.zeros(4, dtype=bool), 0.9) == 0.0


def test_a_temperature_at_the_lower_bound_is_not_used():
    """Validation with no mistake drives the fit to the edge of its search (0.05), which would push
    every confidence towards 1: the model's own probabilities are kept instead, with the reason."""
    from supportlens.calibration import temperature_fit

    y = np.arange(12) % 3
    logits = np.zeros((12, 3))
    logits[np.arange(12), y] = 2.0  # every prediction right, with a modest margin
    found = temperature_fit(logits, y)
    assert found.optimum is not None and found.optimum < 0.06
    assert found.temperature == 1.0 and fit_temperature(logits, y) == 1.0
    assert "lower bound" in found.note and "T = 1" in found.note


def test_validation_too_small_to_calibrate_says_how_small():
    from supportlens.calibration import validation_shortfall

    assert validation_shortfall(498, 26) is None
    assert validation_shortfall(30, 3) is None
    reason = validation_shortfall(6, 1)
    assert "1 interview and 6 excerpts" in reason and "at least 3 interviews and 30 excerpts" in reason
    assert validation_shortfall(29, 5) is not None and validation_shortfall(100, 2) is not None


def test_without_interviews_the_validation_minimum_is_excerpts_and_says_why():
    """Data with no interview column: each excerpt is its own group, so an interview count would
    be an excerpt count; only the excerpt minimum applies, and the reason names no interviews."""
    from supportlens.calibration import validation_shortfall

    assert validation_shortfall(30, 30, grouped=False) is None
    assert validation_shortfall(30, 0, grouped=False) is None
    reason = validation_shortfall(16, 16, grouped=False)
    assert reason.startswith(
        "the validation split holds 16 excerpts; fitting a temperature and a review "
        "threshold needs at least 30 excerpts"
    )
    assert "16 interview" not in reason and "no interview column" in reason


def test_no_measured_threshold_flags_every_passage_even_at_confidence_one():
    """1.0 stands for 'no threshold measured'; a float64 softmax can return exactly 1.0."""
    from supportlens.calibration import flags_for_review

    confidence = np.array([0.3, 0.999, 1.0])
    assert flags_for_review(confidence, 1.0, measured=False).tolist() == [True, True, True]
    # a measured threshold: below it is flagged, at it accepted, as before
    assert flags_for_review(confidence, 0.999).tolist() == [True, False, False]
    assert flags_for_review(confidence, 1.0).tolist() == [True, True, False]
