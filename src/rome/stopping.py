"""SIGTERM / SIGINT: stop a run cleanly, say in one line how far it got, exit 128 + the signal.

A scheduler's SIGTERM (Slurm at the time limit, preemption) or a user's Ctrl-C becomes ``Stopped``,
raised in the main thread between two Python operations: temporary folders are removed on the way
out (``rome.artifacts``), the checkpoint of the last finished epoch stays, and the CLI prints
``rome <stage>: stopped by SIGTERM after epoch e/E; rerun the same command to resume``. The loops
report each epoch whose checkpoint is saved with ``reached`` (the e of that line).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_reached: dict[str, int] = {}


class Stopped(BaseException):
    """Not an Exception: no ``except Exception`` on the way may swallow a stop request."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def reached(epoch: int, epochs: int) -> None:
    """``epoch`` of ``epochs`` is saved: a stop from now on resumes after it."""
    _reached.update(epoch=epoch, epochs=epochs)


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Stopped(signum)


@contextlib.contextmanager
def on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise ``Stopped`` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _reached.clear()
    # A signal ignored when the block starts stays ignored: a shell starts a background job (`&`) with
    # SIGINT ignored so that Ctrl-C in the terminal does not stop it, and nohup-like launchers rely on it.
    previous = {s: signal.signal(s, _raise) for s in SIGNALS if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def message(stage: str, signum: int) -> str:
    """The one line: which signal, the last saved epoch, and how to go on."""
    name = signal.Signals(signum).name
    if "epochs" in _reached:
        where = f" after epoch {_reached['epoch']}/{_reached['epochs']}; rerun the same command to resume"
    else:
        where = "; nothing was written, rerun the same command"
    return f"rome {stage}: stopped by {name}{where}"


def exit_code(signum: int) -> int:
    """128 + the signal number, as a shell reports a process killed by it (143 SIGTERM, 130 SIGINT)."""
    return 128 + signum
