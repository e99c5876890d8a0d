"""Tables as short text for the model and for chat: `describe` (the shape) and `render_text`.

Both are bounded whatever the table's size or width, because every character goes into the
model's context: long cells are cut with "…", wide tables show their first columns, long ones
their first rows with a "… N more rows" line.
"""

from __future__ import annotations

from automation.files.tables.model import Column, Table
from automation.files.tables.text import clip, format_in

CELL_WIDTH = 30
"""Display cells a value may take in a text table before it is cut."""

DESCRIBE_CHARS = 1500
SAMPLE_ROWS = 5


def render_text(table: Table, max_chars: int = 3000) -> str:
    """`table` as pipe-separated lines (header first) of at most `max_chars` characters.

    When a row would be longer than a third of `max_chars`, only the first columns are shown
    and a note says how many; rows that do not fit are counted in a final "… N more rows".
    """
    line_budget = max(60, max_chars // 3)
    shown = 0
    header = ""
    for count in range(1, len(table.columns) + 1):
        candidate = " | ".join(clip(c.name, CELL_WIDTH) for c in table.columns[:count])
        if count > 1 and len(candidate) > line_budget:
            break
        shown, header = count, candidate
    lines = [header]
    if shown < len(table.columns):
        lines.insert(0, f"(first {shown} of {len(table.columns)} columns)")
    if not table.rows:
        lines.append("(no rows)")
    used = sum(len(line) + 1 for line in lines)
    reserve = len(f"… {len(table.rows):,} more rows")
    for n, row in enumerate(table.rows):
        line = " | ".join(
            clip(format_in(c, v), CELL_WIDTH)
            for c, v in zip(table.columns[:shown], row, strict=False)
        )
        last = n == len(table.rows) - 1
        if used + len(line) + 1 > max_chars - (0 if last else reserve):
            lines.append(f"… {len(table.rows) - n:,} more rows")
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)[:max_chars]


def describe(table: Table, max_chars: int = DESCRIBE_CHARS) -> str:
    """What the model needs to write a query: where the table came from, its size, each
    column's name, type and number of empty cells, and the first rows, within `max_chars`."""
    lines: list[str] = []
    if table.sheet is not None:
        others = [s for s in table.sheets if s != table.sheet]
        more = f" (other sheets: {', '.join(clip(s, 30) for s in others[:10])})" if others else ""
        lines.append(f"sheet {clip(table.sheet, 40)!r}{more}")
    if table.title:
        lines.append(f"title: {clip(table.title, 80)}")
    lines.append(f"{len(table.rows):,} rows × {len(table.columns)} columns:")
    used = sum(len(line) + 1 for line in lines)
    columns = _column_lines(table, budget=max_chars * 2 // 3 - used)  # the rest: sample rows
    lines += columns
    used += sum(len(line) + 1 for line in columns)
    if table.rows:
        sample = Table(columns=table.columns, rows=table.rows[:SAMPLE_ROWS])
        lines.append(f"first {len(sample.rows)} rows:")
        remaining = max_chars - used - len(lines[-1]) - 2
        if remaining > 80:
            lines.append(render_text(sample, max_chars=remaining))
    return "\n".join(lines)[:max_chars]


def _column_lines(table: Table, *, budget: int) -> list[str]:
    """One line per column with its empty count when that fits in `budget`; otherwise as many
    `name: type` entries as fit, several to a line, because for a wide table the names are
    what the model needs most."""
    detailed = []
    for n, column in enumerate(table.columns):
        empty = sum(1 for row in table.rows if row[n] is None)
        line = f"- {clip(column.name, 40)}: {_type_name(column)}"
        detailed.append(line + (f", {empty:,} empty" if empty else ""))
    if sum(len(line) + 1 for line in detailed) <= budget:
        return detailed
    entries = [f"{clip(c.name, 40)}: {_type_name(c)}" for c in table.columns]
    shown: list[str] = []
    used, reserve = 0, len(f"; … {len(entries)} more columns")
    for n, entry in enumerate(entries):
        last = n == len(entries) - 1
        if used + len(entry) + 2 > budget - (0 if last else reserve):
            return ["; ".join(shown) + f"; … {len(entries) - n} more columns"]
        shown.append(entry)
        used += len(entry) + 2
    return ["; ".join(shown)]


def _type_name(column: Column) -> str:
    if column.number_format is not None and "%" in column.number_format:
        return "percent"
    return column.type
