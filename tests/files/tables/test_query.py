"""Filtering, grouping, aggregating, sorting and limiting a table read from CSV."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from automation.files.tables import (
    Aggregate,
    Condition,
    Table,
    TableQueryError,
    UnknownColumnError,
    query,
    read_table,
)

ORDERS_CSV = """\
id,customer,status,amount,day,placed,vip
1,ACME,open,"1,200.50",2024-03-01,2024-03-01 09:00,yes
2,Beta,Closed,300,2024-03-02,2024-03-02 18:30,no
3,ACME,Open,99.50,2024-03-05,2024-03-05 23:59,yes
4,北京公司,open,,2024-03-05,2024-03-05 00:00,no
5,Gamma,,50,2024-04-01,2024-04-01 12:00,
"""


@pytest.fixture
def orders() -> Table:
    return read_table(ORDERS_CSV.encode(), filename="orders.csv")


def ids(table: Table) -> list[object]:
    return [row[table.index("id")] for row in table.rows]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (Condition("status", "=", "OPEN"), [1, 3, 4]),
        (Condition("status", "!=", "open"), [2, 5]),  # empty cells are "not open"
        (Condition("amount", ">", "1,000"), [1]),
        (Condition("amount", ">=", 300), [1, 2]),
        (Condition("amount", "<", 99.5), [5]),
        (Condition("amount", "<=", "99.50"), [3, 5]),
        (Condition("amount", "=", 300), [2]),
        (Condition("customer", "contains", "cm"), [1, 3]),
        (Condition("customer", "contains", "北京"), [4]),
        (Condition("customer", "startswith", "b"), [2]),
        (Condition("day", "startswith", "2024-03"), [1, 2, 3, 4]),
        (Condition("status", "in", ["closed", "OPEN"]), [1, 2, 3, 4]),
        (Condition("id", "in", [2, "4"]), [2, 4]),
        (Condition("amount", "between", [50, "300"]), [2, 3, 5]),
        (Condition("status", "is_empty"), [5]),
        (Condition("amount", "not_empty"), [1, 2, 3, 5]),
        (Condition("vip", "=", True), [1, 3]),
        (Condition("vip", "=", "no"), [2, 4]),
    ],
)
def test_each_operator(orders: Table, condition: Condition, expected: list[int]) -> None:
    assert ids(query(orders, where=[condition])) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (Condition("day", ">=", "2024-03-05"), [3, 4, 5]),
        (Condition("day", "between", ["2024-03-02", "2024-03-05"]), [2, 3, 4]),
        (Condition("day", "=", date(2024, 3, 5)), [3, 4]),
        (Condition("day", "<", "2024-03-05 12:00"), [1, 2, 3, 4]),
        # A plain date against a datetime column compares the day, so "up to the 5th" includes it.
        (Condition("placed", "<=", "2024-03-05"), [1, 2, 3, 4]),
        (Condition("placed", "=", "2024-03-05"), [3, 4]),
        (Condition("placed", ">", "2024-03-05 12:00"), [3, 5]),
        (Condition("placed", "between", ["2024-03-02", "2024-03-05 23:00"]), [2, 4]),
    ],
)
def test_date_comparisons_with_iso_strings(
    orders: Table, condition: Condition, expected: list[int]
) -> None:
    assert ids(query(orders, where=[condition])) == expected


def test_all_conditions_must_hold(orders: Table) -> None:
    result = query(orders, where=[Condition("status", "=", "open"), Condition("amount", "<", 1000)])

    assert ids(result) == [3]


def test_sum_amount_by_customer_of_open_rows(orders: Table) -> None:
    result = query(
        orders,
        where=[Condition("status", "=", "open")],
        group_by=["customer"],
        aggregates=[Aggregate("sum", "amount", "total"), Aggregate("count")],
    )

    assert result.names == ["customer", "total", "count"]
    assert [c.type for c in result.columns] == ["str", "decimal", "int"]
    assert result.rows == [("ACME", Decimal("1300.00"), 2), ("北京公司", None, 1)]


def test_every_aggregate_over_the_whole_table(orders: Table) -> None:
    result = query(
        orders,
        aggregates=[
            Aggregate("count"),
            Aggregate("count", "amount"),
            Aggregate("count_distinct", "customer"),
            Aggregate("sum", "amount"),
            Aggregate("avg", "amount"),
            Aggregate("min", "day"),
            Aggregate("max", "placed"),
            Aggregate("sum", "id"),
            Aggregate("avg", "id"),
        ],
    )

    assert result.names == [
        "count",
        "count_amount",
        "count_distinct_customer",
        "sum_amount",
        "avg_amount",
        "min_day",
        "max_placed",
        "sum_id",
        "avg_id",
    ]
    assert result.rows == [
        (5, 4, 4, Decimal("1650.00"), 412.5, date(2024, 3, 1), datetime(2024, 4, 1, 12), 15, 3.0)
    ]
    assert [c.type for c in result.columns][-2:] == ["int", "float"]


def test_aggregates_of_no_rows_give_one_row_with_count_zero(orders: Table) -> None:
    result = query(
        orders,
        where=[Condition("customer", "=", "nobody")],
        aggregates=[Aggregate("count"), Aggregate("sum", "amount")],
    )

    assert result.rows == [(0, None)]


def test_group_by_without_aggregates_lists_distinct_values(orders: Table) -> None:
    result = query(orders, group_by=["customer"], order_by=[("customer", False)])

    assert result.rows == [("ACME",), ("Beta",), ("Gamma",), ("北京公司",)]


def test_order_by_several_keys_with_empty_cells_last(orders: Table) -> None:
    by_amount = query(orders, order_by=[("amount", True)])
    assert ids(by_amount) == [1, 2, 3, 5, 4]
    assert ids(query(orders, order_by=[("amount", False)])) == [5, 3, 2, 1, 4]

    by_status_then_id = query(orders, order_by=[("status", False), ("id", True)])
    assert ids(by_status_then_id) == [2, 4, 3, 1, 5]


def test_order_by_aggregate_then_limit_and_pick_columns(orders: Table) -> None:
    result = query(
        orders,
        group_by=["customer"],
        aggregates=[Aggregate("sum", "amount", "total")],
        order_by=[("total", True)],
        columns=["customer"],
        limit=2,
    )

    assert result.names == ["customer"]
    assert result.rows == [("ACME",), ("Beta",)]


def test_columns_picks_and_reorders_and_limit_zero_keeps_the_header(orders: Table) -> None:
    result = query(orders, columns=["amount", "ID"], limit=0)

    assert result.names == ["amount", "id"]
    assert result.rows == []
    assert query(orders, columns=["status", "id"], limit=1).rows == [("open", 1)]


def test_unknown_column_suggests_the_closest_and_lists_all(orders: Table) -> None:
    with pytest.raises(UnknownColumnError) as caught:
        query(orders, where=[Condition("ammount", ">", 1)])

    assert caught.value.suggestions == ["amount"]
    assert "did you mean 'amount'?" in str(caught.value)
    assert "'id', 'customer', 'status', 'amount', 'day', 'placed', 'vip'" in str(caught.value)


def test_unknown_columns_are_found_in_every_part_of_the_query(orders: Table) -> None:
    for kwargs in (
        {"columns": ["nope"]},
        {"group_by": ["nope"]},
        {"aggregates": [Aggregate("sum", "nope")]},
        {"order_by": [("nope", False)]},
    ):
        with pytest.raises(UnknownColumnError, match="no column 'nope'"):
            query(orders, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"where": [Condition("amount", ">", "lots")]},
            "holds decimal values; compare it with a number",
        ),
        ({"where": [Condition("day", ">", "yesterday")]}, "compare it with a date like 2024-03-05"),
        ({"where": [Condition("vip", "=", "maybe")]}, "compare it with true or false"),
        (
            {"where": [Condition("amount", "between", [1])]},
            r"needs a list of 2 values \[low, high\]",
        ),
        ({"where": [Condition("status", "in", "open")]}, "needs a list of values"),
        ({"where": [Condition("status", "=", None)]}, "needs one value"),
        ({"where": [Condition("status", "like", "x")]}, "unknown op 'like'"),  # type: ignore[arg-type]
        ({"aggregates": [Aggregate("sum", "customer")]}, "sum needs a number column"),
        ({"aggregates": [Aggregate("median", "amount")]}, "unknown aggregate 'median'"),  # type: ignore[arg-type]
        ({"aggregates": [Aggregate("avg")]}, "avg needs a column"),
        (
            {"group_by": ["customer"], "aggregates": [Aggregate("count", as_name="customer")]},
            "two result columns",
        ),
        ({"limit": -1}, "limit must be 0 or more"),
    ],
)
def test_bad_queries_say_what_to_change(orders: Table, kwargs: dict, message: str) -> None:
    with pytest.raises(TableQueryError, match=message):
        query(orders, **kwargs)


def test_query_leaves_the_table_unchanged(orders: Table) -> None:
    before = list(orders.rows)

    query(orders, where=[Condition("id", ">", 2)], order_by=[("id", True)], limit=1)

    assert orders.rows == before
