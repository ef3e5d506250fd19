"""Messages go through ``logging`` (one ``logger = logging.getLogger(__name__)`` per module); this sets where.

``configure_logging`` gives the ``rome`` logger one handler: INFO and up, one plain line per message,
on the *current* ``sys.stderr`` (so redirections and captured streams see it). The package calls it
on import, so a stage run from Python reports like one run from the CLI; the CLI calls it again
(idempotent). Embedders who route logs elsewhere remove it: ``logging.getLogger("rome").handlers.clear()``.
Progress bars (tqdm) write to stderr themselves; stdout stays for results (the artifact folder).
"""

from __future__ import annotations

import contextlib
import logging
import sys

FORMAT = "%(message)s"  # messages name their stage ("search: ..."), as they did as prints


class CurrentStderrHandler(logging.StreamHandler):
    """A stream handler bound to whatever ``sys.stderr`` is when a record is emitted."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201 - the base class's attribute, made dynamic
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # noqa: ANN001 - the base class assigns it once
        pass


def configure_logging(level: int = logging.INFO) -> logging.Logger:
    """The ``rome`` logger at ``level`` with exactly one stderr handler (no duplicate lines however often called)."""
    logger = logging.getLogger("rome")
    logger.setLevel(level)
    if not any(isinstance(h, CurrentStderrHandler) for h in logger.handlers):
        handler = CurrentStderrHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(handler)
    logger.propagate = False  # a root handler set up by an embedder would print every line twice
    return logger


class LineTrackingStream:
    """A text stream that remembers whether its last write ended a line.

    Progress bars write ``\\r``-terminated text to stderr; in a log file a message printed after
    one would share its line (``grep '^rome'`` would miss it). ``start_line`` writes the newline
    first when the last write left a partial line. Everything else is the wrapped stream's.
    """

    def __init__(self, stream) -> None:
        self._stream = stream
        self.partial = False

    def write(self, text: str) -> int:
        if text:
            self.partial = not text.endswith("\n")
        return self._stream.write(text)

    def start_line(self) -> None:
        if self.partial:
            self.write("\n")

    def __getattr__(self, name: str):  # delegates flush, isatty, fileno, encoding...
        return getattr(self._stream, name)


def close_progress_bars() -> None:
    """Close every open tqdm bar (an error leaves them open): their last text goes out now, not after."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        with contextlib.suppress(Exception):
            bar.close()
