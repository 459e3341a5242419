"""Which codes look wrong: excerpts whose given code a cross-validated model finds unlikely while
it is confident about another code.

Each excerpt is scored by a model that never saw it (grouped k-fold, so not even its interview),
so a doubtful code is not simply one the model memorised. Ranking and flagging come from
cleanlab: the ranking is its normalized margin, p(given) - max p(other), lowest first; the flag
is its confident-learning estimate of which codes are label errors. The output is a list to
re-read against the codebook, not a list of corrections: the model may be the one that is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from supportlens.codebook import Codebook, load_codebook
from supportlens.config import Config
from supportlens.corpus.dataset import DataError, load_coded

AUDIT_COLUMNS = [
    "id",
    "group",
    "text",
    "given_code",
    "given_probability",
    "suggested_code",
    "suggested_probability",
    "rank",
    "given_definition",
    "suggested_definition",
    "flagged",
]
# what the ``flagged`` column means, for a table's caption: an unflagged row is listed only
# because another code is more probable, a flagged one is also among cleanlab's estimated errors
FLAGGED_MEANING = (
    "flagged = cleanlab's confident learning counts the given code among the likely "
    "coding errors; unflagged rows are listed because another code is more probable"
)


def _frame_of(data: str | Path | pd.DataFrame, cfg: Config, codebook: Codebook) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        return load_coded(data, codebook, cfg.data).frame
    missing = sorted({"text", "label", "group"} - set(data.columns))
    if missing:
        raise DataError(
            f"the coded frame lacks column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (expected the columns of load_coded(...).frame)"
        )
    frame = data.copy()
    if "id" not in frame.columns:
        frame["id"] = [f"row-{i}" for i in range(len(frame))]
    unknown = sorted({str(v) for v in frame["label"]} - set(codebook.labels))
    if unknown:
        raise DataError(f"the coded frame has codes not in the codebook: {', '.join(map(repr, unknown))}")
    return frame.reset_index(drop=True)


# Below this out-of-fold κ ("fair" agreement at best) the model is too weak to audit anyone's codes.
WEAK_KAPPA = 0.4


def out_of_fold_kappa(oof: pd.DataFrame, labels: list[str]) -> float:
    """Cohen's κ between the given codes and the out-of-fold model's most probable ones."""
    from supportlens.evaluation.agreement import cohens_kappa

    proba = oof[[f"p_{lab}" for lab in labels]].to_numpy(dtype=float)
    return cohens_kappa(oof["label"].astype(str), [labels[i] for i in proba.argmax(axis=1)])


def doubtful_codes(oof: pd.DataFrame, labels: list[str], codebook: Codebook) -> pd.DataFrame:
    """Rank out-of-fold predictions (``label`` and one ``p_<code>`` column per code) by how much
    the model doubts the given code; returns `AUDIT_COLUMNS`, most doubtful first, for every
    excerpt where another code is more probable or cleanlab flags the code."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    proba = oof[[f"p_{lab}" for lab in labels]].to_numpy(dtype=float)
    proba = np.clip(proba, 1e-12, None)
    proba /= proba.sum(axis=1, keepdims=True)  # cleanlab insists on rows that sum to one
    index = {lab: i for i, lab in enumerate(labels)}
    given = np.array([index[v] for v in oof["label"]])
    quality = get_label_quality_scores(given, proba, method="normalized_margin")
    flagged = find_label_issues(given, proba, filter_by="prune_by_noise_rate")

    others = proba.copy()
    others[np.arange(len(given)), given] = -1.0
    suggested = others.argmax(axis=1)
    p_given = proba[np.arange(len(given)), given]
    p_suggested = proba[np.arange(len(given)), suggested]
    keep = (p_suggested > p_given) | flagged
    order = [i for i in np.argsort(quality, kind="stable") if keep[i]]

    def definition(label: str) -> str:
        return codebook.code(label).definition

    rows = []
    for rank, i in enumerate(order, start=1):
        rows.append(
            {
                "id": oof["id"].iloc[i],
                "group": oof["group"].iloc[i],
                "text": oof["text"].iloc[i],
                "given_code": labels[given[i]],
                "given_probability": round(float(p_given[i]), 4),
                "suggested_code": labels[suggested[i]],
                "suggested_probability": round(float(p_suggested[i]), 4),
                "rank": rank,
                "given_definition": definition(labels[given[i]]),
                "suggested_definition": definition(labels[suggested[i]]),
                "flagged": bool(flagged[i]),
            }
        )
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS)


def code_legend(result: pd.DataFrame, codebook: Codebook) -> list[tuple[str, str]]:
    """(code, one-line summary) for each code given or suggested in ``result`` (rows of
    `doubtful_codes`), in codebook order: what a coder needs beside a shortened table, whose
    full definitions are the ``given_definition`` and ``suggested_definition`` columns."""
    used = set(result["given_code"]) | set(result["suggested_code"])
    return [(code.label, code.short) for code in codebook.codes if code.label in used]


def audit(
    data: str | Path | pd.DataFrame,
    cfg: Config,
    k: int = 5,
    codebook: Codebook | None = None,
    top: int | None = None,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Doubtful codes in coded data (a file, or a frame shaped like ``load_coded(...).frame``).

    Trains ``k`` models of ``cfg``'s kind by grouped cross-validation, so this takes k trainings.
    """
    from supportlens.training.trainer import cross_validate

    if k < 2:
        raise DataError(f"cross-validation needs at least 2 folds, got {k}")
    codebook = codebook or load_codebook(cfg.codebook)
    frame = _frame_of(data, cfg, codebook)
    labels = codebook.labels
    log(f"grouped {k}-fold cross-validation on {len(frame)} excerpts from {frame['group'].nunique()} interviews")
    _, oof = cross_validate(cfg, labels, frame, k, log)
    kappa = out_of_fold_kappa(oof, labels)
    if kappa < WEAK_KAPPA:
        log(
            f"warning: out of fold, the model agrees with these codes at κ {kappa:.2f} (below {WEAK_KAPPA}): "
            "too weak a model for its doubts to say much about the codes; code more excerpts, or "
            "use a stronger config, before acting on this list"
        )
    result = doubtful_codes(oof, labels, codebook)
    return result.head(top).reset_index(drop=True) if top else result
