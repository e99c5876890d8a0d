"""Delimited text (CSV, TSV, semicolon and pipe files) → a `Table`.

Encodings tried: UTF-16 when the file starts with its byte-order mark (Excel's "Unicode text"
export), else UTF-8 (with or without BOM), else GB18030 (a superset of GBK, what Excel on Chinese
Windows writes by default). The delimiter is the one of `, ; tab |` that splits the first lines
into the same, largest number of fields; `.tsv` files try tab first and win ties.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import unicodedata
from collections import Counter

from automation.files.tables.errors import TableTooLargeError, UnreadableTableError
from automation.files.tables.infer import RawRow, build_table, is_blank, split_header
from automation.files.tables.model import Table

DELIMITERS = (",", ";", "\t", "|")
_SNIFF_CHARS = 64 * 1024
_SNIFF_ROWS = 50


def read_delimited(data: bytes, *, label: str, prefer_tab: bool, max_rows: int) -> Table:
    """The table in delimited text `data`; `label` names the file in errors.

    Raises:
        UnreadableTableError: not text in a known encoding, or not parseable as CSV.
        TableTooLargeError: more than `max_rows` data rows.
    """
    text = decode(data, label=label)
    delimiter = sniff_delimiter(text, prefer_tab=prefer_tab)
    rows: list[RawRow] = []
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if all(is_blank(v) for v in row):
                continue
            rows.append(row)
            if len(rows) > max_rows + 2:  # + header and a possible title row
                break
    except csv.Error as exc:
        raise UnreadableTableError(
            f"{label} is not valid CSV ({exc}); export it again as CSV or .xlsx"
        ) from exc
    title, header, body = split_header(rows, label=label)
    if len(body) > max_rows:
        raise TableTooLargeError(
            f"{label} has more than {max_rows:,} rows; filter or split it before sending"
        )
    return build_table(header, body, title=title)


def decode(data: bytes, *, label: str) -> str:
    """`data` as text (see the module docstring for the encodings tried).

    Raises:
        UnreadableTableError: binary data, or an encoding that is none of those.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)
    else:
        encodings = ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _looks_binary(text):
            break
        return text
    raise UnreadableTableError(
        f"{label} is not a text table (binary data, or an encoding other than UTF-8, UTF-16 "
        "or GBK); save it as .xlsx, or as CSV in UTF-8"
    )


def sniff_delimiter(text: str, *, prefer_tab: bool = False) -> str:
    """The delimiter that splits the first rows of `text` most consistently into most fields;
    `,` (one column) when none splits anything."""
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS:
        sample = sample[: sample.rfind("\n") + 1] or sample  # no half line at the end
    order = ("\t", ",", ";", "|") if prefer_tab else DELIMITERS
    best, best_score = ",", (0.0, 1)
    for delimiter in order:
        try:
            rows = itertools.islice(
                csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter), _SNIFF_ROWS
            )
            widths = [len(r) for r in rows if any(v.strip() for v in r)]
        except csv.Error:
            continue
        if not widths:
            continue
        width, count = Counter(widths).most_common(1)[0]
        score = (count / len(widths), width)
        if width > 1 and score > best_score:
            best, best_score = delimiter, score
    return best


def _looks_binary(text: str) -> bool:
    """NUL or many control characters: an image, archive or document decoded by accident."""
    head = text[:_SNIFF_CHARS]
    if "\x00" in head:
        return True
    controls = sum(
        1 for ch in head if ch not in "\t\r\n\f" and unicodedata.category(ch) in ("Cc", "Co", "Cn")
    )
    return controls > max(4, len(head) // 100)
