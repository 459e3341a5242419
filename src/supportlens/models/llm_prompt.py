"""What the `llm` model kind tells a language model and how it reads the answer back.

The prompt *is* the codebook: every code's definition, when to use it and when not, a few of its
examples, and the rule for passages that describe several approaches, rendered into a system
message; the passage goes alone into the user message. The rendering is versioned
(`PROMPT_VERSION`) and hashed, so a cached answer, a calibrated temperature and an MLflow run all
name the exact prompt they came from.

Pure functions only (no network, no files): the transport, the cache and the classifier are in
`supportlens.models.llm`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Bump when the wording or layout of the rendered prompt changes: cached answers and saved models
# then no longer match a new rendering by accident.
PROMPT_VERSION = "llm-codebook.v1"
PASSAGE_SLOT = "{passage}"
USER_TEMPLATE = f'Passage:\n"""\n{PASSAGE_SLOT}\n"""\n\nAnswer with the JSON object only.'

# words before a colon at a line start that name no one: roles ("Interviewer:") and words that
# open a line in ordinary prose ("So: ...")
_NOT_NAMES = {"interviewer", "interviewee", "participant", "respondent", "moderator", "facilitator", "speaker"}
_NOT_NAMES |= {"i", "p", "r", "q", "a", "int", "resp", "note", "notes", "question", "answer", "example"}
_NOT_NAMES |= {"so", "yes", "no", "well", "and", "but", "ok", "okay", "now", "then", "also", "first", "second"}
# "Maria:" / "Dr. Ana Silva:" at a line start: up to three capitalised words before a colon
_SPEAKER_LABEL = re.compile(r"^([ \t]*)([A-Z][\w'.-]*(?:[ \t]+[A-Z][\w'.-]*){0,2})[ \t]*:", re.MULTILINE)
# model answers that decline instead of coding (plain-text answers, where no JSON format is forced)
_DECLINE = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry|i can(?:'|no)t|i cannot|i won'?t|i'?m unable|i am unable)", re.I
)


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt: the system message, the user message around the passage, and the JSON
    schema the answer must follow. ``hash`` names all of it (and the settings that change answers)."""

    version: str
    system: str
    user_template: str
    schema: dict[str, Any]
    hash: str

    def messages(self, passage: str) -> list[dict[str, str]]:
        # replace, not str.format: a passage may hold braces
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.user_template.replace(PASSAGE_SLOT, passage)},
        ]

    def text(self) -> str:
        """The whole prompt as a person reads it (logged to MLflow, saved beside the model)."""
        return (
            f"# prompt {self.version} (sha256 {self.hash})\n\n## system\n\n{self.system}\n\n"
            f"## user\n\n{self.user_template}\n\n## answer schema\n\n{json.dumps(self.schema, indent=2)}\n"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "system": self.system,
            "user_template": self.user_template,
            "schema": self.schema,
            "hash": self.hash,
        }


def answer_schema(labels: Sequence[str]) -> dict[str, Any]:
    """The JSON schema of one answer: a code from the labels, a short rationale, the evidence."""
    return {
        "type": "object",
        "properties": {
            "code": {"type": "string", "enum": list(labels)},
            "rationale": {"type": "string"},
            "evidence": {"type": "string"},
        },
        "required": ["code", "rationale", "evidence"],
        "additionalProperties": False,
    }


def render_prompt(codebook: dict[str, Any], labels: Sequence[str], examples_per_code: int, max_tokens: int) -> Prompt:
    """The prompt for ``labels`` from a codebook as `Codebook.to_dict` writes it. ``max_tokens`` is
    hashed with it because a shorter budget cuts answers off and so changes them."""
    codes = {c["label"]: c for c in codebook.get("codes", [])}
    missing = [label for label in labels if label not in codes]
    if missing:
        raise ValueError(f"labels {missing} are not codes of the codebook {codebook.get('name', '')!r}")
    quoted = ", ".join(f'"{label}"' for label in labels)
    parts = [
        "You code passages from research interviews with the codebook below. Read the codebook, then "
        "give the one code that fits the passage best.",
        f"Codebook: {codebook.get('name', 'codebook')} (version {codebook.get('version', '1')})",
    ]
    for label in labels:
        code = codes[label]
        lines = [f"### {label} ({code.get('name') or label})", f"Summary: {code['short']}"]
        lines.append(f"Definition: {code['definition']}")
        if code.get("use_when"):
            lines.append(f"Use when: {code['use_when']}")
        if code.get("do_not_use_when"):
            lines.append(f"Do not use when: {code['do_not_use_when']}")
        examples = list(code.get("examples") or [])[:examples_per_code]
        if examples:
            lines.append("Examples:\n" + "\n".join(f'- "{e}"' for e in examples))
        parts.append("\n".join(lines))
    rule = codebook.get("multiple_approaches_rule")
    if rule:
        parts.append(f"When a passage describes several approaches: {rule}")
    if "none" in labels:
        parts.append('When the passage describes none of the approaches, the code is "none".')
    parts.append(
        "Answer with a JSON object and nothing else: "
        f'{{"code": one of {quoted}, "rationale": one short sentence saying why, '
        '"evidence": the words of the passage that justify the code}.'
    )
    system = "\n\n".join(parts)
    schema = answer_schema(labels)
    settings: dict[str, Any] = {"version": PROMPT_VERSION, "system": system, "user": USER_TEMPLATE}
    settings.update(schema=schema, max_tokens=max_tokens)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()
    return Prompt(PROMPT_VERSION, system, USER_TEMPLATE, schema, digest)


def prompt_from_dict(raw: dict[str, Any]) -> Prompt:
    """A prompt saved by `Prompt.to_dict` (a model folder's prompt.json)."""
    return Prompt(raw["version"], raw["system"], raw["user_template"], raw["schema"], raw["hash"])


# -- reading an answer --------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    code: str
    rationale: str
    evidence: str


class InvalidAnswer(ValueError):
    """An answer that is not a usable code; the message is the reason recorded for review."""


class Declined(InvalidAnswer):
    """The model declined to code the passage (a refusal, not a malformed answer)."""


def _label_key(text: str) -> str:
    # case and spacing variants of a label: "Co-creation", " PUSH ", "co creation"
    return re.sub(r"[\s_-]+", "_", text.strip().lower())


def parse_answer(content: str | None, labels: Sequence[str], cut_off: bool = False) -> Answer:
    """The answer in ``content``, or `InvalidAnswer` saying why it is not one. A label is
    accepted in case and spacing variants, never as a synonym: a code outside the labels is invalid.
    ``cut_off``: the server stopped at max_tokens (said in the reason when the JSON is broken)."""
    text = (content or "").strip()
    if not text:
        raise InvalidAnswer("empty answer")
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.S)
    if fenced:
        text = fenced.group(1)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        # plain-text servers may wrap the object in a sentence: take the outermost braces
        start, end = text.find("{"), text.rfind("}")
        try:
            raw = json.loads(text[start : end + 1]) if 0 <= start < end else None
        except json.JSONDecodeError:
            raw = None
        if raw is None:
            if _DECLINE.match(text):
                raise Declined(f"refused: {' '.join(text.split())[:120]}") from None
            raise InvalidAnswer("cut off at max_tokens" if cut_off else "not JSON") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("code"), str):
        raise InvalidAnswer("no code in the answer")
    by_key = {_label_key(label): label for label in labels}
    code = by_key.get(_label_key(raw["code"]))
    if code is None:
        raise InvalidAnswer(f"code {raw['code'][:40]!r} is not in the codebook")
    return Answer(code, str(raw.get("rationale") or "").strip(), str(raw.get("evidence") or "").strip())


# -- what is sent -------------------------------------------------------------------------------
def pseudonymise(text: str, names: Sequence[str] = ()) -> str:
    """``text`` with speaker labels at line starts ("Maria:") and the given ``names`` replaced by
    [PERSON 1], [PERSON 2] ... numbered by first appearance, so the same passage always reads the
    same (and hits the same cache entry). Roles ("Interviewer:") are kept: they name no one.
    Configured names match in any case; a name found as a speaker label matches as written."""
    found = {m.group(2) for m in _SPEAKER_LABEL.finditer(text) if m.group(2).lower().rstrip(".") not in _NOT_NAMES}
    given = {n.strip() for n in names if n.strip()}
    if not found and not given:
        return text
    # longest first, so "Maria Lopez" is one person and not "Maria" plus a surname
    alternatives = [(n, True) for n in given] + [(n, False) for n in found - given]
    alternatives.sort(key=lambda item: len(item[0]), reverse=True)
    pattern = re.compile(
        r"(?<!\w)("
        + "|".join(f"(?i:{re.escape(n)})" if any_case else re.escape(n) for n, any_case in alternatives)
        + r")(?!\w)"
    )
    numbers: dict[str, int] = {}

    def placeholder(match: re.Match[str]) -> str:
        key = match.group(1).lower()
        numbers.setdefault(key, len(numbers) + 1)
        return f"[PERSON {numbers[key]}]"

    return pattern.sub(placeholder, text)
