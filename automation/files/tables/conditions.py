"""Row filters: `Condition(column, op, value)` compiled to a predicate over the column's type.

The value is converted to the column's type first, so `amount > "1,000"` compares numbers and
`date >= "2024-03-01"` compares dates. Text comparisons ignore case (`status = open` matches
"Open"); `contains` and `startswith` work on any column's text (`date startswith 2024-03` picks a
month). A datetime column compared with a plain date compares the day (`<= 2024-03-05` includes
that whole day). Empty cells match only `is_empty` and `!=`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, get_args

from automation.files.tables.errors import TableQueryError
from automation.files.tables.model import Cell, Column, Row, Table
from automation.files.tables.parse import parse_bool, parse_number, parse_temporal
from automation.files.tables.text import format_cell

Op = Literal[
    "=",
    "!=",
    ">",
    ">=",
    "<",
    "<=",
    "contains",
    "startswith",
    "in",
    "between",
    "is_empty",
    "not_empty",
]
OPS: tuple[str, ...] = get_args(Op)

Predicate = Callable[[Row], bool]
_Key = Callable[[Cell], object]


@dataclass(frozen=True)
class Condition:
    """`column op value`; all conditions of a query must hold (AND). Use `in` for OR on one
    column. `in` takes a list, `between` a pair (inclusive), `is_empty`/`not_empty` no value."""

    column: str
    op: Op
    value: object = None


def compile_conditions(table: Table, conditions: Sequence[Condition]) -> Predicate:
    """One predicate that holds when every condition does.

    Raises:
        UnknownColumnError: a condition names a column the table lacks.
        TableQueryError: an unknown op, or a value that does not fit the column's type.
    """
    predicates = [_compile(table, c) for c in conditions]
    return lambda row: all(p(row) for p in predicates)


def _compile(table: Table, cond: Condition) -> Predicate:
    i = table.index(cond.column)
    column = table.columns[i]
    op = cond.op
    if op not in OPS:
        raise TableQueryError(f"unknown op {op!r}; use one of {', '.join(OPS)}")
    if op == "is_empty":
        return lambda row: row[i] is None
    if op == "not_empty":
        return lambda row: row[i] is not None
    if op in ("contains", "startswith"):
        if cond.value is None or isinstance(cond.value, list | tuple | dict):
            raise TableQueryError(f"{op} needs one piece of text to look for in {column.name!r}")
        needle = _needle(cond.value)
        if op == "contains":
            return lambda row: row[i] is not None and needle in format_cell(row[i]).casefold()
        return lambda row: row[i] is not None and format_cell(row[i]).casefold().startswith(needle)
    if op == "in":
        key, targets = _targets(column, _many(cond, count=None))
        wanted = set(targets)
        return lambda row: row[i] is not None and key(row[i]) in wanted
    if op == "between":
        key, (low, high) = _targets(column, _many(cond, count=2))
        at_least, at_most = _COMPARE[">="], _COMPARE["<="]

        def between(row: Row) -> bool:
            if row[i] is None:
                return False
            cell = key(row[i])
            return at_least(cell, low) and at_most(cell, high)

        return between
    if cond.value is None or isinstance(cond.value, list | tuple | dict):
        raise TableQueryError(f"{op} needs one value to compare {column.name!r} with")
    key, (target,) = _targets(column, [cond.value])
    compare: Callable[[object, object], bool] = _COMPARE[op]
    if op == "!=":
        return lambda row: row[i] is None or compare(key(row[i]), target)
    return lambda row: row[i] is not None and compare(key(row[i]), target)


_COMPARE: dict[str, Callable[[object, object], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,  # type: ignore[operator]
    ">=": lambda a, b: a >= b,  # type: ignore[operator]
    "<": lambda a, b: a < b,  # type: ignore[operator]
    "<=": lambda a, b: a <= b,  # type: ignore[operator]
}


def _many(cond: Condition, *, count: int | None) -> list[object]:
    value = cond.value
    if not isinstance(value, list | tuple) or (count is not None and len(value) != count):
        shape = "a list of values" if count is None else f"a list of {count} values [low, high]"
        raise TableQueryError(f"{cond.op} on {cond.column!r} needs {shape}, not {value!r}")
    if any(v is None for v in value):
        raise TableQueryError(f"{cond.op} on {cond.column!r}: use is_empty to find empty cells")
    return list(value)


def _needle(value: object) -> str:
    text = format_cell(value) if isinstance(value, bool) else str(value)
    return text.strip().casefold()


def _targets(column: Column, values: list[object]) -> tuple[_Key, list[object]]:
    """The values converted for comparison, and how to turn a cell into a comparable key.

    Dates and datetimes do not compare in Python: when every value is a plain date, datetime
    cells compare by their day; otherwise dates on both sides become midnight datetimes.
    """
    targets = [_target(column, v) for v in values]
    if column.type == "str":
        return (lambda cell: str(cell).casefold()), targets
    if column.type in ("date", "datetime"):
        if all(not isinstance(t, datetime) for t in targets):
            return (lambda cell: cell.date() if isinstance(cell, datetime) else cell), targets
        return _midnight, [_midnight(t) for t in targets]  # type: ignore[arg-type]
    return (lambda cell: cell), targets


def _target(column: Column, value: object) -> object:
    """`value` converted to what the column's cells are compared as."""
    kind = column.type
    if kind == "str":
        return _needle(value)
    if kind in ("int", "float", "decimal"):
        number = _number(value)
        if number is None:
            raise _mismatch(column, value, "a number, like 1200 or 12.5")
        if kind == "float":
            return float(number)
        if isinstance(number, float):
            return Decimal(repr(number))
        return number
    if kind in ("date", "datetime"):
        moment = parse_temporal(value) if isinstance(value, str) else value
        if not isinstance(moment, date):
            raise _mismatch(column, value, "a date like 2024-03-05 or 2024-03-05 14:30")
        return moment
    truth = parse_bool(value) if isinstance(value, str) else value
    if isinstance(truth, int) and truth in (0, 1):
        return bool(truth)
    raise _mismatch(column, value, "true or false")


def _number(value: object) -> int | Decimal | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, str) and (parsed := parse_number(value)) is not None:
        return parsed.value
    return None


def _midnight(cell: Cell) -> Cell:
    """A plain date as the datetime of its midnight; anything else unchanged."""
    if isinstance(cell, date) and not isinstance(cell, datetime):
        return datetime(cell.year, cell.month, cell.day)
    return cell


def _mismatch(column: Column, value: object, expected: str) -> TableQueryError:
    return TableQueryError(
        f"column {column.name!r} holds {column.type} values; compare it with {expected}, "
        f"not {value!r}"
    )
