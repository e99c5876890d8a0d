"""Argument models for the `table_read` and `table_write` tools (pure pydantic, no storage).

The query fields are flat on both models (no nested `query` object) because every nesting level
costs prompt tokens in each tool schema and trips smaller models. The tools themselves (loading
the file by id, storing the result) belong with the file storage; these models only validate and
translate to `automation.files.tables`.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Literal, Self

from pydantic import BaseModel, Field, model_validator

from automation.files.tables import (
    MAX_ROWS,
    AggFunc,
    Aggregate,
    Condition,
    Op,
    Table,
    build_table,
    query,
)

Scalar = str | int | float | bool
"""A JSON value the model may put in a condition or a cell."""

MAX_GIVEN_ROWS = 2000
"""Rows the model may write out itself; more come from a query on a stored file."""

_TABLE_SUFFIXES = frozenset({".xlsx", ".xls", ".csv", ".tsv", ".txt"})
_UNSAFE_NAME = re.compile(r'[\x00-\x1f<>:"/\\|?*]+')


class WhereArg(BaseModel):
    """One filter condition; all of them must hold."""

    column: str = Field(description="Column name")
    op: Op = Field(description="Comparison; text comparisons ignore case")
    value: Scalar | list[Scalar] | None = Field(
        default=None,
        description="Number, text or ISO date; a list for `in`; [low, high] for `between`; "
        "omit for is_empty/not_empty",
    )

    def condition(self) -> Condition:
        """The engine's condition."""
        return Condition(self.column, self.op, self.value)


class AggregateArg(BaseModel):
    """One aggregate column of the result."""

    func: AggFunc
    column: str | None = Field(default=None, description="Omit for count of rows")
    as_name: str | None = Field(default=None, description="Result column name")

    def aggregate(self) -> Aggregate:
        """The engine's aggregate."""
        return Aggregate(self.func, self.column, self.as_name)


class OrderArg(BaseModel):
    """One sort key."""

    column: str
    descending: bool = False


class TableQuery(BaseModel):
    """A query, run in SQL's order: where → group_by/aggregates → order_by → columns → limit."""

    columns: list[str] | None = Field(
        default=None, max_length=200, description="Columns to keep (default: all)"
    )
    where: list[WhereArg] = Field(default_factory=list, max_length=30)
    group_by: list[str] = Field(default_factory=list, max_length=10)
    aggregates: list[AggregateArg] = Field(default_factory=list, max_length=20)
    order_by: list[OrderArg] = Field(default_factory=list, max_length=10)
    limit: int | None = Field(default=None, ge=0, le=MAX_ROWS)

    @property
    def is_empty(self) -> bool:
        """No step asked for: the table is used as it is."""
        return not (
            self.columns or self.where or self.group_by or self.aggregates or self.order_by
        ) and (self.limit is None)

    def apply(self, table: Table) -> Table:
        """The query's result on `table`.

        Raises:
            TableQueryError: unknown column (with suggestions), bad value or aggregate.
        """
        return query(
            table,
            columns=self.columns,
            where=[w.condition() for w in self.where],
            group_by=self.group_by,
            aggregates=[a.aggregate() for a in self.aggregates],
            order_by=[(o.column, o.descending) for o in self.order_by],
            limit=self.limit,
        )


class TableReadArgs(TableQuery):
    """Arguments of `table_read`: describe a stored table, or run a query on it."""

    file_id: int = Field(description="Id of a file the user sent")
    sheet: str | None = Field(default=None, description="Worksheet name (default: the first)")


class TableWriteArgs(TableQuery):
    """Arguments of `table_write`: a query's result on a stored file, or rows the model gives,
    written as a formatted .xlsx (default) or CSV file for the user."""

    source_file_id: int | None = Field(
        default=None, description="Write the result of the query on this file"
    )
    sheet: str | None = Field(default=None, description="Worksheet of the source file")
    header: list[str] | None = Field(
        default=None, max_length=200, description="Column names, when giving rows yourself"
    )
    rows: list[list[Scalar | None]] | None = Field(
        default=None, max_length=MAX_GIVEN_ROWS, description="Rows, when giving them yourself"
    )
    format: Literal["xlsx", "csv"] = "xlsx"
    file_name: str = Field(min_length=1, max_length=120, description="e.g. 'open orders'")
    title: str | None = Field(default=None, max_length=200, description="Title row above the table")
    sheet_name: str = Field(default="Sheet1", max_length=31)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = self.header is not None or self.rows is not None
        if (self.source_file_id is None) == (not given):
            raise ValueError("give either source_file_id, or header and rows, not both")
        if given and (not self.header or self.rows is None):
            raise ValueError("give both header and rows")
        if self.header is not None and self.rows is not None:
            wide = [n for n, row in enumerate(self.rows) if len(row) > len(self.header)]
            if wide:
                raise ValueError(f"row {wide[0]} has more cells than the header has names")
        return self

    def given_table(self) -> Table | None:
        """The table made of `header` and `rows` (types inferred as when reading a file), or
        None when the rows come from `source_file_id`."""
        if self.header is None or self.rows is None:
            return None
        return build_table(self.header, self.rows, title=self.title)

    def output_name(self) -> str:
        """`file_name` made safe for a file system and ending in the format's extension."""
        name = _UNSAFE_NAME.sub(" ", self.file_name).strip()
        if PurePath(name).suffix.casefold() in _TABLE_SUFFIXES:
            name = PurePath(name).stem
        return f"{name.strip(' .') or 'table'}.{self.format}"
