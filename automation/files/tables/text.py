"""Values → text, the same way everywhere (text tables for the model, CSV cells, column widths).

Dates are ISO (`2024-03-05`, `2024-03-05 14:30`), decimals keep their written places (`1200.50`),
floats show at most 12 significant digits (an average of 7/3 is `2.33333333333`, not 17 digits of
binary noise), yes/no values are `true`/`false`, and `format_in` shows percentage columns as
`12.5%` again.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from decimal import Decimal

from automation.files.tables.model import Cell, Column


def format_cell(value: Cell) -> str:
    """`value` as text; None is the empty string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.second == 0 and value.microsecond == 0:
            return f"{value:%Y-%m-%d %H:%M}"
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return format(value, ".12g")
    return str(value)


def format_in(column: Column, value: Cell) -> str:
    """`value` as text the way its column shows it: percentage columns as `12.5%`, not 0.125."""
    if column.number_format is not None and column.number_format.endswith("%"):
        if isinstance(value, Decimal):
            return format_cell((value * 100).normalize()) + "%"
        if isinstance(value, float):
            return format_cell(value * 100) + "%"
    return format_cell(value)


def display_width(text: str) -> int:
    """How many monospace cells `text` takes: CJK and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def clip(text: str, width: int) -> str:
    """`text` on one line, cut to at most `width` display cells with a trailing "…"."""
    flat = " ".join(text.split())
    if display_width(flat) <= width:
        return flat
    out, used = [], 1
    for ch in flat:
        w = display_width(ch)
        if used + w > width:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"
