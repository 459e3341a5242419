"""Progress of a batch of files on the console, for the commands that label many transcripts.

On a terminal it is rich's live bar. Without one (nohup, a CI log, a pipe) a live bar is drawn
only once, when it stops, so a long run would look stuck: there it is a plain line every
`PLAIN_INTERVAL_S` seconds instead, e.g. ``labelling: 12/200 files, 340 passages, 28.1/s, 0:01:12``.
"""

from __future__ import annotations

import time
from datetime import timedelta

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

PLAIN_INTERVAL_S = 10.0  # often enough to show a run is alive, rare enough for a readable log


class FileProgress:
    """Files done of a known total, passages labelled, their rate and the files that failed.

    Call `start` with the number of files (nothing is shown for none), `update` as they are
    done, `failed` for each that fails (counted here; the reasons are listed once, at the end)
    and `stop` at the end, also after an error."""

    def __init__(self, console: Console, label: str = "labelling", interval: float | None = None):
        self.console = console
        self.label = label
        self.interval = PLAIN_INTERVAL_S if interval is None else interval
        self.total = 0
        self.completed = 0
        self.passages = 0
        self.failures = 0
        self.started = False
        self._t0 = time.perf_counter()
        self._printed_at = self._t0
        self._printed: tuple[int, int, int] | None = None  # (files, passages, failures) last printed
        self._live: Progress | None = None
        self._task: TaskID | None = None  # the live bar's task, made with it

    def start(self, total: int) -> None:
        self.total = total
        if not total:  # a run that fails before it has a file to read shows no empty bar
            return
        self.started = True
        if self.console.is_terminal:
            self._live = Progress(
                TextColumn(f"[bold]{self.label}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("files"),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self._task = self._live.add_task(self.label, total=total, detail=self._detail())
            self._live.start()

    def update(self, files: int, passages: int) -> None:
        self.completed, self.passages = files, passages
        self._refresh()

    def failed(self) -> None:
        self.failures += 1
        self._refresh()

    def stop(self) -> None:
        """End the bar (it stays, above any message that follows), or print the last plain line."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        elif self.started and self._printed != (self.completed, self.passages, self.failures):
            self._print_line()  # the final count, unless the last line said it
        self.started = False

    def _refresh(self) -> None:
        if self._live is not None:
            assert self._task is not None  # start() adds the task as it makes the bar
            self._live.update(self._task, completed=self.completed, detail=self._detail())
        elif self.started and time.perf_counter() - self._printed_at >= self.interval:
            self._print_line()

    def _detail(self) -> str:
        elapsed = time.perf_counter() - self._t0
        return f"{self.passages} passages, {self.passages / max(elapsed, 1e-9):.1f}/s" + (
            f", {self.failures} failed" if self.failures else ""
        )

    def _print_line(self) -> None:
        self._printed_at = time.perf_counter()
        self._printed = (self.completed, self.passages, self.failures)
        elapsed = timedelta(seconds=int(self._printed_at - self._t0))
        self.console.print(
            f"{self.label}: {self.completed}/{self.total} files, {self._detail()}, {elapsed}",
            highlight=False,
            markup=False,
        )
