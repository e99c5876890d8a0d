"""Text for the model: `describe` and `render_text` stay short whatever the table's shape."""

from __future__ import annotations

from automation.files.tables import build_table, describe, read_table, render_text

CSV = """\
客户,金额,折扣,日期
北京科技有限公司,"1,200.50",12.5%,2024-03-01
ACME,,5%,2024-03-02
"""


def test_describe_lists_columns_types_empties_and_first_rows() -> None:
    table = read_table(CSV.encode(), filename="s.csv")

    text = describe(table)

    assert text == (
        "2 rows × 4 columns:\n"
        "- 客户: str\n"
        "- 金额: decimal, 1 empty\n"
        "- 折扣: percent\n"
        "- 日期: date\n"
        "first 2 rows:\n"
        "客户 | 金额 | 折扣 | 日期\n"
        "北京科技有限公司 | 1200.50 | 12.5% | 2024-03-01\n"
        "ACME |  | 5% | 2024-03-02"
    )


def test_describe_names_the_sheet_the_others_and_the_title() -> None:
    table = read_table(CSV.encode(), filename="s.csv")
    table = type(table)(
        columns=table.columns, rows=table.rows, title="Q1", sheet="明细", sheets=("汇总", "明细")
    )

    assert describe(table).startswith("sheet '明细' (other sheets: 汇总)\ntitle: Q1\n2 rows")


def test_describe_of_a_very_wide_table_stays_within_1500_characters() -> None:
    header = [f"a_rather_long_column_name_{i}" for i in range(300)]
    rows = [[f"value {r}-{c} " * 5 for c in range(300)] for r in range(10)]

    text = describe(build_table(header, rows))

    assert len(text) <= 1500
    assert "a_rather_long_column_name_0: str" in text
    assert "more columns" in text
    assert "first 5 rows:" in text


def test_render_text_cuts_long_cells_and_counts_rows_left_out() -> None:
    rows = [[i, "很长的备注" * 20] for i in range(1000)]

    text = render_text(build_table(["n", "note"], rows), max_chars=500)

    assert len(text) <= 500
    lines = text.splitlines()
    assert lines[0] == "n | note"
    assert lines[1].startswith("0 | 很长的备注") and lines[1].endswith("…")
    assert lines[-1].startswith("… ") and lines[-1].endswith(" more rows")
    shown = len(lines) - 2
    assert lines[-1] == f"… {1000 - shown} more rows"


def test_render_text_of_many_columns_shows_the_first_ones() -> None:
    table = build_table([f"column_{i}" for i in range(100)], [list(range(100))])

    text = render_text(table, max_chars=600)

    assert text.startswith("(first ")
    assert "of 100 columns)" in text.splitlines()[0]
    assert len(text) <= 600


def test_render_text_of_an_empty_result() -> None:
    assert render_text(build_table(["a", "b"], [])) == "a | b\n(no rows)"
