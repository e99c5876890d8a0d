"""The `table_read` / `table_write` argument models: validation and translation to a query."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from automation.files.tables import read_table
from automation.files.tool_args import TableReadArgs, TableWriteArgs

CSV = b"customer,status,amount\nACME,open,10.50\nBeta,closed,3\nACME,Open,1.25\n"


def test_read_args_run_the_query_they_describe() -> None:
    args = TableReadArgs.model_validate(
        {
            "file_id": 7,
            "where": [{"column": "status", "op": "=", "value": "open"}],
            "group_by": ["customer"],
            "aggregates": [{"func": "sum", "column": "amount", "as_name": "total"}],
            "order_by": [{"column": "total", "descending": True}],
            "limit": 10,
        }
    )

    result = args.apply(read_table(CSV, filename="o.csv"))

    assert result.rows == [("ACME", Decimal("11.75"))]
    assert not args.is_empty
    assert TableReadArgs(file_id=7).is_empty


def test_read_args_refuse_unknown_ops_and_negative_limits() -> None:
    with pytest.raises(ValidationError, match="where.0.op"):
        TableReadArgs.model_validate({"file_id": 1, "where": [{"column": "a", "op": "like"}]})
    with pytest.raises(ValidationError, match="limit"):
        TableReadArgs.model_validate({"file_id": 1, "limit": -1})


def test_write_args_take_a_source_file_or_given_rows_not_both() -> None:
    TableWriteArgs.model_validate({"source_file_id": 3, "file_name": "open orders"})
    TableWriteArgs.model_validate({"header": ["a"], "rows": [[1]], "file_name": "x"})

    for bad in (
        {"file_name": "x"},
        {"source_file_id": 3, "header": ["a"], "rows": [[1]], "file_name": "x"},
        {"header": ["a"], "file_name": "x"},
        {"header": ["a"], "rows": [[1, 2]], "file_name": "x"},
    ):
        with pytest.raises(ValidationError):
            TableWriteArgs.model_validate(bad)


def test_given_rows_become_a_typed_table() -> None:
    args = TableWriteArgs.model_validate(
        {
            "header": ["客户", "金额", "日期"],
            "rows": [["ACME", 12.5, "2024-03-01"], ["北京", "1,000", None]],
            "file_name": "汇总",
            "title": "三月",
        }
    )

    table = args.given_table()

    assert table is not None
    assert [c.type for c in table.columns] == ["str", "decimal", "date"]
    assert table.rows[1][1] == Decimal("1000")
    assert table.title == "三月"
    assert TableWriteArgs(source_file_id=1, file_name="x").given_table() is None


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("open orders", "xlsx", "open orders.xlsx"),
        ("report.xlsx", "csv", "report.csv"),
        ("../../etc/passwd", "csv", "etc passwd.csv"),
        ("Q1.sales", "xlsx", "Q1.sales.xlsx"),
        ("???", "xlsx", "table.xlsx"),
    ],
)
def test_output_name_is_safe_and_has_the_format_extension(
    name: str, fmt: str, expected: str
) -> None:
    args = TableWriteArgs(source_file_id=1, file_name=name, format=fmt)  # type: ignore[arg-type]

    assert args.output_name() == expected


def test_schemas_are_plain_json() -> None:
    for model in (TableReadArgs, TableWriteArgs):
        schema = model.model_json_schema()
        json.dumps(schema)
        assert "where" in schema["properties"]
