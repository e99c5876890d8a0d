"""A `Table` → CSV bytes that Excel, WPS and scripts all read correctly."""

from __future__ import annotations

import codecs
import csv
import io

from automation.files.tables.model import Table
from automation.files.tables.text import format_in


def write_csv(table: Table) -> bytes:
    """The table as comma-separated UTF-8 *with* a byte-order mark.

    Why the BOM: Excel opens a CSV without one in the system's legacy code page (GBK on Chinese
    Windows, Windows-1252 in the West), which turns every Chinese character into mojibake; the
    three BOM bytes make it read UTF-8. Python's `utf-8-sig`, `read_table` and most tools skip
    them. Dates are ISO, decimals keep their places, and percentage columns are written as
    `12.5%` so Excel shows them as percentages again. Leading zeros (`007`) survive in the file,
    but Excel drops them on opening a CSV: send .xlsx when that matters.
    """
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.names)
    for row in table.rows:
        writer.writerow(
            [format_in(column, value) for value, column in zip(row, table.columns, strict=True)]
        )
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")
