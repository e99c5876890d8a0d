"""Reading delimited text: delimiters, encodings, headers, type inference and limits."""

from __future__ import annotations

import codecs
from datetime import date, datetime
from decimal import Decimal

import pytest

from automation.files.tables import (
    MAX_BYTES,
    TableTooLargeError,
    UnreadableTableError,
    read_table,
)


def read(text: str, *, filename: str = "data.csv", encoding: str = "utf-8", **kwargs):
    return read_table(text.encode(encoding), filename=filename, **kwargs)


@pytest.mark.parametrize(
    ("delimiter", "filename"),
    [(",", "a.csv"), (";", "a.csv"), ("\t", "a.tsv"), ("\t", "a.csv"), ("|", "a.txt")],
)
def test_delimiter_is_sniffed(delimiter: str, filename: str) -> None:
    text = delimiter.join(["name", "qty", "note"]) + "\n"
    text += delimiter.join(["apple", "3", "red"]) + "\n" + delimiter.join(["pear", "5", ""]) + "\n"

    table = read(text, filename=filename)

    assert table.names == ["name", "qty", "note"]
    assert table.rows == [("apple", 3, "red"), ("pear", 5, None)]


def test_quoted_fields_keep_commas_and_line_breaks() -> None:
    table = read('id,address\n1,"Main St 5, Springfield"\n2,"two\nlines"\n')

    assert table.rows == [(1, "Main St 5, Springfield"), (2, "two\nlines")]


def test_semicolon_file_with_commas_in_text_picks_semicolon() -> None:
    table = read("name;remark\nA;one, two\nB;three, four\nC;five\n")

    assert table.names == ["name", "remark"]
    assert table.rows[0] == ("A", "one, two")


def test_gbk_chinese_csv_from_excel_on_chinese_windows() -> None:
    text = '客户,金额,日期\n北京科技有限公司,"1,200.50",2024/3/5\n上海贸易,300,2024/3/6\n'

    table = read(text, encoding="gbk")

    assert table.names == ["客户", "金额", "日期"]
    assert table.rows == [
        ("北京科技有限公司", Decimal("1200.50"), date(2024, 3, 5)),
        ("上海贸易", Decimal("300"), date(2024, 3, 6)),
    ]


def test_utf8_bom_is_not_part_of_the_first_column_name() -> None:
    table = read_table(codecs.BOM_UTF8 + "名称,数量\n苹果,3\n".encode(), filename="a.csv")

    assert table.names == ["名称", "数量"]


def test_utf16_tab_separated_unicode_text_export() -> None:
    data = "名称\t数量\r\n苹果\t3\r\n".encode("utf-16")

    table = read_table(data, filename="export.txt")

    assert table.rows == [("苹果", 3)]


def test_numbers_with_separators_currency_and_percent_become_numbers() -> None:
    table = read(
        "amount,price,share,loss,big,yuan\n"
        '"1,234.50",¥1200,12%,"(1,234.00)",1.5e3,1200元\n'
        "-7.25,$3,12.5%,-5,2E-3,30元\n"
    )

    columns = {c.name: c for c in table.columns}
    assert [c.type for c in table.columns] == [
        "decimal",
        "int",
        "decimal",
        "decimal",
        "float",
        "int",
    ]
    assert table.rows[0] == (
        Decimal("1234.50"),
        1200,
        Decimal("0.12"),
        Decimal("-1234.00"),
        1500.0,
        1200,
    )
    assert table.rows[1] == (Decimal("-7.25"), 3, Decimal("0.125"), Decimal("-5"), 0.002, 30)
    assert columns["share"].number_format == "0.0%"
    assert columns["amount"].number_format is None


def test_thousands_separated_integers_remember_their_format() -> None:
    table = read('n\n"1,200"\n"12,345,678"\n')

    assert table.columns[0].type == "int"
    assert table.columns[0].number_format == "#,##0"
    assert table.rows == [(1200,), (12345678,)]


def test_codes_with_leading_zeros_and_long_ids_stay_text() -> None:
    table = read(
        "zip,id_card,phone\n00123,110101199003071234,13812345678\n07001,110101199003075678,13900000000\n"
    )

    assert [c.type for c in table.columns] == ["str", "str", "int"]
    assert table.rows[0] == ("00123", "110101199003071234", 13812345678)


def test_european_decimal_commas_stay_text() -> None:
    table = read("name;amount\nA;1.234,50\nB;12,5\n")

    assert table.columns[1].type == "str"
    assert table.rows[0] == ("A", "1.234,50")


def test_dates_and_datetimes_in_common_spellings() -> None:
    table = read(
        "d,when,cn\n"
        "2024-03-05,2024-03-05 14:30,2024年3月5日\n"
        "2024/3/6,2024-03-06T09:15:07,2024年12月31日\n"
        "2024.03.07,2024/3/7 0:00,\n"
    )

    assert [c.type for c in table.columns] == ["date", "datetime", "date"]
    assert table.rows[0] == (date(2024, 3, 5), datetime(2024, 3, 5, 14, 30), date(2024, 3, 5))
    assert table.rows[1][1] == datetime(2024, 3, 6, 9, 15, 7)
    assert table.rows[2] == (date(2024, 3, 7), datetime(2024, 3, 7, 0, 0), None)


def test_ambiguous_day_month_dates_and_invalid_dates_stay_text() -> None:
    assert read("d\n05/03/2024\n").columns[0].type == "str"
    assert read("d\n2024-02-30\n").columns[0].type == "str"


def test_yes_no_columns_become_bool() -> None:
    table = read("paid,shipped,vip\nyes,TRUE,是\nNo,false,否\n")

    assert [c.type for c in table.columns] == ["bool", "bool", "bool"]
    assert table.rows == [(True, True, True), (False, False, False)]


def test_placeholders_are_empty_in_number_columns_but_kept_in_text_columns() -> None:
    table = read("amount,remark\n12.5,-\nN/A,ok\n-,N/A\n#DIV/0!,\n")

    assert table.columns[0].type == "decimal"
    assert [r[0] for r in table.rows] == [Decimal("12.5"), None, None, None]
    assert [r[1] for r in table.rows] == ["-", "ok", "N/A", None]


def test_one_word_makes_the_column_text_and_text_is_stripped() -> None:
    table = read("qty,status\n1, open \n2,closed\nmany,\n")

    assert table.columns[0].type == "str"
    assert table.rows == [("1", "open"), ("2", "closed"), ("many", None)]


def test_blank_and_duplicate_headers_are_made_unique() -> None:
    table = read("amount,,Amount,amount,\n1,2,3,4,5\n")

    assert table.names == ["amount", "col_2", "Amount_2", "amount_3", "col_5"]


def test_cells_beyond_the_header_get_names_and_short_rows_are_padded() -> None:
    table = read("a,b\n1,2,3\n4\n")

    assert table.names == ["a", "b", "col_3"]
    assert table.rows == [(1, 2, 3), (4, None, None)]


def test_blank_lines_are_skipped_and_header_only_file_has_no_rows() -> None:
    assert read("a,b\n\n1,2\n,\n\n").rows == [(1, 2)]
    table = read("a,b\n")
    assert table.names == ["a", "b"]
    assert table.rows == []


def test_title_row_above_the_header_is_recognised() -> None:
    table = read("2024年3月销售明细,,\n客户,金额,日期\nACME,10,2024-03-01\n")

    assert table.title == "2024年3月销售明细"
    assert table.names == ["客户", "金额", "日期"]
    assert table.rows == [("ACME", 10, date(2024, 3, 1))]


def test_a_hundred_thousand_rows_read() -> None:
    lines = ["id,day,customer,amount"] + [
        f"{i},2024-03-{i % 28 + 1:02d},c{i % 40},{i % 997}.{i % 100:02d}" for i in range(100_000)
    ]

    table = read("\n".join(lines))

    assert len(table.rows) == 100_000
    assert [c.type for c in table.columns] == ["int", "date", "str", "decimal"]
    assert table.rows[-1] == (99_999, date(2024, 3, 12), "c39", Decimal("299.99"))


def test_more_rows_than_the_limit_are_refused() -> None:
    text = "n\n" + "\n".join(str(i) for i in range(11))

    assert len(read(text, max_rows=11).rows) == 11
    with pytest.raises(TableTooLargeError, match=r"more than 10 rows"):
        read(text, max_rows=10)


def test_files_over_50_mb_are_refused_before_parsing() -> None:
    data = b"a,b\n" + b"1,2\n" * (MAX_BYTES // 4)

    with pytest.raises(TableTooLargeError, match=r"big\.csv is 50\.0 MB; tables up to 50 MB"):
        read_table(data, filename="big.csv")


def test_unknown_encoding_binary_and_empty_files_are_refused() -> None:
    junk = bytes(range(256)) * 64
    with pytest.raises(UnreadableTableError, match=r"not a text table.*save it as \.xlsx"):
        read_table(junk, filename="data.csv")
    with pytest.raises(UnreadableTableError, match="is empty"):
        read_table(b"  \n", filename="data.csv")
    with pytest.raises(UnreadableTableError, match="a PDF document, not a table"):
        read_table(b"%PDF-1.7\n...", filename="report.csv")


def test_html_saved_as_xls_says_how_to_convert() -> None:
    page = b"<html><body><table><tr><td>1</td></tr></table></body></html>"

    with pytest.raises(UnreadableTableError, match=r"web page.*save it as \.xlsx or CSV"):
        read_table(page, filename="export.xls")


def test_tab_separated_text_named_xls_is_read_as_text() -> None:
    table = read_table("name\tqty\napple\t3\n".encode("gbk"), filename="export.xls")

    assert table.rows == [("apple", 3)]
