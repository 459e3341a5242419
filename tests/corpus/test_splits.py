import numpy as np
import pytest

from supportlens.corpus.splits import SplitError, grouped_folds, grouped_split, split_shares


def _data(n_groups=20, per=10, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"g{i}" for i in range(n_groups)], per)
    labels = rng.choice(["push", "pull", "co_creation", "none"], size=len(groups), p=[0.2, 0.2, 0.25, 0.35])
    return labels, groups


def test_no_interview_in_two_parts():
    labels, groups = _data()
    s = grouped_split(labels, groups, 0.15, 0.15, seed=3)
    parts = [set(groups[s.train]), set(groups[s.val]), set(groups[s.test])]
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    assert len(s.train) + len(s.val) + len(s.test) == len(labels)
    assert len(s.test) > 0 and len(s.val) > 0


def test_split_is_seeded():
    labels, groups = _data()
    a = grouped_split(labels, groups, seed=5)
    b = grouped_split(labels, groups, seed=5)
    c = grouped_split(labels, groups, seed=6)
    assert np.array_equal(a.test, b.test)
    assert not np.array_equal(a.test, c.test)


def test_every_code_in_test_when_groups_allow():
    labels, groups = _data(n_groups=40)
    s = grouped_split(labels, groups, seed=1)
    assert set(labels[s.test]) == set(labels)


def test_folds_partition_groups():
    labels, groups = _data()
    folds = grouped_folds(labels, groups, 5, seed=2)
    seen = np.concatenate([test for _, test in folds])
    assert sorted(seen) == list(range(len(labels)))
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])


def test_too_few_interviews():
    with pytest.raises(SplitError, match="at least 3 interviews"):
        grouped_split(np.array(["a", "b"]), np.array(["g", "h"]))
    labels, groups = _data(n_groups=3)
    with pytest.raises(SplitError, match="cannot make 5 grouped folds"):
        grouped_folds(labels, groups, 5)


@pytest.mark.parametrize("test_size, val_size", [(0.15, 0.15), (0.2, 0.2), (0.1, 0.3), (0.25, 0.1)])
def test_split_shares_are_the_shares_the_split_holds_out(test_size, val_size):
    """The one place the split's arithmetic lives: the advice on how many interviews to code uses
    it, so it must match what grouped_split does (here with enough interviews that no fold is short)."""
    labels, groups = _data(n_groups=240, per=1)
    s = grouped_split(labels, groups, test_size, val_size, seed=3)
    test_share, val_share = split_shares(test_size, val_size)
    assert len(s.test) / 240 == pytest.approx(test_share, abs=1 / 240)
    assert len(s.val) / 240 == pytest.approx(val_share, abs=2 / 240)
