"""`query`: filter, group, aggregate, sort, pick columns and limit, in SQL's order.

The steps run as `WHERE → GROUP BY/aggregates → ORDER BY → column selection → LIMIT`, so
`order_by` may name a column that `columns` then leaves out, and after grouping `columns` and
`order_by` refer to the result (group columns and aggregate names).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from automation.files.tables.aggregate import Aggregate, aggregate
from automation.files.tables.conditions import Condition, compile_conditions
from automation.files.tables.errors import TableQueryError
from automation.files.tables.model import Cell, Row, Table


def query(
    table: Table,
    *,
    columns: Sequence[str] | None = None,
    where: Sequence[Condition] = (),
    group_by: Sequence[str] = (),
    aggregates: Sequence[Aggregate] = (),
    order_by: Sequence[tuple[str, bool]] = (),
    limit: int | None = None,
) -> Table:
    """A new table with the rows and columns asked for; `table` is not changed.

    `order_by` is a list of `(column, descending)`: `[("amount", True)]` puts the largest
    first. Text sorts ignoring case; empty cells sort last in both directions.

    Raises:
        UnknownColumnError: a name is not a column (the error suggests close ones).
        TableQueryError: a bad op, value, aggregate or limit.
    """
    if limit is not None and limit < 0:
        raise TableQueryError(f"limit must be 0 or more, not {limit}")
    result = table
    if where:
        keep = compile_conditions(table, where)
        result = _with_rows(table, [row for row in table.rows if keep(row)])
    if group_by or aggregates:
        result = aggregate(result, group_by, aggregates)
    if order_by:
        result = _with_rows(result, _sorted(result, order_by))
    if columns is not None:
        if not columns:
            raise TableQueryError("columns is empty; leave it out to keep all columns")
        picks = [result.index(name) for name in columns]
        result = Table(
            columns=tuple(result.columns[i] for i in picks),
            rows=[tuple(row[i] for i in picks) for row in result.rows],
        )
    if limit is not None:
        result = _with_rows(result, result.rows[:limit])
    return result


def _sorted(table: Table, order_by: Sequence[tuple[str, bool]]) -> list[Row]:
    """Rows sorted by each key in turn; sorting from the last key to the first with a stable
    sort gives the same result as comparing key tuples, with per-key direction."""
    rows = list(table.rows)
    for name, descending in reversed(order_by):
        i = table.index(name)
        filled = [row for row in rows if row[i] is not None]
        empty = [row for row in rows if row[i] is None]
        filled.sort(key=lambda row: _sort_key(row[i]), reverse=descending)
        rows = filled + empty
    return rows


def _sort_key(cell: Cell) -> Any:
    """Cells of one column share a type, so they compare; text compares ignoring case."""
    return cell.casefold() if isinstance(cell, str) else cell


def _with_rows(table: Table, rows: list[Row]) -> Table:
    return Table(
        columns=table.columns, rows=rows, title=table.title, sheet=table.sheet, sheets=table.sheets
    )
