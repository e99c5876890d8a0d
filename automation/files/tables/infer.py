"""Raw cells → a typed `Table`: unique header names, an optional title row, one type per column.

A column gets the first type that fits *every* non-empty cell, tried in this order: yes/no
(`bool`), number (`int`, else `decimal`, else `float` when any value needs one), date/datetime,
and text otherwise. One stray word makes the whole column text, so nothing is silently dropped;
only the placeholders in `parse.NULL_TOKENS` (`-`, `N/A`, `#DIV/0!`…) become empty in a column
that is otherwise numbers or dates. Text is stripped of surrounding spaces; blank cells are None.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from automation.files.tables.errors import UnreadableTableError
from automation.files.tables.model import Cell, Column, ColumnType, Row, Table
from automation.files.tables.parse import (
    is_null_token,
    number_from_float,
    parse_bool,
    parse_number,
    parse_temporal,
)
from automation.files.tables.text import format_cell

RawRow = Sequence[object]
_Inferred = tuple[Column, list[Cell]]


def is_blank(value: object) -> bool:
    """Whether a raw cell holds nothing (None or only whitespace)."""
    return value is None or (isinstance(value, str) and not value.strip())


def split_header(rows: list[RawRow], *, label: str) -> tuple[str | None, RawRow, list[RawRow]]:
    """(title, header, body) of non-blank `rows`.

    A first row with a single filled cell above a row with several is a report title ("2024年
    销售明细"), not the header; it is returned separately so the real header is found.

    Raises:
        UnreadableTableError: there are no rows at all.
    """
    if not rows:
        raise UnreadableTableError(f"{label} is empty: there is not even a header row")
    filled = [sum(not is_blank(v) for v in row) for row in rows[:2]]
    if len(rows) >= 2 and filled[0] == 1 and filled[1] >= 2:
        title = next(_text(v) for v in rows[0] if not is_blank(v))
        return title, rows[1], rows[2:]
    return None, rows[0], rows[1:]


def unique_names(header: RawRow) -> list[str]:
    """Header cells as names: blank ones become `col_<position>`, repeats get `_2`, `_3`…
    (case-insensitively, so a query naming a column never matches two)."""
    names: list[str] = []
    seen: set[str] = set()
    for position, value in enumerate(header, 1):
        base = " ".join(_text(value).split()) or f"col_{position}"
        name, n = base, 2
        while name.casefold() in seen:
            name, n = f"{base}_{n}", n + 1
        seen.add(name.casefold())
        names.append(name)
    return names


def build_table(
    header: RawRow,
    body: Sequence[RawRow],
    *,
    title: str | None = None,
    sheet: str | None = None,
    sheets: tuple[str, ...] = (),
) -> Table:
    """A typed table from a header and raw rows (str, numbers, dates, bools or None).

    Rows shorter than the widest are padded with empty cells; extra cells beyond the header
    get `col_<position>` names. Columns with neither a header nor any value (the formatted but
    empty columns workbooks often carry) are dropped.
    """
    width = max([len(header), *(len(r) for r in body)])
    names = unique_names([*header, *[None] * (width - len(header))])
    padded = [tuple(r) + (None,) * (width - len(r)) for r in body]
    raw_columns: list[tuple[object, ...]] = list(zip(*padded, strict=True)) if padded else []
    if not raw_columns:
        raw_columns = [()] * width
    columns: list[Column] = []
    values: list[list[Cell]] = []
    for position, (name, raw) in enumerate(zip(names, raw_columns, strict=True)):
        header_blank = position >= len(header) or is_blank(header[position])
        if header_blank and all(is_blank(v) for v in raw):
            continue
        column, cells = infer_column(name, [_clean(v) for v in raw])
        columns.append(column)
        values.append(cells)
    rows: list[Row] = list(zip(*values, strict=True)) if values else [() for _ in body]
    return Table(columns=tuple(columns), rows=rows, title=title, sheet=sheet, sheets=sheets)


def infer_column(name: str, values: list[object]) -> _Inferred:
    """The column type and typed cells for cleaned raw `values` (see the module docstring)."""
    if all(v is None for v in values):
        return Column(name=name, type="str"), [None] * len(values)
    attempts: tuple[Callable[[str, list[object]], _Inferred | None], ...] = (
        _as_bool,
        _as_number,
        _as_temporal,
    )
    for attempt in attempts:
        inferred = attempt(name, values)
        if inferred is not None:
            return inferred
    text: list[Cell] = [None if v is None else _text(v) for v in values]
    return Column(name=name, type="str"), text


def _as_bool(name: str, values: list[object]) -> _Inferred | None:
    out: list[Cell] = []
    for v in values:
        if v is None or isinstance(v, bool):
            out.append(v)
        elif isinstance(v, str) and (b := parse_bool(v)) is not None:
            out.append(b)
        elif isinstance(v, str) and is_null_token(v):
            out.append(None)
        else:
            return None
    return (Column(name=name, type="bool"), out) if any(v is not None for v in out) else None


def _as_number(name: str, values: list[object]) -> _Inferred | None:
    out: list[int | Decimal | float | None] = []
    grouped, percents, places, real = False, 0, 0, 0
    for v in values:
        if v is None:
            out.append(None)
            continue
        if isinstance(v, bool):
            return None
        if isinstance(v, int | Decimal):
            out.append(v)
        elif isinstance(v, float):
            out.append(number_from_float(v))
        elif isinstance(v, str) and (parsed := parse_number(v)) is not None:
            out.append(parsed.value)
            grouped |= parsed.grouped
            percents += parsed.percent
            places = max(places, parsed.places if parsed.percent else 0)
        elif isinstance(v, str) and is_null_token(v):
            out.append(None)
            continue
        else:
            return None
        real += 1
    if real == 0:
        return None
    kind: ColumnType = "int"
    if any(isinstance(v, float) for v in out):
        kind, out = "float", [None if v is None else float(v) for v in out]
    elif any(isinstance(v, Decimal) for v in out):
        kind, out = "decimal", [None if v is None else Decimal(v) for v in out]
    number_format = None
    if percents == real:
        number_format = "0." + "0" * places + "%" if places else "0%"
    elif grouped and kind == "int":
        number_format = "#,##0"
    return Column(name=name, type=kind, number_format=number_format), list(out)


def _as_temporal(name: str, values: list[object]) -> _Inferred | None:
    out: list[date | None] = []
    timed = False
    for v in values:
        if v is None or (isinstance(v, str) and is_null_token(v)):
            out.append(None)
            continue
        if isinstance(v, datetime):
            timed |= v.time() != time()  # Excel has no date type: midnight means "a date"
            out.append(v)
        elif isinstance(v, date):
            out.append(v)
        elif isinstance(v, str) and (parsed := parse_temporal(v)) is not None:
            timed |= isinstance(parsed, datetime)  # a time was written, even 00:00
            out.append(parsed)
        else:
            return None
    if all(v is None for v in out):
        return None
    if timed:
        cells: list[Cell] = [None if v is None else _as_datetime(v) for v in out]
        return Column(name=name, type="datetime"), cells
    dates: list[Cell] = [v.date() if isinstance(v, datetime) else v for v in out]
    return Column(name=name, type="date"), dates


def _as_datetime(value: date) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day)


def _clean(value: object) -> object:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, time | timedelta):
        return str(value)  # clock times and durations have no column type: keep them as text
    return value


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float):
        return format_cell(number_from_float(value))
    if isinstance(value, bool | int | Decimal | date):
        return format_cell(value)
    return str(value)
