"""Why a table could not be read, queried or written; every message says what to do instead.

    TableError                  base; `str()` is fit to show the user and the model
    ├── UnreadableTableError    not a table we can read: old .xls, corrupt workbook, binary junk,
    │                           unknown text encoding, missing sheet (convert or re-export)
    ├── TableTooLargeError      more bytes or rows than the limits (filter or split the file)
    └── TableQueryError         the query names an unknown column or compares with a bad value
        └── UnknownColumnError  carries the real column names and the closest matches

None of them derives from `automation.tools.ToolError`: tools translate them at their edge.
"""

from __future__ import annotations


class TableError(Exception):
    """A table could not be read, queried or written; the text says why and how to fix it."""


class UnreadableTableError(TableError):
    """The bytes are not a table this engine reads; re-export as .xlsx or CSV."""


class TableTooLargeError(TableError):
    """The file is larger than the byte limit or holds more rows than allowed."""


class TableQueryError(TableError):
    """The query cannot run on this table (unknown column, value of the wrong type, bad op)."""


class UnknownColumnError(TableQueryError):
    """A column name in the query is not in the table."""

    def __init__(self, name: str, *, columns: list[str], suggestions: list[str]) -> None:
        hint = f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        shown = ", ".join(repr(c) for c in columns[:40])
        more = f" and {len(columns) - 40} more" if len(columns) > 40 else ""
        super().__init__(f"no column {name!r}{hint} (the columns are {shown}{more})")
        self.name = name
        """The name the query used."""
        self.columns = columns
        """All column names of the table, in order."""
        self.suggestions = suggestions
        """The closest real names (difflib), best first; may be empty."""
