"""The codebook: the codes, their definitions, and the label <-> id mapping every model shares."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class CodebookError(ValueError):
    """The codebook file is missing, malformed, or ambiguous."""


@dataclass(frozen=True)
class Code:
    label: str
    name: str
    short: str
    definition: str
    use_when: str = ""
    do_not_use_when: str = ""
    aliases: tuple[str, ...] = ()
    color: str = "#888888"
    examples: tuple[str, ...] = ()  # short illustrative passages; the codebook prior embeds them

    def prior_texts(self) -> list[str]:
        """What a reader learns the code from: its summary, definition sentences and examples."""
        sentences = [self.short]
        for part in (self.definition, self.use_when):
            sentences += [s.strip() for s in re.split(r"(?<=[.;])\s+", part) if len(s.split()) >= 4]
        return sentences + list(self.examples)


def _key(text: str) -> str:
    """Alias matching ignores case, spacing, hyphens, underscores and slashes."""
    return re.sub(r"[\s_\-/]+", " ", str(text).strip().lower()).strip()


@dataclass
class Codebook:
    codes: list[Code]
    name: str = "codebook"
    version: str = "1"
    multiple_approaches_rule: str = ""
    source: str | None = None
    _lookup: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if len(self.codes) < 2:
            raise CodebookError("a codebook needs at least two codes")
        for code in self.codes:
            for alias in (code.label, code.name, *code.aliases):
                key = _key(alias)
                other = self._lookup.get(key)
                if other is not None and other != code.label:
                    raise CodebookError(f"alias {alias!r} is claimed by both {other!r} and {code.label!r}")
                self._lookup[key] = code.label

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.codes]

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    def code(self, label: str) -> Code:
        for c in self.codes:
            if c.label == label:
                return c
        raise KeyError(label)

    def normalise(self, value: Any) -> str | None:
        """Map a label or any alias to its canonical label; None when unknown."""
        if value is None:
            return None
        return self._lookup.get(_key(value))

    def known_values(self) -> list[str]:
        return [f"{c.label} (aliases: {', '.join(c.aliases)})" if c.aliases else c.label for c in self.codes]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "multiple_approaches_rule": self.multiple_approaches_rule,
            "codes": [
                {
                    "label": c.label,
                    "name": c.name,
                    "color": c.color,
                    "short": c.short,
                    "definition": c.definition,
                    "use_when": c.use_when,
                    "do_not_use_when": c.do_not_use_when,
                    "aliases": list(c.aliases),
                    **({"examples": list(c.examples)} if c.examples else {}),
                }
                for c in self.codes
            ],
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")


def codebook_from_dict(raw: dict[str, Any], source: str | None = None) -> Codebook:
    where = f"{source}: " if source else ""
    if not isinstance(raw, dict) or not isinstance(raw.get("codes"), list):
        raise CodebookError(f"{where}expected a mapping with a list under 'codes'")
    codes = []
    seen = set()
    for i, item in enumerate(raw["codes"]):
        if not isinstance(item, dict):
            raise CodebookError(f"{where}codes[{i}] must be a mapping")
        for required in ("label", "short", "definition"):
            if not str(item.get(required) or "").strip():
                raise CodebookError(f"{where}codes[{i}] is missing '{required}'")
        label = str(item["label"]).strip()
        if not re.fullmatch(r"[a-z][a-z0-9_]*", label):
            raise CodebookError(f"{where}codes[{i}].label {label!r} must be lower-case letters, digits and _")
        if label in seen:
            raise CodebookError(f"{where}code {label!r} is defined twice")
        seen.add(label)
        unknown = set(item) - {
            "label",
            "name",
            "short",
            "definition",
            "use_when",
            "do_not_use_when",
            "aliases",
            "color",
            "examples",
        }
        if unknown:
            raise CodebookError(f"{where}codes[{i}] has unknown keys: {', '.join(sorted(unknown))}")
        examples = item.get("examples") or []
        if not isinstance(examples, list) or not all(isinstance(e, str) and e.strip() for e in examples):
            raise CodebookError(f"{where}codes[{i}].examples must be a list of non-empty passages (strings)")
        codes.append(
            Code(
                label=label,
                name=str(item.get("name") or label),
                short=str(item["short"]).strip(),
                definition=" ".join(str(item["definition"]).split()),
                use_when=" ".join(str(item.get("use_when") or "").split()),
                do_not_use_when=" ".join(str(item.get("do_not_use_when") or "").split()),
                aliases=tuple(str(a) for a in item.get("aliases") or ()),
                color=str(item.get("color") or "#888888"),
                examples=tuple(" ".join(e.split()) for e in examples),
            )
        )
    return Codebook(
        codes=codes,
        name=str(raw.get("name") or "codebook"),
        version=str(raw.get("version") or "1"),
        multiple_approaches_rule=" ".join(str(raw.get("multiple_approaches_rule") or "").split()),
        source=source,
    )


def load_codebook(path: str | Path) -> Codebook:
    """The codebook at ``path``; outside a project folder, ``configs/codebook.yaml`` (the default of
    every command) and ``codebook`` name the one bundled with supportlens."""
    from supportlens.resources import bundled_hint, resolve

    path = resolve(path)
    if not path.is_file():
        raise CodebookError(
            f"codebook file not found: {path}"
            + (
                f" (relative to {Path.cwd()}: run from the project folder, or give the codebook a full path"
                f"{bundled_hint('codebook')})"
                if not path.is_absolute()
                else ""
            )
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CodebookError(f"{path}: not valid YAML: {exc}") from exc
    return codebook_from_dict(raw, source=str(path))
