"""Writing formatted .xlsx and Excel-friendly CSV, and reading both back."""

from __future__ import annotations

import codecs
import io
from datetime import date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from automation.files.tables import (
    Aggregate,
    Table,
    build_table,
    query,
    read_table,
    write_csv,
    write_xlsx,
)

SALES_CSV = """\
日期,客户,金额,数量,折扣,已付,下单时间
2024-03-01,北京科技有限公司,"1,200.50",3,12.5%,是,2024-03-01 09:30
2024-03-02,ACME,300,"1,000",5%,否,2024-03-02 18:00
2024-03-03,=HYPERLINK("http://x"),,7,,是,2024-03-03 07:05
"""


@pytest.fixture
def sales() -> Table:
    return read_table(SALES_CSV.encode("gbk"), filename="sales.csv")


def test_xlsx_roundtrip_keeps_values_and_types(sales: Table) -> None:
    back = read_table(write_xlsx(sales), filename="out.xlsx")

    assert back.names == sales.names
    assert (
        [c.type for c in back.columns]
        == [c.type for c in sales.columns]
        == ["date", "str", "decimal", "int", "decimal", "bool", "datetime"]
    )
    assert back.rows == sales.rows
    assert back.rows[0][:3] == (date(2024, 3, 1), "北京科技有限公司", Decimal("1200.50"))


def test_xlsx_header_is_bold_filled_frozen_and_filtered(sales: Table) -> None:
    sheet = load_workbook(io.BytesIO(write_xlsx(sales, sheet_name="销售"))).active

    assert sheet.title == "销售"
    header = sheet[1]
    assert [c.value for c in header] == sales.names
    assert all(c.font.bold for c in header)
    assert header[0].fill.fill_type == "solid"
    assert header[0].fill.fgColor.rgb == "FFDDEBF7"
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:G4"


def test_xlsx_number_formats_follow_the_column_types(sales: Table) -> None:
    sheet = load_workbook(io.BytesIO(write_xlsx(sales))).active

    row = {name: cell for name, cell in zip(sales.names, sheet[2], strict=True)}
    assert row["日期"].number_format == "yyyy-mm-dd"
    assert row["金额"].number_format == "#,##0.00"
    assert row["数量"].number_format == "#,##0"  # the source wrote "1,000"
    assert row["折扣"].number_format == "0.0%"
    assert row["折扣"].value == pytest.approx(0.125)
    assert row["下单时间"].number_format == "yyyy-mm-dd hh:mm"
    assert row["已付"].value is True


def test_xlsx_column_widths_count_cjk_characters_double() -> None:
    table = build_table(["客户", "code", "day"], [["北京科技有限公司", "ABCDEFGH", "2024-03-01"]])

    sheet = load_workbook(io.BytesIO(write_xlsx(table))).active

    # 8 CJK characters are 16 display cells; 8 Latin ones are 8; both plus 2 of padding.
    assert sheet.column_dimensions["A"].width == 18
    assert sheet.column_dimensions["B"].width == 10
    assert sheet.column_dimensions["C"].width == 12
    wide = build_table(["note"], [["x" * 500]])
    assert load_workbook(io.BytesIO(write_xlsx(wide))).active.column_dimensions["A"].width == 60


def test_xlsx_title_row_sits_above_the_frozen_header(sales: Table) -> None:
    data = write_xlsx(sales, title="2024年3月销售")
    sheet = load_workbook(io.BytesIO(data)).active

    assert sheet["A1"].value == "2024年3月销售"
    assert sheet["A1"].font.bold and sheet["A1"].font.size == 14
    assert [str(r) for r in sheet.merged_cells.ranges] == ["A1:G1"]
    assert sheet["A2"].value == "日期"
    assert sheet.freeze_panes == "A3"
    assert sheet.auto_filter.ref == "A2:G5"

    back = read_table(data, filename="out.xlsx")
    assert back.title == "2024年3月销售"
    assert back.rows == sales.rows


def test_xlsx_text_that_looks_like_a_formula_stays_text(sales: Table) -> None:
    sheet = load_workbook(io.BytesIO(write_xlsx(sales))).active

    assert sheet["B4"].value == '=HYPERLINK("http://x")'
    assert sheet["B4"].data_type == "s"


def test_xlsx_drops_control_characters_and_cleans_sheet_names() -> None:
    table = build_table(["a"], [["bell\x07 and tab\tok"]])

    sheet = load_workbook(io.BytesIO(write_xlsx(table, sheet_name="Q1/Q2: [draft]*"))).active

    assert sheet["A2"].value == "bell and tab\tok"
    assert sheet.title == "Q1 Q2 draft"


def test_xlsx_of_an_aggregate_formats_sums_and_averages(sales: Table) -> None:
    summary = query(
        sales,
        group_by=["已付"],
        aggregates=[Aggregate("sum", "金额", "合计"), Aggregate("avg", "数量", "平均数量")],
    )

    sheet = load_workbook(io.BytesIO(write_xlsx(summary))).active

    assert [c.value for c in sheet[1]] == ["已付", "合计", "平均数量"]
    assert sheet["B2"].number_format == "#,##0.00"
    assert sheet["C2"].number_format == "#,##0.00##"
    assert sheet["C2"].value == 5.0


def test_empty_table_writes_just_the_header() -> None:
    table = build_table(["a", "b"], [])

    sheet = load_workbook(io.BytesIO(write_xlsx(table))).active

    assert [c.value for c in sheet[1]] == ["a", "b"]
    assert sheet.max_row == 1


def test_csv_has_a_bom_iso_dates_and_percentages(sales: Table) -> None:
    data = write_csv(sales)

    assert data.startswith(codecs.BOM_UTF8)
    lines = data[3:].decode("utf-8").splitlines()
    assert lines[0] == "日期,客户,金额,数量,折扣,已付,下单时间"
    assert lines[1] == "2024-03-01,北京科技有限公司,1200.50,3,12.5%,true,2024-03-01 09:30"
    assert lines[3] == '2024-03-03,"=HYPERLINK(""http://x"")",,7,,true,2024-03-03 07:05'


def test_csv_roundtrip(sales: Table) -> None:
    back = read_table(write_csv(sales), filename="out.csv")

    assert back.rows == sales.rows
    assert [c.type for c in back.columns] == [c.type for c in sales.columns]
    assert back.columns[4].number_format == "0.0%"


def test_model_given_rows_are_typed_like_a_file() -> None:
    table = build_table(
        ["name", "amount", "when", "ok"],
        [["a", 12.5, "2024-03-01", True], ["b", "1,300", "2024-03-02 10:00", False], ["c"]],
    )

    assert [c.type for c in table.columns] == ["str", "decimal", "datetime", "bool"]
    assert table.rows[2] == ("c", None, None, None)
    assert table.rows[1][1:3] == (Decimal("1300"), datetime(2024, 3, 2, 10, 0))
