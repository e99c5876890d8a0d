"""Reading .xlsx workbooks made with openpyxl, and the broken or foreign files users send."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, time
from decimal import Decimal

import pytest
from openpyxl import Workbook

from automation.files.tables import UnreadableTableError, read_table


def workbook_bytes(*sheets: tuple[str, list[list[object]]]) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


ORDERS = [
    ["order", "day", "when", "amount", "paid", "qty", "ratio"],
    ["A-1", datetime(2024, 3, 5), datetime(2024, 3, 5, 14, 30), 1200.5, True, 3, 1 / 3],
    ["A-2", datetime(2024, 3, 6), datetime(2024, 3, 6, 9, 0), 99.99, False, 4, 0.5],
]


def test_native_cell_types_become_column_types() -> None:
    table = read_table(workbook_bytes(("Orders", ORDERS)), filename="orders.xlsx")

    assert [c.type for c in table.columns] == [
        "str",
        "date",
        "datetime",
        "decimal",
        "bool",
        "int",
        "float",
    ]
    assert table.rows[0] == (
        "A-1",
        date(2024, 3, 5),
        datetime(2024, 3, 5, 14, 30),
        Decimal("1200.5"),
        True,
        3,
        1 / 3,  # a computed value: 16 significant digits, so it stays a float
    )
    assert table.rows[1][3] == Decimal("99.99")
    assert table.sheet == "Orders"
    assert table.sheets == ("Orders",)


def test_first_sheet_by_default_and_others_by_name() -> None:
    data = workbook_bytes(("Summary", [["k", "v"], ["a", 1]]), ("明细", [["x", "y"], [1, 2]]))

    assert read_table(data, filename="b.xlsx").sheet == "Summary"
    table = read_table(data, filename="b.xlsx", sheet="明细")
    assert table.rows == [(1, 2)]
    assert table.sheets == ("Summary", "明细")
    assert read_table(data, filename="b.xlsx", sheet=" summary ").sheet == "Summary"


def test_unknown_sheet_lists_the_real_ones() -> None:
    data = workbook_bytes(("Summary", [["k"], [1]]), ("Detail", [["k"], [2]]))

    with pytest.raises(
        UnreadableTableError, match=r"no sheet 'Sales'; its sheets are 'Summary', 'Detail'"
    ):
        read_table(data, filename="b.xlsx", sheet="Sales")


def test_text_cells_get_the_same_inference_as_csv() -> None:
    data = workbook_bytes(
        (
            "S",
            [
                ["amount", "day", "code"],
                ["1,234.50", "2024-03-05", "007"],
                ["¥20", "2024/3/6", "010"],
            ],
        )
    )

    table = read_table(data, filename="s.xlsx")

    assert table.rows == [
        (Decimal("1234.50"), date(2024, 3, 5), "007"),
        (Decimal("20"), date(2024, 3, 6), "010"),
    ]


def test_leading_empty_rows_and_formatted_empty_columns_are_ignored() -> None:
    wb = Workbook()
    ws = wb.active
    ws["B3"], ws["C3"] = "name", "qty"
    ws["B4"], ws["C4"] = "pen", 2
    ws["H20"].number_format = "0.00"  # formatted but empty: stretches the sheet's dimension
    ws["F4"] = None
    out = io.BytesIO()
    wb.save(out)

    table = read_table(out.getvalue(), filename="s.xlsx")

    assert table.names == ["name", "qty"]
    assert table.rows == [("pen", 2)]


def test_title_row_and_clock_times() -> None:
    data = workbook_bytes(("S", [["2024 Q1 report"], ["shift", "starts"], ["early", time(6, 30)]]))

    table = read_table(data, filename="s.xlsx")

    assert table.title == "2024 Q1 report"
    assert table.rows == [("early", "06:30:00")]


def test_formulas_without_saved_results_read_as_empty() -> None:
    data = workbook_bytes(("S", [["a", "b", "sum"], [1, 2, "=A2+B2"]]))

    table = read_table(data, filename="s.xlsx")

    assert table.rows == [(1, 2, None)]


def test_old_xls_and_password_protected_files_say_save_as_xlsx() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512

    with pytest.raises(
        UnreadableTableError, match=r"old-format Excel file.*save it as \.xlsx or CSV"
    ):
        read_table(ole, filename="report.xls")


def test_damaged_workbooks_say_what_to_do() -> None:
    good = workbook_bytes(("S", [["a"], [1]]))

    with pytest.raises(
        UnreadableTableError, match=r"not a readable \.xlsx workbook.*save it again"
    ):
        read_table(good[: len(good) // 2], filename="cut.xlsx")
    with pytest.raises(UnreadableTableError, match=r"damaged \(not a zip container\)"):
        read_table(b"definitely, not\na, workbook\n", filename="fake.xlsx")


def test_a_zip_that_is_not_a_workbook_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("readme.txt", "hello")

    with pytest.raises(UnreadableTableError, match="not a readable .xlsx workbook"):
        read_table(out.getvalue(), filename="data.xlsx")
    with pytest.raises(UnreadableTableError, match=r"OpenDocument spreadsheet \(\.ods\)"):
        read_table(out.getvalue(), filename="data.ods")


def test_a_workbook_named_csv_is_still_read_as_a_workbook() -> None:
    table = read_table(workbook_bytes(("S", [["a"], [1]])), filename="wrong-name.csv")

    assert table.rows == [(1,)]


def test_empty_sheet_is_refused_with_its_name() -> None:
    data = workbook_bytes(("Empty", []), ("Data", [["a"], [1]]))

    with pytest.raises(UnreadableTableError, match=r"sheet 'Empty' of b.xlsx is empty"):
        read_table(data, filename="b.xlsx")
