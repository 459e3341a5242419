"""The reader fault suite at scale: the generators of tests/test_fuzz_readers.py (random bytes,
generated transcript text in several encodings, cut and damaged sample files of every format),
run with many more examples, and every outcome counted: parsed (cues and passages point at their
text), refused with a one-line error naming the file, another exception, a hang, broken offsets.

    python experiments/fault_suite.py [--examples 1000]

Writes experiments/results/fault_suite.{json,md}. Examples are derandomized: a rerun tries the
same inputs. Exits 1 if any input ends otherwise than parsed or refused.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
OUTCOMES = ("parsed", "refused", "other", "hang", "bad offsets", "bad error")


def _reason(message: str) -> str:
    """A refusal's reason without the path and numbers, to group like refusals."""
    reason = message.split(": ", 1)[-1]
    reason = re.sub(r"\d+", "N", reason)
    return reason[:70]


def run(examples: int) -> dict:
    from hypothesis import given, settings

    sys.path.insert(0, str(ROOT / "tests" / "transcripts"))
    import test_fuzz_readers as fuzz

    def fuzz_reader(fmt: str, faults: list[dict]) -> tuple[Counter, Counter, Counter]:
        """Run ``examples`` generated inputs through the ``fmt`` reader: outcomes, (kind, outcome), refusals."""
        outcomes: Counter = Counter()
        by_kind: Counter = Counter()
        reasons: Counter = Counter()

        @settings(fuzz.FUZZ, max_examples=examples)
        @given(tagged=fuzz.tagged_inputs(fmt))
        def tally(tagged: tuple[str, bytes]) -> None:
            kind, raw = tagged
            outcome, why = fuzz.check(fmt, raw)
            outcomes[outcome] += 1
            by_kind[(kind, outcome)] += 1
            if outcome == "refused":
                reasons[_reason(why)] += 1
            elif outcome != "parsed" and len(faults) < 50:
                faults.append(
                    {"format": fmt, "kind": kind, "outcome": outcome, "why": why, "input_head": raw[:300].hex()}
                )

        tally()
        return outcomes, by_kind, reasons

    readers = {}
    faults: list[dict] = []
    for fmt in fuzz.FORMATS:
        started = time.perf_counter()
        outcomes, by_kind, reasons = fuzz_reader(fmt, faults)
        readers[fmt] = {
            "cases": sum(outcomes.values()),
            **{outcome: outcomes[outcome] for outcome in OUTCOMES},
            "by_kind": {
                kind: {o: by_kind[(kind, o)] for o in OUTCOMES if by_kind[(kind, o)]} for kind in fuzz.INPUT_KINDS
            },
            "top_refusals": reasons.most_common(6),
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(f"{fmt}: {readers[fmt]['cases']} cases, " + ", ".join(f"{o} {outcomes[o]}" for o in OUTCOMES), flush=True)
    total = {o: sum(r[o] for r in readers.values()) for o in ("cases", *OUTCOMES)}
    return {
        "examples_per_reader": examples,
        "time_limit_s": fuzz.TIME_LIMIT,
        "max_tokens": fuzz.MAX_TOKENS,
        "readers": readers,
        "total": total,
        "faults": faults,
    }


def markdown(result: dict) -> str:
    lines = [
        "# Reader fault suite",
        "",
        f"`python experiments/fault_suite.py --examples {result['examples_per_reader']}`: the generators of "
        "tests/test_fuzz_readers.py (random bytes; generated transcript-shaped text in UTF-8/UTF-8-BOM/UTF-16/"
        "cp1252/latin-1 with NULs, BOMs and lines up to ~60,000 characters; cuts, deletions, splices, "
        "re-encodings and byte damage of the sample files, and for .docx/.xlsx of the XML inside them), "
        f"each file read and segmented (token window {result['max_tokens']}) under a "
        f"{result['time_limit_s']:g} s limit. Hypothesis drops duplicate inputs, so a reader may get "
        "fewer cases than asked.",
        "",
        "| reader | cases | parsed | refused (one-line error) | other exception | hang | broken offsets | "
        "bad error message | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for fmt, r in result["readers"].items():
        lines.append(
            f"| .{fmt} | {r['cases']} | {r['parsed']} | {r['refused']} | {r['other']} | {r['hang']} | "
            f"{r['bad offsets']} | {r['bad error']} | {r['seconds']} |"
        )
    t = result["total"]
    lines.append(
        f"| **all** | **{t['cases']}** | {t['parsed']} | {t['refused']} | {t['other']} | {t['hang']} | "
        f"{t['bad offsets']} | {t['bad error']} | |"
    )
    lines += ["", "Most common refusals (path and numbers elided):", ""]
    for fmt, r in result["readers"].items():
        shown = "; ".join(f"{reason} ({n})" for reason, n in r["top_refusals"][:4])
        lines.append(f"- .{fmt}: {shown}")
    if result["faults"]:
        lines += ["", "Faults:", ""]
        lines += [f"- .{f['format']} ({f['kind']}): {f['outcome']}: {f['why']}" for f in result["faults"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1000, help="examples per reader (default 1000)")
    args = parser.parse_args()
    result = run(args.examples)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fault_suite.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    (RESULTS / "fault_suite.md").write_text(markdown(result), encoding="utf-8")
    bad = sum(result["total"][o] for o in OUTCOMES if o not in ("parsed", "refused"))
    print(
        f"{result['total']['cases']} cases: {result['total']['parsed']} parsed, {result['total']['refused']} "
        f"refused, {bad} otherwise -> {RESULTS / 'fault_suite.md'}"
    )
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
