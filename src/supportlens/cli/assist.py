"""Commands that help coders decide: `agreement`, `next` and `audit` (thin wrappers over
`supportlens.evaluation.agreement`, `supportlens.assist.active` and `supportlens.assist.audit`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from supportlens.cli.common import console, fail, in_cli_terms, not_written, out, user_errors
from supportlens.config import DEFAULT_CODEBOOK

_SHOWN = 20  # rows of a long list printed to the terminal; the file has them all
_NAMED = 10  # unit names printed per line of a units listing


def _first(names: list[str]) -> str:
    shown = ", ".join(names[:_NAMED])
    return shown + (f" and {len(names) - _NAMED} more" if len(names) > _NAMED else "")


def _clip(text: object, width: int = 90) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _load_codebook(path: str | None):
    from supportlens.codebook import load_codebook

    return load_codebook(path) if path else None


def agreement(
    a: Annotated[str, typer.Argument(help="First coding: coded excerpts, a filled coding sheet or a predict output")],
    b: Annotated[
        str | None,
        typer.Argument(
            help="Second coding, of the same excerpts or transcripts (leave out for two users of one .qdpx)"
        ),
    ] = None,
    by: Annotated[
        str | None, typer.Option(help="Match units by id or span (default: span when both files have source/start/end)")
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Write the disagreements to discuss (.csv or .xlsx)")
    ] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% intervals (0: none)")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap")] = 13,
    codebook: Annotated[
        str | None,
        typer.Option(
            help=(
                "Codebook YAML: maps names and aliases to codes and rejects unknown codes (default: "
                f"{DEFAULT_CODEBOOK} when it exists: codes it knows are matched through it, others compared as "
                "written; without it, all as written)"
            )
        ),
    ] = None,
    code_column_a: Annotated[str | None, typer.Option(help="Column with A's codes (default: code, else label)")] = None,
    code_column_b: Annotated[str | None, typer.Option(help="Column with B's codes (default: code, else label)")] = None,
    user_a: Annotated[
        str | None,
        typer.Option(
            help=(
                "In a .qdpx: the first user (default: the human coder with most codings; supportlens' suggestions "
                "only when named or when one person coded)"
            )
        ),
    ] = None,
    user_b: Annotated[
        str | None,
        typer.Option(help="In a .qdpx: the second user (default: the human coder with most codings after A)"),
    ] = None,
    code_map: Annotated[
        Path | None,
        typer.Option(
            help="In a .qdpx: YAML {project code name or 'Parent > Child': codebook label or null}, as for `import`"
        ),
    ] = None,
) -> None:
    """Agreement between two coders, or a coder and a model: kappa, alpha, per-code agreement, disagreements."""
    from supportlens.corpus.sheets import SheetError
    from supportlens.evaluation.agreement import agreement_files, write_disagreements

    if bootstrap < 0:
        fail(f"--bootstrap must be 0 or more, got {bootstrap}")
    if out_path is not None and out_path.suffix.lower() not in (".csv", ".xlsx"):
        fail(f"--out must end in .csv or .xlsx; got {out_path.name!r}")

    def compare(book, unknown_codes: str = "error"):
        return agreement_files(
            a,
            b,
            book,
            by=by,
            n_boot=bootstrap,
            seed=seed,
            code_column_a=code_column_a,
            code_column_b=code_column_b,
            user_a=user_a,
            user_b=user_b,
            unknown_codes=unknown_codes,
            code_map=code_map,
        )

    try:
        if codebook is None and Path(DEFAULT_CODEBOOK).is_file():
            # the project's codebook matches "Push", "co-creation" and aliases to one code; a code
            # in no scheme it knows is compared as written, and a note names it
            result = compare(_load_codebook(DEFAULT_CODEBOOK), unknown_codes="keep")
            if not result.unknown_codes:  # else a note already names them and the codebook
                result.notes.append(
                    f"codes matched through {DEFAULT_CODEBOOK} (labels, names, aliases); "
                    "pass --codebook FILE for another scheme"
                )
        else:
            result = compare(_load_codebook(codebook))
        if out_path is not None and not result.disagreements.empty:  # no empty sheet over an earlier one
            write_disagreements(result, out_path)
    except user_errors(SheetError) as exc:
        fail(str(exc) + (f"; {not_written(out_path)}" if out_path is not None else ""))
        return
    for note in result.notes:
        console.print(f"note: {in_cli_terms(note)}", highlight=False)
    out.print(f"A = {result.name_a}\nB = {result.name_b}", highlight=False, markup=False)
    units = Table(title=f"units (matched by {result.matched_by})")
    for name in ("matched", "only in A", "only in B", "not coded in A", "not coded in B"):
        units.add_column(name, justify="right")
    units.add_row(*map(str, (result.n, result.only_a, result.only_b, result.uncoded_a, result.uncoded_b)))
    out.print(units)
    for label, names in (
        ("only in A", result.only_a_units),
        ("only in B", result.only_b_units),
        ("not coded (blank code) in A", result.uncoded_a_units),
        ("not coded (blank code) in B", result.uncoded_b_units),
    ):
        if names:  # which units, so the coders can find them
            out.print(f"{label}: {_first(names)}", highlight=False, markup=False)
    interval = f"95% interval ({result.n_boot} bootstrap resamples)" if result.n_boot else "95% interval"
    stats = Table(title="agreement")
    for name in ("statistic", "value", interval):
        stats.add_column(name)
    for label, est in (
        ("percent agreement", result.percent),
        ("Cohen's kappa", result.kappa),
        ("Krippendorff's alpha (nominal)", result.alpha),
    ):
        ci = "" if est.low != est.low else f"{est.low:.3f} to {est.high:.3f}"
        stats.add_row(label, "n/a" if est.value != est.value else f"{est.value:.3f}", ci)
    out.print(stats)
    per_code = Table(title="per code")
    for name in ("code", "A", "B", "both", "specific agreement", "kappa (code vs rest)"):
        per_code.add_column(name, justify="left" if name == "code" else "right")
    for r in result.per_code.itertuples(index=False):
        per_code.add_row(
            r.code,
            str(r.n_a),
            str(r.n_b),
            str(r.both),
            *("n/a" if v != v else f"{v:.3f}" for v in (r.specific_agreement, r.kappa)),
        )
    out.print(per_code)
    confusion = Table(title="confusion (rows: A, columns: B)")
    confusion.add_column("A \\ B")
    for code in result.labels:
        confusion.add_column(code, justify="right")
    for code, row in result.confusion.iterrows():
        confusion.add_row(str(code), *(f"[bold]{v}[/]" if c == code else str(v) for c, v in row.items()))
    out.print(confusion)
    d = result.disagreements
    if d.empty:
        out.print(
            "no disagreements" + (f", so {not_written(out_path)}" if out_path is not None else ""), highlight=False
        )
        return
    listing = Table(title=f"disagreements ({len(d)}" + (f", first {_SHOWN}" if len(d) > _SHOWN else "") + ")")
    for name in ("unit", "A", "B", "text"):
        listing.add_column(name)
    for r in d.head(_SHOWN).itertuples(index=False):
        where = r.unit or (f"{r.source} {r.start}-{r.end}" if r.source else "")
        listing.add_row(str(where), r.code_a, r.code_b, _clip(r.text))
    out.print(listing)
    if out_path is not None:
        out.print(f"disagreements -> {out_path}", highlight=False)


def next_(
    inputs: Annotated[list[str], typer.Argument(help="Transcript files, folders (searched recursively) or globs")],
    model: Annotated[str, typer.Option(help="runs:/<id>/model, models:/<name>@<alias> or a model folder")],
    out_path: Annotated[Path, typer.Option("--out", help="Coding sheet to write: .csv or .xlsx")],
    n: Annotated[int, typer.Option(help="How many passages to suggest")] = 40,
    strategy: Annotated[str, typer.Option(help="margin, entropy or random")] = "margin",
    diversity: Annotated[
        bool,
        typer.Option(
            "--diversity/--no-diversity",
            help="Avoid near-duplicate picks (off by default: plain margin climbed fastest, docs/adaptation.md)",
        ),
    ] = False,
    speaker: Annotated[
        str, typer.Option(help="Which turns to consider: participant, interviewer or all")
    ] = "participant",
    interviewer: Annotated[
        list[str] | None, typer.Option(help="Speaker name (or regex) of the interviewer; repeatable")
    ] = None,
    skip: Annotated[
        list[str] | None,
        typer.Option(help="Coded file or earlier sheet whose passages are not offered again; repeatable"),
    ] = None,
    offer_blank: Annotated[
        bool,
        typer.Option("--offer-blank", help="Offer again the passages a --skip sheet has with no code (left blank)"),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed (random strategy)")] = 13,
    text_column: Annotated[str, typer.Option(help="Text column for .csv/.xlsx transcripts")] = "text",
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI for runs:/ and models:/")] = None,
) -> None:
    """Suggest the passages to code next (where the model is least sure) as a coding sheet."""
    from supportlens.assist.active import STRATEGIES, NothingToOffer, choose_next, coded_and_blank_texts, read_passages
    from supportlens.corpus.sheets import SHEET_SUFFIXES, SheetError
    from supportlens.inference.labeler import Labeler, PredictError
    from supportlens.inference.predict import grouped_notes
    from supportlens.models import load_classifier
    from supportlens.tracking import fetch_model_dir
    from supportlens.transcripts.segmentation import SpeakerRules

    if out_path.suffix.lower() not in SHEET_SUFFIXES:
        fail(f"--out must end in {' or '.join(SHEET_SUFFIXES)}; got {out_path.name!r}")
    if strategy not in STRATEGIES:
        fail(f"--strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
    if n < 1:
        fail(f"--n must be at least 1, got {n}")
    try:
        rules = SpeakerRules.with_interviewers(interviewer)
    except ValueError as exc:  # an invalid --interviewer regular expression
        fail(str(exc))
        return
    try:
        coded, blank = coded_and_blank_texts(skip or [])  # a bad --skip file stops us before the model loads
        labeler = Labeler(load_classifier(fetch_model_dir(model, tracking_uri)))
        passages, problems, notes = read_passages(inputs, labeler, speaker, rules, text_column)
        for problem in problems:
            console.print(f"[yellow]skipped[/] {in_cli_terms(problem)}", highlight=False)
        for note in grouped_notes(notes):  # a note many files share is said once
            console.print(f"note: {in_cli_terms(note)}", highlight=False)
        sheet = choose_next(
            passages,
            labeler,
            out_path,
            coded=coded,
            blank=blank,
            offer_blank=offer_blank,
            n=n,
            strategy=strategy,
            diversity=diversity,
            seed=seed,
        )
    except NothingToOffer as exc:
        fail(f"{exc}, so {not_written(out_path)}")
        return
    except user_errors(PredictError, SheetError) as exc:  # SheetError: a SelectionError too
        fail(f"{exc}; {not_written(out_path)}")
        return
    chosen = sheet.chosen
    table = Table(
        title=f"{len(chosen)} passages to code next ({strategy}"
        + (", spread out" if diversity and strategy != "random" else "")
        + ")"
    )
    for name in ("#", "source", "passage", "suggested", "confidence", "text"):
        table.add_column(name)
    for r in chosen.head(_SHOWN).itertuples(index=False):
        table.add_row(
            str(r.pick),
            Path(r.source).name,
            str(r.passage_index),
            r.suggested_code,
            f"{r.confidence:.2f}",
            _clip(r.text, 70),
        )
    out.print(table)
    left_out = f" ({in_cli_terms(sheet.left_out())})" if sheet.coded or sheet.blank else ""
    out.print(
        f"{len(chosen)} of {sheet.offered} passages{left_out} -> {out_path}\n"
        f"fill in the 'code' column, then: supportlens train --add-data {out_path} ...",
        highlight=False,
    )
    if problems:  # as predict does: the sheet is written, but not every input was read
        console.print(
            f"[bold red]{len(problems)} input(s) could not be read[/] (listed above); the sheet "
            "holds passages from the others",
            highlight=False,
        )
        raise typer.Exit(1)


def audit(
    data: Annotated[str, typer.Argument(help="Coded excerpts (CSV/TSV/JSONL/XLSX)")],
    config: Annotated[
        Path, typer.Option("--config", "-c", help="YAML config; k models of its kind are trained")
    ] = Path("configs/tfidf.yaml"),
    out_path: Annotated[Path | None, typer.Option("--out", help="Write the doubtful codes (.csv or .xlsx)")] = None,
    top: Annotated[int | None, typer.Option(help="Keep only the N most doubtful")] = None,
    cv: Annotated[int, typer.Option(help="Grouped cross-validation folds")] = 5,
    codebook: Annotated[str | None, typer.Option(help="Codebook YAML; overrides the config's")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key, e.g. data.label_column=code")
    ] = None,
) -> None:
    """List coded excerpts whose code looks wrong to a cross-validated model, most doubtful first."""
    from supportlens.assist.audit import FLAGGED_MEANING, code_legend
    from supportlens.assist.audit import audit as run_audit
    from supportlens.codebook import load_codebook
    from supportlens.config import load_config
    from supportlens.corpus.sheets import SheetError, write_sheet

    if out_path is not None and out_path.suffix.lower() not in (".csv", ".xlsx"):
        fail(f"--out must end in .csv or .xlsx; got {out_path.name!r}")
    if top is not None and top < 1:
        fail(f"--top must be at least 1, got {top}")
    if cv < 2:
        fail(f"--cv must be at least 2, got {cv}")
    try:
        cfg = load_config(config, set_)
        book = load_codebook(codebook or cfg.codebook)
        result = run_audit(
            data, cfg, k=cv, codebook=book, top=top, log=lambda m: console.print(in_cli_terms(m), highlight=False)
        )
        if out_path is not None and not result.empty:  # no empty sheet over an earlier one
            write_sheet(result, out_path)
    except user_errors(SheetError) as exc:
        fail(str(exc) + (f"; {not_written(out_path)}" if out_path is not None else ""))
        return
    if result.empty:
        out.print(
            "no doubtful codes: every excerpt's code is the one the model finds most likely"
            + (f", so {not_written(out_path)}" if out_path is not None else ""),
            highlight=False,
        )
        return
    shown = result.head(_SHOWN)
    table = Table(
        title=f"doubtful codes ({len(result)}" + (f", first {_SHOWN}" if len(result) > _SHOWN else "") + ")",
        caption=f"given / suggested: code (out-of-fold probability); {FLAGGED_MEANING}",
        caption_justify="left",
    )
    for name in ("rank", "id", "given", "suggested", "flagged", "text"):
        table.add_column(name)
    for r in shown.itertuples(index=False):
        table.add_row(
            str(r.rank),
            str(r.id),
            f"{r.given_code} ({r.given_probability:.2f})",
            f"{r.suggested_code} ({r.suggested_probability:.2f})",
            "yes" if r.flagged else "",
            _clip(r.text, 70),
        )
    out.print(table)
    legend = Table(title="codes in the table", title_justify="left", box=None, show_header=False)
    legend.add_column("code", style="bold")
    legend.add_column("in short")
    for label, short in code_legend(shown, book):
        legend.add_row(label, short)
    out.print(legend)
    out.print(
        "full definitions: given_definition and suggested_definition "
        + (f"in {out_path}" if out_path is not None else "columns of --out FILE"),
        highlight=False,
    )
    if out_path is not None:
        out.print(f"{len(result)} doubtful codes -> {out_path}", highlight=False)
