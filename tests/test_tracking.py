"""The one module that talks to MLflow: what it lets MLflow print."""

import logging

from supportlens import tracking


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(f"{record.levelname} {record.getMessage()}")


def test_a_first_run_shows_no_store_housekeeping_but_warnings_still_show(tracking_uri):
    collect = _Collect()
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    for logger in loggers:
        logger.addHandler(collect)
    try:
        tracking.setup(tracking_uri, "first-run")  # a new SQLite store and a new experiment
        logging.getLogger("mlflow.store.db.utils").warning("a real problem")
    finally:
        for logger in loggers:
            logger.removeHandler(collect)
    notices = [
        m for m in collect.messages if "database" in m or "Creating a new experiment" in m or "upgrade" in m.lower()
    ]
    assert notices == []
    assert "WARNING a real problem" in collect.messages
    # the logger that later links to a run on a tracking server is left as it was
    assert logging.getLogger("mlflow.tracking.fluent").level == logging.NOTSET


def test_logging_the_training_data_shows_no_source_notice_and_records_the_digest(tracking_uri, tmp_path):
    import warnings

    import mlflow
    import pandas as pd

    source = tmp_path / "coded.jsonl"
    source.write_text("{}\n", encoding="utf-8")
    frame = pd.DataFrame({"id": ["a", "b"], "text": ["we trained them", "they asked us"], "label": ["push", "pull"]})
    tracking.setup(tracking_uri, "datasets")
    with tracking.run("data"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracking.log_training_data(frame, str(source), "coded", "abc123")
        run_id = tracking.active_run_id()
    assert [str(w.message) for w in caught if "interpreted in multiple ways" in str(w.message)] == []
    run = mlflow.get_run(run_id)
    assert run.data.tags["data_digest_training"] == "abc123"
    inputs = run.inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == ["coded"]
    assert str(source) in inputs[0].dataset.source


def test_a_language_models_prompt_is_logged_whole_with_its_hash_and_version(tracking_uri):
    import mlflow

    prompt = "You code interview passages.\nCodes: push, pull, co_creation, none.\n"
    tracking.setup(tracking_uri, "prompts")
    with tracking.run("teacher"):
        tracking.log_prompt(prompt, "ab12cd34ef56aa77", 3, prefix="teacher")
        run_id = tracking.active_run_id()
    run = mlflow.get_run(run_id)
    assert run.data.params["teacher.prompt_hash"] == "ab12cd34ef56aa77"
    assert run.data.params["teacher.prompt_version"] == "3"
    logged = mlflow.artifacts.load_text(f"runs:/{run_id}/prompt/teacher-ab12cd34ef56.txt")
    assert logged == prompt
