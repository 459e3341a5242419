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
    notices = [m for m in collect.messages if "database" in m or "Creating a new experiment" in m
               or "upgrade" in m.lower()]
    assert notices == []
    assert "WARNING a real problem" in collect.messages
    # the logger that later links to a run on a tracking server is left as it was
    assert logging.getLogger("mlflow.tracking.fluent").level == logging.NOTSET
