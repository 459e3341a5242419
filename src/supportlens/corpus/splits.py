"""Interview-grouped splits: no interview contributes to two of train, validation and test.

Excerpts of one interview share a speaker, a setting and turns of phrase; letting them straddle
the split would reward memorising people rather than learning the codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold


class SplitError(ValueError):
    """The data cannot be split as asked (too few interviews, say)."""


@dataclass
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def _folds(share: float) -> int:
    """Holding out ``share`` is done as one fold of this many (so the share held is 1 / folds)."""
    return max(2, int(round(1.0 / share)))


def _inner_share(test_size: float, val_size: float) -> float:
    """``val_size`` is a share of all the data; validation is held out of what test leaves."""
    return val_size / (1.0 - test_size)


def split_shares(test_size: float, val_size: float) -> tuple[float, float]:
    """The shares of the data (of its interviews, when grouped) that :func:`grouped_split` holds out
    for (test, validation): ``1 / folds`` of them for test, then that of the rest for validation.
    With fewer interviews than folds the shares are larger (each fold holds at least one)."""
    test = 1.0 / _folds(test_size)
    return test, (1.0 - test) / _folds(_inner_share(test_size, val_size))


def _holdout(labels: np.ndarray, groups: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out about ``share`` of the rows, whole groups only, stratified as groups allow."""
    n_groups = len(np.unique(groups))
    n_splits = min(_folds(share), n_groups)
    if n_groups < 2:
        raise SplitError("need at least two interviews to hold some out")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    rest, held = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return rest, held


def grouped_split(
    labels: np.ndarray, groups: np.ndarray, test_size: float = 0.15, val_size: float = 0.15, seed: int = 13
) -> Split:
    """Train/validation/test indices; whole interviews per part, seeded, label shares kept close."""
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    if len(np.unique(groups)) < 3:
        raise SplitError(
            f"need at least 3 interviews for a train/validation/test split, found {len(np.unique(groups))}"
        )
    rest, test = _holdout(labels, groups, test_size, seed)
    tr, va = _holdout(labels[rest], groups[rest], _inner_share(test_size, val_size), seed + 1)
    return Split(train=np.sort(rest[tr]), val=np.sort(rest[va]), test=np.sort(test))


def grouped_folds(
    labels: np.ndarray, groups: np.ndarray, k: int, seed: int = 13
) -> list[tuple[np.ndarray, np.ndarray]]:
    """K grouped, stratified folds as (train_idx, test_idx) pairs."""
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if k > n_groups:
        raise SplitError(f"cannot make {k} grouped folds from {n_groups} interviews")
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels, groups))


def inner_validation(
    labels: np.ndarray, groups: np.ndarray, val_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split a training fold into (fit, validation) by group, for early stopping and calibration."""
    return _holdout(np.asarray(labels), np.asarray(groups), val_size, seed)
