"""What a table is once read: named, typed columns and rows of plain Python values.

A column has one type for all its cells, decided when the table is read (see `infer`), so a
query never has to guess whether "1,200" is a number: it already is `1200`. Empty cells are None
in every column type.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from automation.files.tables.errors import UnknownColumnError

ColumnType = Literal["int", "float", "decimal", "date", "datetime", "bool", "str"]
"""The type of every non-empty cell of a column: `date` has no time, `datetime` is naive."""

Cell = bool | int | float | Decimal | datetime | date | str | None
"""One value: the Python type matches the column's `ColumnType`; None means empty."""

Row = tuple[Cell, ...]

NUMERIC_TYPES: frozenset[ColumnType] = frozenset({"int", "float", "decimal"})


@dataclass(frozen=True, kw_only=True)
class Column:
    """A named, typed column."""

    name: str
    """Unique within the table (blank and repeated headers were renamed when read)."""
    type: ColumnType
    number_format: str | None = None
    """An Excel number format the source suggested (`0%` for "12%", `#,##0` for "1,200");
    None lets the writer pick one from the type."""


@dataclass(frozen=True, kw_only=True)
class Table:
    """Columns and rows; every row has exactly one cell per column."""

    columns: tuple[Column, ...]
    rows: list[Row]
    title: str | None = None
    """A one-cell title row found above the header (reports often have one), if any."""
    sheet: str | None = None
    """The worksheet the table came from (None for CSV and for query results)."""
    sheets: tuple[str, ...] = field(default=())
    """All worksheet names of the workbook, so the model can ask for another one."""

    @property
    def names(self) -> list[str]:
        """The column names in order."""
        return [c.name for c in self.columns]

    def index(self, name: str) -> int:
        """The position of the column called `name`; case and surrounding spaces are ignored
        when that leaves exactly one match, because models and users rarely copy names exactly.

        Raises:
            UnknownColumnError: no such column; the error lists the real ones and close matches.
        """
        names = self.names
        if name in names:
            return names.index(name)
        wanted = name.strip().casefold()
        loose = [i for i, n in enumerate(names) if n.strip().casefold() == wanted]
        if len(loose) == 1:
            return loose[0]
        folded = {n.casefold(): n for n in names}
        close = difflib.get_close_matches(wanted, list(folded), n=3, cutoff=0.6)
        raise UnknownColumnError(name, columns=names, suggestions=[folded[c] for c in close])

    def column(self, name: str) -> Column:
        """The column called `name` (see `index` for how names match).

        Raises:
            UnknownColumnError: no such column.
        """
        return self.columns[self.index(name)]
