"""Grouping and aggregates: `count sum avg min max count_distinct` per group, like SQL.

Groups keep the order in which they first appear (order the result with `order_by`). Empty
cells are skipped by every function except a plain `count` (no column), which counts rows; a
sum, average, minimum or maximum over only empty cells is empty, not 0. `sum` keeps the column's
type (integers stay exact, decimals stay exact); `avg` is a float.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from automation.files.tables.errors import TableQueryError
from automation.files.tables.model import NUMERIC_TYPES, Cell, Column, ColumnType, Row, Table

AggFunc = Literal["count", "sum", "avg", "min", "max", "count_distinct"]
FUNCS: tuple[str, ...] = get_args(AggFunc)


@dataclass(frozen=True)
class Aggregate:
    """`func(column) AS as_name`; `count` without a column counts rows."""

    func: AggFunc
    column: str | None = None
    as_name: str | None = None
    """The result column's name; default `<func>_<column>` (or `count`)."""

    @property
    def name(self) -> str:
        """The name of the result column."""
        if self.as_name and self.as_name.strip():
            return self.as_name.strip()
        return f"{self.func}_{self.column}" if self.column else self.func


def aggregate(table: Table, group_by: Sequence[str], aggregates: Sequence[Aggregate]) -> Table:
    """One row per distinct combination of `group_by` values (one row in all when empty), with
    the group columns followed by one column per aggregate.

    Raises:
        UnknownColumnError: a group or aggregate column is not in the table.
        TableQueryError: an unknown function, a sum/avg of a non-number column, a missing
            column, or two result columns with the same name.
    """
    keys = [table.index(name) for name in group_by]
    plans = [_plan(table, a) for a in aggregates]
    out_columns = [table.columns[k] for k in keys] + [column for column, _ in plans]
    seen: set[str] = set()
    for column in out_columns:
        if column.name.casefold() in seen:
            raise TableQueryError(
                f"two result columns are called {column.name!r}; give an aggregate another as_name"
            )
        seen.add(column.name.casefold())
    groups: dict[tuple[Cell, ...], list[Row]] = {}
    for row in table.rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    if not keys and not groups:
        groups[()] = []  # aggregates over no rows: one row (count 0), as SQL does
    rows = [
        key
        + tuple(
            _apply(a.func, index, members) for a, (_, index) in zip(aggregates, plans, strict=True)
        )
        for key, members in groups.items()
    ]
    return Table(columns=tuple(out_columns), rows=rows)


def _plan(table: Table, agg: Aggregate) -> tuple[Column, int | None]:
    """The result column of `agg` and the index of the column it reads (None: rows)."""
    if agg.func not in FUNCS:
        raise TableQueryError(f"unknown aggregate {agg.func!r}; use one of {', '.join(FUNCS)}")
    if agg.column is None:
        if agg.func != "count":
            raise TableQueryError(f"{agg.func} needs a column")
        return Column(name=agg.name, type="int"), None
    index = table.index(agg.column)
    source = table.columns[index]
    if agg.func in ("sum", "avg") and source.type not in NUMERIC_TYPES:
        raise TableQueryError(
            f"{agg.func} needs a number column; {source.name!r} holds {source.type} values "
            "(use count, count_distinct, min or max)"
        )
    kind: ColumnType = source.type
    number_format = source.number_format
    if agg.func in ("count", "count_distinct"):
        kind, number_format = "int", None
    elif agg.func == "avg":
        kind = "float"
        number_format = number_format if number_format and "%" in number_format else None
    return Column(name=agg.name, type=kind, number_format=number_format), index


def _apply(func: AggFunc, index: int | None, rows: list[Row]) -> Cell:
    if index is None:
        return len(rows)
    values = [row[index] for row in rows if row[index] is not None]
    if func == "count":
        return len(values)
    if func == "count_distinct":
        return len(set(values))
    if not values:
        return None
    if func == "min":
        return min(values)  # type: ignore[type-var]
    if func == "max":
        return max(values)  # type: ignore[type-var]
    total = sum(values)  # type: ignore[arg-type]
    if func == "sum":
        return total
    return float(total) / len(values)
