"""The results table: typed cells that keep the paper's numbers out of the "ours" column, and the
CSV / markdown writer that a rerun reads back to skip finished rows.

Cells of the two accuracy columns are typed: "paper value" takes a `Paper` (a number printed in
the paper), "ours" a `Measured` (a number this code measured, with the data and budget it was
measured on), a `NotRun` (why the row has no result) or `QUOTED` (a peer row of the paper that
is only quoted). Anything else raises TypeError, so a paper number cannot reach "ours".
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import pandas as pd

from snn.files import write_atomic

from .budget import Budget, git_sha, is_main

COLUMNS = ["row", "paper value", "ours", "difference", "epochs", "wall time", "images/s", "device", "budget",
           "git sha", "measured"]
KEYS = ["row id", "run id", "run stamp", "status"]  # CSV only: what a rerun matches finished rows by
DONE, QUOTE = "done", "quoted"
REUSED = " (reused)"  # appended to the "measured" date of a row taken from an earlier invocation
REUSED_NOTE = ("rows whose `measured` date says (reused) were measured by an earlier invocation, at the git sha "
               "and date shown, from the same run folder, unchanged since (same metrics.csv digest); the "
               "others were measured by this one.")


def run_stamp(folder: Path) -> str:
    """12 hex digits of the SHA-256 of a run folder's metrics.csv ('' when it has none).

    snn.train rewrites metrics.csv after every epoch, with each epoch's measured seconds, so the
    stamp changes whenever the run trains again (also when it is deleted and trained anew with
    the same settings): a finished row is reused only while its run folder still holds the run
    it was measured from."""
    path = Path(folder) / "metrics.csv"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else ""


@dataclass(frozen=True)
class Paper:
    """A number printed in the paper (percent), its +- where given, the dataset it is on."""

    pct: float
    data: str
    pm: Optional[float] = None

    def __str__(self) -> str:
        return f"{self.pct:.2f}%" + (f" ±{self.pm:.2f}" if self.pm is not None else "") + " (paper)"


@dataclass(frozen=True)
class Measured:
    """An accuracy (percent) measured here on `data` at budget `tag` ('smoke', 'paper', ...)."""

    pct: float
    data: str
    tag: str

    def __str__(self) -> str:
        if self.tag == "paper":
            return f"{self.pct:.2f}%"
        return f"{self.pct:.2f}% ({self.tag}, {self.data})"


@dataclass(frozen=True)
class NotRun:
    """A row without a result, and why."""

    reason: str

    def __str__(self) -> str:
        return f"not run: {self.reason}"


class Quoted:
    """The "ours" cell of a peer method's row: the paper's number is only quoted."""

    def __str__(self) -> str:
        return "- (peer method: not run here)"


QUOTED = Quoted()
Ours = Union[Measured, NotRun, Quoted]


def difference(paper: Optional[Paper], ours: Ours) -> str:
    """ours - paper in percentage points, only when both are accuracies on the same dataset."""
    if paper is None or not isinstance(ours, Measured):
        return ""
    if ours.data != paper.data:
        return f"n/a ({ours.tag} run on {ours.data}, paper on {paper.data})"
    return f"{ours.pct - paper.pct:+.2f} pp"


@contextlib.contextmanager
def _folder_lock(folder: Path):
    """An exclusive flock on the results folder itself (no lock file beside the tables) for the
    with-block: one process at a time reads and rewrites a table there."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _now() -> str:
    return datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


class ResultsTable:
    """<out>/<script>-<budget tag>.{csv,md}: the COLUMNS, then the script's extra columns.

    Rows are added in order and the files rewritten after each; until `close()`, the finished rows
    of the previous files not added again yet stay in them, so a run killed at any point loses no
    finished row. `track(run_id, folder)` names the run folder a run id's rows are measured from;
    `finished(row_id, run_id)` returns a finished row of the previous files to reuse, only when its
    run stamp (see run_stamp) is the tracked folder's current one, and `reuse` adds it marked.
    Another process may write the same table meanwhile (the same script with other --rows): every
    rewrite holds a lock on the folder, reads the files again and keeps the finished rows the other
    process added or changed since this one started, so neither loses the other's rows.
    """

    def __init__(self, out: Path, script: str, budget: Budget, title: str, extra: list[str], notes: list[str],
                 command: str):
        self.stem = f"{script}-{budget.tag}"
        self.csv, self.md = Path(out) / f"{self.stem}.csv", Path(out) / f"{self.stem}.md"
        self.budget, self.title, self.extra, self.notes = budget, title, list(extra), list(notes)
        self.command = command
        self.rows: list[dict] = []
        self.sha = git_sha()
        self._previous = self._read_previous()
        self._foreign: dict = {}  # finished rows another process wrote since, by (row id, run id)
        self._folders: dict[str, Path] = {}

    def _read_previous(self) -> dict:
        """The finished rows of the previous CSV by (row id, run id); {} when there is none or it is
        empty (a warning says so)."""
        if not self.csv.is_file():
            return {}
        try:
            frame = pd.read_csv(self.csv, dtype=str, keep_default_na=False)
        except pd.errors.EmptyDataError:
            warnings.warn(f"{self.csv} is empty: treating it as no previous results", stacklevel=2)
            return {}
        if not set(KEYS) <= set(frame.columns):
            return {}
        return {(r["row id"], r["run id"]): r for r in frame.to_dict("records") if r["status"] == DONE}

    def track(self, run_id: str, folder: Path) -> None:
        """Rows added or reused under run_id are measured from the run folder `folder`."""
        self._folders[run_id] = Path(folder)

    def _stamp(self, run_id: str) -> str:
        folder = self._folders.get(run_id)
        return "" if folder is None else run_stamp(folder)

    def finished(self, row_id: str, run_id: str) -> Optional[dict]:
        """The previous files' finished row for this id and run settings, measured from the run now
        in the tracked folder of run_id (same run stamp); else None."""
        previous = self._previous.get((row_id, run_id))
        stamp = self._stamp(run_id)
        if previous is None or not stamp or previous.get("run stamp", "") != stamp:
            return None
        return previous

    def reuse(self, previous: dict) -> dict:
        """Add a finished row of the previous files (from `finished`), its date marked reused."""
        when = previous.get("measured", "").removesuffix(REUSED) or "unknown date"
        if REUSED_NOTE not in self.notes:
            self.notes.append(REUSED_NOTE)
        return self.keep({**previous, "measured": when + REUSED})

    def add(self, row_id: str, run_id: str, *, row: str, paper: Optional[Paper], ours: Ours,
            epochs="", wall="", images="", device="", **extra) -> dict:
        """Append a row (cells formatted here) and rewrite the files; extra: the script's columns."""
        if paper is not None and not isinstance(paper, Paper):
            raise TypeError(f"paper value must be a Paper (a number printed in the paper) or None, "
                            f"got {type(paper).__name__}")
        if not isinstance(ours, (Measured, NotRun, Quoted)):
            raise TypeError(f"ours must be Measured (measured here), NotRun or QUOTED, got {type(ours).__name__}: "
                            f"a paper number never goes in the ours column")
        unknown = set(extra) - set(self.extra)
        if unknown:
            raise ValueError(f"unknown extra columns {sorted(unknown)}; this table has {self.extra}")
        status = DONE if isinstance(ours, Measured) else QUOTE if isinstance(ours, Quoted) else "not run"
        cells = {"row": row, "paper value": "" if paper is None else str(paper), "ours": str(ours),
                 "difference": difference(paper, ours), "epochs": epochs, "wall time": wall, "images/s": images,
                 "device": device, "budget": self.budget.tag if not isinstance(ours, Quoted) else "",
                 "git sha": self.sha if isinstance(ours, Measured) else "",
                 "measured": _now() if isinstance(ours, Measured) else "",
                 **{c: extra.get(c, "") for c in self.extra}, "row id": row_id, "run id": run_id,
                 "run stamp": self._stamp(run_id) if isinstance(ours, Measured) else "", "status": status}
        return self.keep(cells)

    def keep(self, cells: dict) -> dict:
        """Append an already formatted row (a finished row of the previous files) and rewrite the files."""
        self.rows.append({c: str(cells.get(c, "")) for c in COLUMNS + self.extra + KEYS})
        self.write()
        return self.rows[-1]

    def frame(self, pending: bool = False) -> pd.DataFrame:
        """The rows added so far; pending: then the previous files' finished rows not added again;
        then the finished rows other processes wrote meanwhile (see the class docstring)."""
        added = {r["row id"] for r in self.rows}
        rest = [r for r in self._previous.values() if r["row id"] not in added] if pending else []
        seen = added | {r["row id"] for r in rest}
        foreign = [r for r in self._foreign.values() if r["row id"] not in seen]
        return pd.DataFrame(self.rows + rest + foreign, columns=COLUMNS + self.extra + KEYS)

    def markdown(self, columns: Optional[list[str]] = None, pending: bool = False) -> str:
        """The table as markdown: `columns`, or all but the CSV-only key columns."""
        return self.frame(pending)[columns or COLUMNS + self.extra].to_markdown(index=False)

    def close(self) -> None:
        """Write the files with exactly the rows added (previous rows not reused are dropped)."""
        self.write(pending=False)

    def write(self, pending: bool = True) -> None:
        """Rewrite the CSV and the markdown (on torchrun rank 0 only); see the class docstring."""
        if not is_main():
            return
        with _folder_lock(self.csv.parent):
            with warnings.catch_warnings():  # an empty file was reported when the table started
                warnings.simplefilter("ignore")
                now = self._read_previous()
            self._foreign.update({k: r for k, r in now.items() if self._previous.get(k) != r and
                                  not any(r == mine for mine in self.rows)})
            write_atomic(self.csv, self.frame(pending).to_csv(index=False))
            when = _now()
            lines = [f"# {self.title}", "", f"**Budget `{self.budget.tag}`**: {self.budget.description}.", "",
                     self.markdown(pending=pending), "", *[f"- {n}" for n in self.notes], "",
                     f"Written {when} by `{self.command}` at git {self.sha}."]
            write_atomic(self.md, "\n".join(lines) + "\n")
