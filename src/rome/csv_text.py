"""CSV as text for the artifacts (written atomically by ``rome.artifacts.write_text``) and CSV rows back."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
             lineterminator: str = "\n") -> str:
    """A header and one line per row (``\\n`` endings); ``columns`` default: every key, in first-seen order.

    Keys outside ``columns`` are left out, so one history row can feed several narrower tables.
    ``lineterminator="\\r\\n"`` matches files written by the csv module's defaults (timm's summary.csv).
    """
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator=lineterminator)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as dicts; no rows when the file does not exist."""
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
