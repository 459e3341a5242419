"""Agreement statistics between two codings of the same excerpts (coder vs coder, or model vs coder).

One implementation serves training metrics and the coder-facing agreement command, so a kappa
reported anywhere in supportlens means the same thing.
"""

from __future__ import annotations

from typing import Sequence

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score


def percent_agreement(a: Sequence[str], b: Sequence[str]) -> float:
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    return float((a == b).mean()) if len(a) else float("nan")


def cohens_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's kappa; 1.0 when both codings are identical and constant (sklearn gives nan)."""
    a, b = list(a), list(b)
    if not a:
        return float("nan")
    if a == b:
        return 1.0
    return float(cohen_kappa_score(a, b))


def krippendorff_alpha(a: Sequence[str], b: Sequence[str]) -> float:
    """Krippendorff's alpha at the nominal level for two coders, no missing values."""
    a, b = list(a), list(b)
    if not a:
        return float("nan")
    values = sorted(set(a) | set(b))
    if len(values) < 2:
        return 1.0  # perfect agreement on a single value; the formula divides by zero
    index = {v: i for i, v in enumerate(values)}
    data = np.array([[index[v] for v in a], [index[v] for v in b]], dtype=float)
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
