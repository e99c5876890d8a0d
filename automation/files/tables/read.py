"""Bytes of a file the user sent → a `Table`, whatever spreadsheet format it is in.

The content decides the format, the file name only breaks ties: a zip container is read as a
workbook even when it is called `.csv`, and a "`.xls`" that is really tab-separated text (many web
systems export that) is read as text. Formats that cannot be read get an error naming the
conversion that fixes it.
"""

from __future__ import annotations

from pathlib import PurePath

from automation.files.tables.csv_read import read_delimited
from automation.files.tables.errors import TableTooLargeError, UnreadableTableError
from automation.files.tables.model import Table
from automation.files.tables.xlsx_read import read_xlsx

MAX_BYTES = 50 * 1024 * 1024
"""Largest file read (50 MB): larger ones take too long and too much memory to be worth it."""

MAX_ROWS = 200_000
"""Default row limit; a query over more than this belongs in a database, not a chat."""

_SAVE_AS = "open it in Excel, WPS or LibreOffice and save it as .xlsx or CSV"
_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_NOT_TABLES = {
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "a gzip archive",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
}
_NOT_XLSX_ZIPS = {
    ".ods": "an OpenDocument spreadsheet (.ods)",
    ".numbers": "an Apple Numbers document",
    ".docx": "a Word document",
    ".pptx": "a PowerPoint document",
    ".zip": "a zip archive",
}


def read_table(
    data: bytes, *, filename: str, sheet: str | None = None, max_rows: int = MAX_ROWS
) -> Table:
    """The table in `data`: CSV/TSV/other delimited text, or a sheet of an .xlsx workbook.

    `sheet` picks a worksheet by name (the first one when None; ignored for text files).

    Raises:
        TableTooLargeError: more than 50 MB, or more than `max_rows` data rows.
        UnreadableTableError: old .xls, .ods, corrupt workbook, binary data, unknown encoding,
            empty file, or no such sheet; the message says how to convert the file.
    """
    label = PurePath(filename).name or "the file"
    suffix = PurePath(filename).suffix.casefold()
    if len(data) > MAX_BYTES:
        raise TableTooLargeError(
            f"{label} is {len(data) / 1024 / 1024:.1f} MB; tables up to "
            f"{MAX_BYTES // 1024 // 1024} MB can be read: remove columns or rows you do not "
            "need, or split it"
        )
    if not data or data.isspace():
        raise UnreadableTableError(f"{label} is empty")
    if data.startswith(_ZIP):
        if suffix in _NOT_XLSX_ZIPS:
            raise UnreadableTableError(f"{label} is {_NOT_XLSX_ZIPS[suffix]}; {_SAVE_AS}")
        return read_xlsx(data, label=label, sheet=sheet, max_rows=max_rows)
    if data.startswith(_OLE):
        raise UnreadableTableError(
            f"{label} is an old-format Excel file (.xls, Excel 97-2003) or a password-protected "
            f"workbook, which cannot be read; {_SAVE_AS} (without a password)"
        )
    for magic, what in _NOT_TABLES.items():
        if data.startswith(magic):
            raise UnreadableTableError(f"{label} is {what}, not a table; send it as .xlsx or CSV")
    if suffix in (".xlsx", ".xlsm", ".xltx", ".xltm"):
        raise UnreadableTableError(f"{label} is damaged (not a zip container); {_SAVE_AS}")
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html", b"<table", b"<?xml")):
        raise UnreadableTableError(
            f"{label} is a web page or XML file saved with a spreadsheet name; {_SAVE_AS}"
        )
    prefer_tab = suffix in (".tsv", ".tab", ".xls")  # text ".xls" exports are usually tab-separated
    return read_delimited(data, label=label, prefer_tab=prefer_tab, max_rows=max_rows)
