"""Stopping a run on SIGINT (Ctrl-C), SIGTERM (a scheduler's stop) or SIGHUP (a closed terminal or
session) at the next step boundary.

While a run trains, `Signals` replaces the handlers of these signals with one that only records the
signal; the training loop polls `requested` between steps (all ranks agree through a collective),
writes a checkpoint from which --resume continues, and raises Interrupted. A second signal while
the first is being honoured raises Interrupted at once. While a run file is being written
(`Signals.writing()`), every signal is only recorded and acted on once the write is complete: an
exception raised inside torch.save's writer leaves it failing with an unrelated error instead of
the stop. While the process waits where Python cannot interrupt it (joining the process group:
torch's store client waits inside C++, and a Python handler would run only when that wait ends,
up to $SNN_DIST_TIMEOUT later), `Signals.at_once()` ends it at once from a watcher thread. The
previous handlers come back when the run ends.

Data-loader workers run in process groups of their own (snn.data.loader's worker_init_fn): a
signal sent to the run's process group (a scheduler, `timeout`, torchrun's agent) reaches the
main process only, and it alone decides how the run stops.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Callable, Optional

from .. import exits

SIGNALS = exits.STOP_SIGNALS


class Interrupted(KeyboardInterrupt):
    """The run stopped on a signal. signum: the signal; exit_code: exits.signalled(signum); the
    message says what was saved and how to continue. A KeyboardInterrupt, so code that handles
    Ctrl-C around snn.train.run keeps working."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum
        self.exit_code = exits.signalled(signum)

    def __str__(self) -> str:
        return self.args[0]


def name(signum: int) -> str:
    return signal.Signals(signum).name


class Signals:
    """Context manager: record SIGINT / SIGTERM while a run trains. signum: the first signal
    received (None so far). Outside the main thread (where Python cannot set handlers) it does
    nothing and the signals keep their usual effect."""

    def __init__(self):
        self.signum: Optional[int] = None
        # When set, a signal stops the run at once with this text after "stopped on SIGx " (while
        # nothing can be saved: set-up, or after the last epoch); None: record it for the loop.
        self.immediate: Optional[str] = None
        self._previous: dict = {}
        self._writing = 0  # depth of writing() blocks
        self._deferred: list[int] = []  # signals received during a write, acted on after it
        self._watched = False  # inside at_once(): the watcher thread acts, the handler does nothing

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame) -> None:
        if self._watched:
            return
        if self._writing:
            self._deferred.append(signum)
            return
        self._act(signum)

    def _act(self, signum: int) -> None:
        if self.immediate is not None:
            raise Interrupted(signum, f"stopped on {name(signum)} {self.immediate}")
        if self.signum is not None:  # a second signal: stop now
            raise Interrupted(signum, f"stopped at once on a second {name(signum)}; the last complete checkpoint "
                                      f"is kept")
        self.signum = signum

    @contextlib.contextmanager
    def writing(self):
        """For the with-block (a run file being written), record signals without acting on them; act
        on them when it ends without an error (an error of the write is what the run reports)."""
        self._writing += 1
        try:
            yield
        finally:
            self._writing -= 1
        if not self._writing:
            deferred, self._deferred = self._deferred, []
            for signum in deferred:
                if self.immediate is None and self.signum is not None:
                    continue  # a stop is due already, right after this write: the loop acts on it
                self._act(signum)

    @contextlib.contextmanager
    def at_once(self, when: str, report: Optional[Callable[[BaseException], object]] = None):
        """For the with-block, in which nothing needs saving, a stop signal ends the process at once,
        even while the main thread waits inside C++ code: a watcher thread, woken through
        signal.set_wakeup_fd, hands Interrupted(signum, "stopped on SIGx " + when) to report (without
        one it prints "interrupted: <message>" on stderr) and exits with its code, 128 + signum. The
        main thread does not receive the signals meanwhile, so its waits are not interrupted.
        Outside the main thread, or outside `with Signals()`, the signals keep their usual effect."""
        if not self._previous:
            yield
            return
        readable, writable = os.pipe()
        os.set_blocking(writable, False)  # set_wakeup_fd requires it: the C handler must never block
        watcher = threading.Thread(target=_exit_on_signal, args=(readable, when, report), daemon=True,
                                   name="stop-signal watcher")
        watcher.start()
        previous_fd = signal.set_wakeup_fd(writable, warn_on_full_buffer=False)
        self._watched = True
        # Blocked in this thread (and the threads it starts meanwhile), the signals go to a thread
        # that is not waiting in the C++ code: a signal there interrupts its system call (EINTR),
        # which torch's store client reports with a warning and a C++ stack before the watcher ends
        # the process.
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
            self._watched = False
            signal.set_wakeup_fd(previous_fd)
            os.close(writable)  # the watcher reads end-of-file and returns
            watcher.join()
            os.close(readable)

    def __enter__(self) -> "Signals":
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()



def _exit_on_signal(readable: int, when: str, report: Optional[Callable[[BaseException], object]]) -> None:
    """Signals.at_once's watcher: read signal numbers from the wakeup pipe until it closes; on a
    stop signal, report it and end the process with its exit code (other signals with Python
    handlers also wake the pipe: they are left to those handlers)."""
    while True:
        try:
            received = os.read(readable, 1)
        except InterruptedError:
            continue
        if not received:
            return
        signum = received[0]
        if signum not in SIGNALS:
            continue
        error = Interrupted(signum, f"stopped on {name(signum)} {when}")
        try:
            if report is not None:
                report(error)
            else:
                exits.say(f"interrupted: {error}")
        finally:
            os._exit(error.exit_code)  # the main thread is blocked where no exception reaches it
