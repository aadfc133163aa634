"""The frame of a table script: parse the shared flags, pick the budget, walk the rows (reusing
finished ones), print the table."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Callable, Optional

from snn.files import make_folder

from .budget import Budget, choose, parser, select
from .table import ResultsTable


def command(script: str, argv: Optional[list[str]]) -> str:
    """The command line that reproduces this run, for the markdown footer."""
    return " ".join(["python", f"reproduce/{script}.py", *(shlex.quote(a) for a in (argv or []))])


def start(script: str, description: str, argv: Optional[list[str]], ids: list[str],
          datasets: tuple[str, ...], variation: bool = False):
    """Parse argv -> (args, budget, selected ids), printing the budget and why; None after --list.
    variation: the script takes --seeds (see _common/variation.py)."""
    p = parser(description, variation)
    args = p.parse_args(argv)
    for flag in ("out", "runs"):
        folder = getattr(args, flag)
        existing = next(f for f in (folder, *folder.parents) if f.exists())
        if not existing.is_dir():
            p.error(f"--{flag} {folder}: {existing} is a file, not a folder; choose another --{flag}")
    if variation and args.seeds < 0:
        raise SystemExit(f"--seeds must be >= 0, got {args.seeds}")
    if args.list:
        print("\n".join(ids))
        return None
    budget, why = choose(args, datasets)
    stem = f"{script}-{budget.tag}"
    make_folder(args.out, "--out", files=tuple(stem + s for s in (".csv", ".md", ".png", "-data.csv")))
    make_folder(args.runs, "--runs", keep=False)  # made only when a row trains
    print(f"{script}: budget {budget.tag} ({why}): {budget.description}", flush=True)
    return args, budget, select(ids, args.rows)


def walk(rows: list, selected: list[str], table: ResultsTable, run_dir: Callable[[object], Path],
         compute: Callable[[object, str], None]) -> None:
    """For each row (an object with an .id) in order: reuse the finished row of the previous files
    with the same run id (the run folder's name) when it was measured from the run that folder
    holds now (ResultsTable.finished), marked reused; else compute(row, run id) when selected (it
    adds the row), else skip it. Rows finished elsewhere (another machine's results, a folder
    trained again since, or by another row of this invocation) are measured again here."""
    for row in rows:
        folder = run_dir(row)
        key = folder.name
        table.track(key, folder)
        previous = table.finished(row.id, key)
        if previous is not None:
            table.reuse(previous)
            print(f"  {row.id}: finished in {table.csv.name} at git {previous['git sha']}, reused", flush=True)
        elif row.id in selected:
            compute(row, key)


def finish(table: ResultsTable, columns: list[str], figures: tuple[Path, ...] = ()) -> int:
    """Close the table, print its `columns` (the files hold them all) and where it went; -> 0."""
    table.close()
    print()
    print(table.markdown(columns))
    print()
    print("\n".join(f"- {n}" for n in table.notes))
    print(f"\nwritten: {', '.join(str(p) for p in (table.csv, table.md, *figures))}")
    return 0


def budget_note(budget: Budget, events: bool = False) -> str:
    """The first note of a table: what its ours column was measured on."""
    if budget.reduced:
        return (f"{budget.tag.upper()} budget: the ours column holds measurements on {budget.static_data}"
                + (" (synthetic events for the CIFAR10-DVS row)" if events else "")
                + ", NOT on the paper's datasets; they check the code path and say nothing about the paper's "
                  "numbers, so no difference is computed.")
    return "paper budget: ours ran on the paper's dataset; difference = ours - paper in percentage points."
