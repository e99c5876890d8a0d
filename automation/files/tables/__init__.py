"""The table engine: read CSV/TSV/.xlsx bytes, query them, and write formatted .xlsx or CSV.

Pure functions over bytes (no database, no chat): `read_table` infers one type per column
(numbers, money, percentages, dates, yes/no, text; see `infer` and `parse`), `query` filters,
groups, aggregates, sorts and limits, `describe`/`render_text` give bounded text for the model,
and `write_xlsx`/`write_csv` produce files to send back. Errors are drawn in `errors`.
"""

from automation.files.tables.aggregate import AggFunc, Aggregate
from automation.files.tables.conditions import Condition, Op
from automation.files.tables.csv_write import write_csv
from automation.files.tables.errors import (
    TableError,
    TableQueryError,
    TableTooLargeError,
    UnknownColumnError,
    UnreadableTableError,
)
from automation.files.tables.infer import build_table
from automation.files.tables.model import Cell, Column, ColumnType, Table
from automation.files.tables.query import query
from automation.files.tables.read import MAX_BYTES, MAX_ROWS, read_table
from automation.files.tables.render import describe, render_text
from automation.files.tables.xlsx_write import write_xlsx

__all__ = [
    "MAX_BYTES",
    "MAX_ROWS",
    "AggFunc",
    "Aggregate",
    "Cell",
    "Column",
    "ColumnType",
    "Condition",
    "Op",
    "Table",
    "TableError",
    "TableQueryError",
    "TableTooLargeError",
    "UnknownColumnError",
    "UnreadableTableError",
    "build_table",
    "describe",
    "query",
    "read_table",
    "render_text",
    "write_csv",
    "write_xlsx",
]
