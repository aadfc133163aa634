"""The exit codes of the project's command lines (`python -m snn.train`, `python -m snn.data`).

Each exception a command line reports in one line carries its code as the class attribute
`exit_code`, taken from here; what each code means is the table at the end of
`python -m snn.train --help` (snn/train/cli.py's epilog).
"""

from __future__ import annotations

import functools
import signal
import sys
from typing import Callable, Optional

DONE = 0
FAILED = 1  # the run could not finish its work: a file write, or another process of the run
USAGE = 2  # the user can fix it: settings, data, a checkpoint, the run folder (argparse uses 2 too)
DIVERGED = 3
SIGNALLED = 128  # stopped by signal N: SIGNALLED + N, the shell's convention
# The signals a run stops on cleanly (129, 130, 143): a closed session, Ctrl-C, a scheduler's stop.
STOP_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)


def signalled(signum: int) -> int:
    """The code of a process stopped by signal signum (129 SIGHUP, 130 SIGINT, 143 SIGTERM)."""
    return SIGNALLED + signum


def of(error: BaseException) -> Optional[int]:
    """error's exit code; None for an exception no command line reports (a bug: keep its traceback)."""
    return getattr(error, "exit_code", None)


def say(line: str) -> None:
    """line and its newline on stderr in one write, flushed: processes that share stderr (torchrun's
    ranks, a terminal) then never splice their lines into each other (print writes the newline
    separately)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def one_line_errors(main: Callable[[Optional[list[str]]], int]) -> Callable[[Optional[list[str]]], int]:
    """A command line's main, saying one line `error: ...` and returning the error's exit code instead
    of a traceback for a failure the user can act on: an exception with an exit code (a folder that
    cannot be used, a file that cannot be written, a dataset missing), or the file system refusing
    a path (any other OSError: USAGE). Anything else is a bug and keeps its traceback."""

    @functools.wraps(main)
    def wrapped(argv: Optional[list[str]] = None) -> int:
        try:
            return main(argv)
        except Exception as e:
            code = of(e)
            if code is None and isinstance(e, OSError):
                code = USAGE
            if code is None:
                raise
            say(f"error: {e}")
            return code

    return wrapped
