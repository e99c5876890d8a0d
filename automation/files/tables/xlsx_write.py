"""A `Table` → a formatted .xlsx workbook the user can open and work with straight away.

Bold, shaded header with an auto-filter, frozen so it stays visible while scrolling; columns as
wide as their content (CJK characters count double, capped at 60); numbers and dates with real
number formats so Excel sums and sorts them; an optional bold title row above the header.
Written in openpyxl's streaming mode, so 200,000 rows do not need 200,000 rows of cell objects.
Text is always written as text: a cell starting with `=` from a user's CSV does not become a
formula in the recipient's Excel.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol, cast

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.cell.cell import Cell as XlCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.cell_range import MultiCellRange
from openpyxl.worksheet.dimensions import ColumnDimension, DimensionHolder
from openpyxl.worksheet.filters import AutoFilter

from automation.files.tables.errors import TableTooLargeError
from automation.files.tables.model import Cell, Column, Table
from automation.files.tables.text import display_width, format_cell

EXCEL_MAX_ROWS = 1_048_576
MAX_WIDTH = 60
MIN_WIDTH = 8
WIDTH_SAMPLE = 2000
"""Rows looked at to fit column widths; enough to see the typical longest value."""

_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill(fill_type="solid", start_color="FFDDEBF7", end_color="FFDDEBF7")
_TITLE_FONT = Font(bold=True, size=14)
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_TEXT_LIMIT = 32_767
"""Excel refuses longer cells."""


class _SheetLayout(Protocol):
    """What a streaming sheet has besides rows; types-openpyxl omits these attributes, which
    `WriteOnlyWorksheet` gets from `Worksheet._setup` at run time."""

    column_dimensions: DimensionHolder[str, ColumnDimension]
    auto_filter: AutoFilter
    merged_cells: MultiCellRange


def write_xlsx(table: Table, *, title: str | None = None, sheet_name: str = "Sheet1") -> bytes:
    """The bytes of an .xlsx workbook with `table` on one sheet (see the module docstring).

    Raises:
        TableTooLargeError: more rows than an Excel sheet holds (1,048,576).
    """
    first = 2 if title else 1  # the header's row
    if first + len(table.rows) > EXCEL_MAX_ROWS:
        raise TableTooLargeError(
            f"{len(table.rows):,} rows do not fit in an Excel sheet; filter them, or write CSV"
        )
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title(sheet_name))
    assert isinstance(sheet, WriteOnlyWorksheet)
    layout = cast(_SheetLayout, sheet)
    width = len(table.columns)
    last = get_column_letter(max(width, 1))
    # Everything that precedes the rows in the XML must be set before the first append.
    for n, fitted in enumerate(fit_widths(table), 1):
        layout.column_dimensions[get_column_letter(n)].width = fitted
    sheet.freeze_panes = f"A{first + 1}"
    if width:
        layout.auto_filter.ref = f"A{first}:{last}{first + len(table.rows)}"
    if title:
        cell = WriteOnlyCell(sheet, value=_text(title))
        cell.font = _TITLE_FONT
        sheet.append([cell])
        if width > 1:
            layout.merged_cells.add(f"A1:{last}1")
    sheet.append([_header_cell(sheet, c.name) for c in table.columns])
    formats = [
        number_format(c, [row[n] for row in table.rows]) for n, c in enumerate(table.columns)
    ]
    for row in table.rows:
        sheet.append([_cell(sheet, value, fmt) for value, fmt in zip(row, formats, strict=True)])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def sheet_title(name: str) -> str:
    """`name` as Excel accepts it: no `[]:*?/\\`, no edge apostrophes, at most 31 characters."""
    cleaned = " ".join(_SHEET_FORBIDDEN.sub(" ", name).split()).strip("'").strip()[:31]
    return cleaned or "Sheet1"


def number_format(column: Column, values: Sequence[Cell]) -> str | None:
    """The Excel number format for a column: the source's own (`0%`, `#,##0`) when it had one,
    else by type; decimals show as many places as the data has (2 to 6), dates are ISO."""
    if column.number_format:
        return column.number_format
    if column.type == "int":
        return "0"  # "General" turns 12+ digit numbers into 1.23457E+11
    if column.type == "float":
        return "#,##0.00##"
    if column.type == "decimal":
        places = max([_places(v) for v in values if isinstance(v, Decimal)] or [2])
        return "#,##0." + "0" * min(max(places, 2), 6)
    if column.type == "date":
        return "yyyy-mm-dd"
    if column.type == "datetime":
        seconds = any(isinstance(v, datetime) and v.second for v in values)
        return "yyyy-mm-dd hh:mm:ss" if seconds else "yyyy-mm-dd hh:mm"
    return None


def fit_widths(table: Table) -> list[float]:
    """Column widths in Excel's character units from the header and the first rows' text."""
    widths: list[float] = []
    sample = table.rows[:WIDTH_SAMPLE]
    for n, column in enumerate(table.columns):
        header = display_width(column.name) + 4  # bold text and the filter button
        longest = max((_shown_width(row[n]) for row in sample), default=0)
        widths.append(float(min(MAX_WIDTH, max(MIN_WIDTH, header, longest + 2))))
    return widths


def _shown_width(value: Cell) -> int:
    text = format_cell(value)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        text += "," * (len(text) // 3) + "00"  # thousands separators and padded places
    return max((display_width(line) for line in text.splitlines()), default=0)


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _header_cell(sheet: WriteOnlyWorksheet, name: str) -> XlCell:
    cell = WriteOnlyCell(sheet, value=_text(name))
    cell.data_type = "s"
    cell.font = _HEADER_FONT
    cell.fill = _HEADER_FILL
    cell.alignment = Alignment(vertical="center")
    return cell


def _cell(sheet: WriteOnlyWorksheet, value: Cell, fmt: str | None) -> object:
    if value is None:
        return None
    if isinstance(value, str):
        text = _text(value)
        if not text.startswith("="):
            return text
        cell = WriteOnlyCell(sheet, value=text)
        cell.data_type = "s"  # data, not a formula
        return cell
    if fmt is None:
        return value
    cell = WriteOnlyCell(sheet, value=value)  # type: ignore[arg-type]  # writes Decimal, date too
    cell.number_format = fmt
    return cell


def _text(value: str) -> str:
    """`value` without the control characters XML cannot carry, cut to Excel's cell limit."""
    if ILLEGAL_CHARACTERS_RE.search(value):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    return value[:_TEXT_LIMIT]
