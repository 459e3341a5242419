"""Commands for models: train, evaluate, runs, ui."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from supportlens.cli.common import (
    announce_sending,
    console,
    fail,
    in_cli_terms,
    not_written,
    out,
    styled,
    user_errors,
)

if TYPE_CHECKING:
    from supportlens.training.trainer import TrainResult


def train(
    config: Annotated[
        Path,
        typer.Option("--config", "-c", help="YAML config, or a bundled config's name (default, tfidf, finetune, ...)"),
    ] = Path("configs/default.yaml"),
    data: Annotated[str | None, typer.Option(help="Coded excerpts (CSV/TSV/JSONL/XLSX); overrides data.path")] = None,
    codebook: Annotated[str | None, typer.Option(help="Codebook YAML; overrides the config's")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config key, e.g. train.epochs=3")] = None,
    cv: Annotated[int | None, typer.Option(help="Also run grouped K-fold cross-validation")] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    ] = None,
    register: Annotated[str | None, typer.Option(help="Register the model under this name and set the alias")] = None,
    no_track: Annotated[bool, typer.Option("--no-track", help="Do not log to MLflow")] = False,
    add_data: Annotated[
        list[str] | None,
        typer.Option(
            "--add-data",
            help="Coded file or filled coding sheet (from `supportlens next`) of your own corpus: trained on "
            "as the target domain, never split, and scored cross-fitted for the trust figure; repeatable",
        ),
    ] = None,
    init_from: Annotated[
        str | None,
        typer.Option(
            "--init-from",
            help="Continue this trained model (folder, runs:/… or models:/…) on the --add-data passages "
            "instead of training anew",
        ),
    ] = None,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote", help="With a language-model config: let it be reached on a host other than this machine"
        ),
    ] = False,
) -> None:
    """Train a model on coded excerpts, evaluate it on held-out interviews, and log the run.

    With --add-data, the added passages are your own corpus: all trained on (docs/adaptation.md),
    and the agreement with them, cross-fitted, is printed as the trust figure."""
    from supportlens.config import load_config
    from supportlens.training.trainer import train as run_training

    try:
        cfg = load_config(config, set_)
        if allow_remote:  # as `--set llm.allow_remote=true`
            cfg = dataclasses.replace(cfg, llm=dataclasses.replace(cfg.llm, allow_remote=True))
        result = run_training(
            cfg,
            data_path=data,
            codebook_path=codebook,
            cv=cv,
            tracking_uri=tracking_uri,
            register=register,
            log=lambda m: console.print(styled(m), highlight=False),
            track=not no_track,
            extra_data=add_data,
            init_from=init_from,
        )
    except user_errors() as exc:
        fail(str(exc))
        return
    _print_outputs(result)


def adapt(
    coded: Annotated[
        list[str], typer.Argument(help="Coded files or filled coding sheets (from `supportlens next`) of your corpus")
    ],
    model: Annotated[str, typer.Option(help="The trained model to continue: a model folder, runs:/… or models:/…")],
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Config (default: the one the model was trained with, saved beside it)"),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(help="Authored coded excerpts to replay and test on (default: the model's training data)"),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key, e.g. adapt.replay=0.5")
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    ] = None,
    register: Annotated[str | None, typer.Option(help="Register the model under this name and set the alias")] = None,
    no_track: Annotated[bool, typer.Option("--no-track", help="Do not log to MLflow")] = False,
) -> None:
    """Continue a trained model on passages coded on your own corpus, and say how far to trust it.

    The same as `train --add-data CODED --init-from MODEL` with the config, codebook and data the
    model was trained with: its test interviews stay held out. Prints the trust figure: agreement
    with your coded passages, each scored by a model that never saw it (docs/adaptation.md)."""
    from supportlens.config import load_config
    from supportlens.training.trainer import adapt_model

    try:
        cfg = load_config(config, set_) if config is not None else None
        result = adapt_model(
            model,
            coded,
            cfg,
            overrides=set_,
            data_path=data,
            tracking_uri=tracking_uri,
            register=register,
            log=lambda m: console.print(styled(m.replace("`init_from`", "`model`")), highlight=False),
            track=not no_track,
        )
    except user_errors() as exc:
        fail(str(exc).replace("`init_from`", "`model`").replace("`extra_data`", "the CODED files"))
        return
    _print_outputs(result)


def _print_outputs(result: TrainResult) -> None:
    """Where the model went: its folder, its MLflow URI, and its registered name."""
    out.print(f"model folder: {result.model_dir}")
    if result.model_uri:
        out.print(f"model URI:    {result.model_uri}")
    if result.registered_version:
        out.print(f"registered:   {result.registered_as} (version {result.registered_version})")


def evaluate(
    model: Annotated[str, typer.Option(help="runs:/<id>/model, models:/<name>@<alias> or a model folder")],
    data: Annotated[str, typer.Option(help="Coded excerpts to evaluate on")],
    codebook: Annotated[str | None, typer.Option(help="Codebook (default: the one saved with the model)")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write metrics, confusion matrix, plots here")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI")] = None,
    text_column: Annotated[str | None, typer.Option(help="Name of the text column (default: text)")] = None,
    label_column: Annotated[
        str | None, typer.Option(help="Name of the code column (default: label; code in a coding sheet)")
    ] = None,
    group_column: Annotated[
        str | None, typer.Option(help="Interview/document id column (default: interview_id; source in a coding sheet)")
    ] = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not log this evaluation to MLflow")] = False,
    against: Annotated[
        str | None, typer.Option(help="A second model: also report its kappa and the paired difference")
    ] = None,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote", help="With a language model: let it be reached on a host other than this machine"
        ),
    ] = False,
) -> None:
    """Evaluate any model on any coded file: accuracy, macro-F1, per-code scores, kappa, alpha, ECE.

    Rows left without a code (a coding sheet not filled in yet) are skipped, with a note. With
    --against, a second model is scored on the same rows and kappa's difference gets a paired
    bootstrap interval: is one model measurably better on this file?"""
    from supportlens.config import DataConfig
    from supportlens.evaluation.evaluate import paired_difference
    from supportlens.training.evaluate_run import evaluate_file

    given = {
        name: value
        for name, value in (
            ("text_column", text_column),
            ("label_column", label_column),
            ("group_column", group_column),
        )
        if value is not None
    }
    try:
        data_cfg = DataConfig(**given) if given else None

        # --out is written below, once --against has worked too: a failed run leaves it as it was
        def score(which: str):  # --model and --against: the same data, options and run logging
            return evaluate_file(
                which,
                data,
                codebook,
                None,
                tracking_uri,
                log_run=not no_log,
                data_cfg=data_cfg,
                allow_remote=allow_remote,
                on_send=announce_sending,
            )

        result = score(model)
    except user_errors() as exc:
        fail(str(exc) + (f"; {not_written(out_dir)}" if out_dir else ""))
        return
    other = None
    if against:
        try:
            other = score(against)
            paired = paired_difference(result, other)
        except user_errors(ValueError) as exc:
            fail(f"--against {against}: {exc}" + (f"; {not_written(out_dir)}" if out_dir else ""))
            return
    if out_dir:
        result.write(out_dir)
        if other is not None:
            from supportlens.io.atomic import write_atomic

            write_atomic(
                out_dir / "against.json",
                lambda tmp: Path(tmp).write_text(
                    json.dumps({"model": model, "against": against, **paired}, indent=2), encoding="utf-8"
                ),
            )
    for note in result.notes:
        console.print(f"note: {in_cli_terms(note)}", highlight=False)
    for warning in result.warnings:
        console.print(f"[bold yellow]warning:[/] {escape(in_cli_terms(warning))}", highlight=False)
    m = result.metrics
    table = Table(title=f"{result.name} (n={m['n']})")
    for name in ("accuracy", "macro_f1", "kappa", "alpha", "ece"):
        table.add_column(name)
    table.add_row(*(f"{m[k]:.3f}" for k in ("accuracy", "macro_f1", "kappa", "alpha", "ece")))
    out.print(table)
    intervals = [
        f"{k} {m[f'{k}_ci_low']:.3f} to {m[f'{k}_ci_high']:.3f}"
        for k in ("kappa", "alpha")
        if isinstance(m.get(f"{k}_ci_low"), float) and not math.isnan(m[f"{k}_ci_low"])
    ]
    if intervals:  # a κ from a few hundred rows is uncertain: say how much
        out.print("95% bootstrap intervals: " + "; ".join(intervals), highlight=False)
    codes = Table(title="per code")
    for name in ("code", "precision", "recall", "f1", "support"):
        codes.add_column(name)
    for r in result.per_code.itertuples(index=False):
        codes.add_row(r.code, f"{r.precision:.3f}", f"{r.recall:.3f}", f"{r.f1:.3f}", str(r.support))
    out.print(codes)
    if other is not None:
        verdict = (
            "no measurable difference on this file"
            if paired["kappa_difference_ci_low"] <= 0 <= paired["kappa_difference_ci_high"]
            else "the first model agrees better"
            if paired["kappa_difference"] > 0
            else "the second model agrees better"
        )
        out.print(
            f"kappa {paired['kappa_a']:.3f} ({model}) vs {paired['kappa_b']:.3f} ({against}): "
            f"difference {paired['kappa_difference']:+.3f}, paired 95% interval "
            f"[{paired['kappa_difference_ci_low']:+.3f}, {paired['kappa_difference_ci_high']:+.3f}] over "
            f"{int(paired['n'])} excerpts ({int(paired['only_a_right'])} right only by the first, "
            f"{int(paired['only_b_right'])} only by the second): {verdict}",
            highlight=False,
        )
    if out_dir:  # where it wrote and what it logged, to find both again
        out.print(
            f"evaluation files -> {out_dir}" + (" (against.json too)" if other is not None else ""), highlight=False
        )
    for model_uri, evaluation in ((model, result), (against, other)):
        if evaluation is not None and evaluation.run_id:
            out.print(
                f"logged {model_uri} on {data}: MLflow run {evaluation.run_id} in experiment "
                f"{evaluation.experiment!r} (supportlens runs --experiment {evaluation.experiment})",
                highlight=False,
            )


# `runs` columns from the most telling; the least telling are left out first where the width is short
_RUNS_KEPT = ("run_id", "run_name", "macro_f1", "kappa")
_RUNS_RANK = (
    *_RUNS_KEPT,
    "n",
    "scored_on",
    "model_kind",
    "alpha",
    "cv_macro_f1",
    "f1_",
    "started",
    "train_seconds",
    "data_digest",
)


def _runs_column_rank(column: str, kind: str) -> int:
    """Where a column stands in `_RUNS_RANK` (per-code F1 columns by their prefix; unknown ones last)."""
    if kind == "train" and column == "scored_on":  # "test split" on every training run
        return len(_RUNS_RANK)
    key = "f1_" if column.startswith("f1_") else column
    return _RUNS_RANK.index(key) if key in _RUNS_RANK else len(_RUNS_RANK)


def _table_width() -> int:
    """The width a table may take: the terminal's; without a terminal $COLUMNS where set (e.g.
    COLUMNS=100 in a script), else `out`'s 240, so that a piped table is not squeezed to 80."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if not out.is_terminal and columns.isdigit() else out.width


def runs(
    experiment: Annotated[str | None, typer.Option(help="Experiment name (default: all)")] = None,
    sort: Annotated[str, typer.Option(help="Column to sort by")] = "macro_f1",
    format_: Annotated[str, typer.Option("--format", help="table or csv")] = "table",
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI")] = None,
) -> None:
    """Compare tracked runs side by side: training runs, then evaluation runs.

    A training run's scores are on its own held-out test interviews, an evaluation run's on the
    file it names; n says how many excerpts each figure rests on."""
    import pandas as pd

    from supportlens.tracking import runs_table

    try:
        table = runs_table(experiment, sort, tracking_uri)
    except ValueError as exc:
        fail(str(exc))
        return
    if format_ == "csv":
        sys.stdout.write(table.to_csv(index=False))
        return
    if format_ != "table":
        fail(f"--format must be table or csv, got {format_!r}")
    titles = {
        "train": "training runs: scored on each run's own held-out test interviews",
        "evaluate": "evaluation runs: scored on the file named in scored_on",
    }
    kinds = list(dict.fromkeys(table["kind"])) if len(table) else ["train"]
    width = _table_width()
    for kind in kinds:
        part = table[table["kind"] == kind].drop(columns="kind")
        cells = part.map(lambda v: "" if v is None or pd.isna(v) else f"{v:.3f}" if isinstance(v, float) else str(v))
        columns = list(part.columns)
        while True:  # leave out the least telling columns until the table fits the width
            view = Table(title=titles.get(kind, f"{kind} runs"), title_justify="left")
            for column in columns:
                view.add_column(column, no_wrap=column == "run_id")  # whole: runs:/<run_id>/model needs it
            for row in cells[columns].itertuples(index=False):
                view.add_row(*row)
            spare = [c for c in columns if c not in _RUNS_KEPT]
            if out.measure(view, options=out.options.update(width=10_000)).maximum <= width or not spare:
                break
            columns.remove(max(spare, key=lambda c: _runs_column_rank(c, kind)))
        if len(columns) < len(part.columns):
            view.caption = (
                f"left out to fit {width} columns: {', '.join(c for c in part.columns if c not in columns)}"
                " (--format csv has every column)"
            )
            view.caption_justify = "left"
        out.print(view, width=width)  # what still does not fit wraps


def ui(
    tracking_uri: Annotated[str | None, typer.Option(help="Backend store URI")] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 5000,
) -> None:
    """Open the MLflow UI on the tracking store."""
    from supportlens.tracking import open_ui

    raise typer.Exit(open_ui(tracking_uri, port))
