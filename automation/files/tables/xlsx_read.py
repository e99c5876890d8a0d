"""Excel workbooks (.xlsx, .xlsm) → a `Table`, with openpyxl in streaming, values-only mode.

`read_only=True` streams rows instead of building every cell object (a 200,000-row sheet stays
within tens of MB), and `data_only=True` gives formula *results* as Excel last saved them. A
workbook written by a program that never calculated it has no saved results: those cells are
empty. Dates arrive as datetimes; a column whose times are all midnight becomes a date column.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

from openpyxl import load_workbook
from openpyxl.workbook.workbook import Workbook

from automation.files.tables.errors import TableError, TableTooLargeError, UnreadableTableError
from automation.files.tables.infer import RawRow, build_table, is_blank, split_header
from automation.files.tables.model import Table


def read_xlsx(data: bytes, *, label: str, sheet: str | None, max_rows: int) -> Table:
    """The table on `sheet` (the first worksheet when None) of the workbook in `data`.

    Raises:
        UnreadableTableError: not a workbook openpyxl can read, or no such sheet (the error lists
            the sheet names).
        TableTooLargeError: more than `max_rows` data rows.
    """
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (
        Exception
    ) as exc:  # openpyxl lets zipfile/XML/KeyError/ValueError… escape: all mean "corrupt"
        raise UnreadableTableError(
            f"{label} is not a readable .xlsx workbook ({type(exc).__name__}); open it in Excel "
            "or LibreOffice and save it again as .xlsx, or export the sheet as CSV"
        ) from exc
    try:
        names = [ws.title for ws in workbook.worksheets]
        chosen = _pick_sheet(names, sheet, label=label)
        rows = list(_rows(workbook, chosen, label=label, max_rows=max_rows))
    except TableError:
        raise
    except Exception as exc:  # rows are parsed lazily, so corruption can surface here too
        raise UnreadableTableError(
            f"{label} is damaged ({type(exc).__name__}: {exc}); open it in Excel or LibreOffice "
            "and save it again as .xlsx, or export the sheet as CSV"
        ) from exc
    finally:
        workbook.close()
    title, header, body = split_header(rows, label=f"sheet {chosen!r} of {label}")
    if len(body) > max_rows:
        raise _too_large(label, chosen, max_rows)
    return build_table(header, body, title=title, sheet=chosen, sheets=tuple(names))


def _pick_sheet(names: list[str], wanted: str | None, *, label: str) -> str:
    if not names:
        raise UnreadableTableError(f"{label} has no worksheets (only charts?); export it as CSV")
    if wanted is None:
        return names[0]
    if wanted in names:
        return wanted
    loose = [n for n in names if n.strip().casefold() == wanted.strip().casefold()]
    if len(loose) == 1:
        return loose[0]
    listed = ", ".join(repr(n) for n in names)
    raise UnreadableTableError(f"{label} has no sheet {wanted!r}; its sheets are {listed}")


def _rows(workbook: Workbook, sheet: str, *, label: str, max_rows: int) -> Iterator[RawRow]:
    """Non-blank rows without trailing empty cells (sheets formatted out to column XFD would
    otherwise give 16,384 cells a row)."""
    count = 0
    for row in workbook[sheet].iter_rows(values_only=True):
        end = len(row)
        while end and is_blank(row[end - 1]):
            end -= 1
        if end == 0:
            continue
        count += 1
        if count > max_rows + 2:  # + header and a possible title row
            raise _too_large(label, sheet, max_rows)
        yield row[:end]


def _too_large(label: str, sheet: str, max_rows: int) -> TableTooLargeError:
    return TableTooLargeError(
        f"sheet {sheet!r} of {label} has more than {max_rows:,} rows; filter or split it "
        "before sending"
    )
