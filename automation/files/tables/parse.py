"""Text → values: the number, date and yes/no spellings found in exported spreadsheets.

Numbers: `1234`, `-12.5`, `1,234.50` (comma thousands groups), currency marks `$ € £ ¥ ￥` in
front or `元` behind (`¥1,200`, `1200元`), accounting negatives `(1,234.00)`, percentages (`12%` is
the fraction `0.12`), and exponents (`1.5e3`, which become floats). Integers become `int`, plain
decimals `Decimal` (so sums of money are exact). What is *not* a number, on purpose: leading
zeros (`007`, `0123` are codes and zip codes), integers of more than 15 digits (ID-card, bank and
order numbers, which Excel would round), European `1.234,50` (ambiguous with `1,234.50`).

Dates are year first: `2024-03-05`, `2024/3/5`, `2024.03.05`, `2024年3月5日`, optionally followed
by a time `14:30[:05[.123]]`. Day-first and month-first dates (`05/03/2024`) are ambiguous and
stay text, as do times with a UTC offset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

NULL_TOKENS = frozenset(
    {"-", "--", "—", "n/a", "na", "null", "none", "nan"}
    | {"#n/a", "#div/0!", "#value!", "#ref!", "#name?", "#num!", "#null!"}
)
"""Placeholders that mean "no value" in a column of numbers or dates (never in a text column,
where `-` or `none` may be real data). Compared casefolded."""

BOOL_TOKENS = {"true": True, "false": False, "yes": True, "no": False, "是": True, "否": False}
"""Spellings of yes/no; `1`/`0` are numbers and `y`/`n` are too often codes."""

MAX_INT_DIGITS = 15
"""Longer digit strings are identifiers: Excel keeps only 15 significant digits of a number."""

_CURRENCY = "$€£¥￥"
_DIGITS = re.compile(
    r"(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?(?:\.(?P<frac>[0-9]+))?(?P<exp>[eE][-+]?[0-9]+)?"
)
_TEMPORAL = re.compile(
    r"(?P<y>[0-9]{4})\s*[-/.年]\s*(?P<m>[0-9]{1,2})\s*[-/.月]\s*(?P<d>[0-9]{1,2})\s*日?"
    r"(?:(?:\s+|T)(?P<H>[0-9]{1,2}):(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2})(?:\.(?P<f>[0-9]{1,6}))?)?)?"
)


@dataclass(frozen=True, slots=True)
class ParsedNumber:
    """A number read from text, with the spelling details the writer may want to repeat."""

    value: int | Decimal | float
    percent: bool
    """Written as a percentage; `value` is already the fraction."""
    grouped: bool
    """Written with thousands separators."""
    places: int
    """Digits after the decimal point as written (before dividing a percentage by 100)."""


def is_null_token(text: str) -> bool:
    """Whether `text` is a "no value" placeholder in a typed column."""
    return text.casefold() in NULL_TOKENS


def parse_bool(text: str) -> bool | None:
    """The truth value `text` spells, or None when it is not a yes/no word."""
    return BOOL_TOKENS.get(text.casefold())


def parse_number(text: str) -> ParsedNumber | None:
    """The number `text` spells (see the module docstring for what counts), or None."""
    s = text.strip()
    negative = False
    if s.startswith("(") and s.endswith(")"):
        negative, s = True, s[1:-1].strip()
    if s[:1] in ("-", "−", "+"):
        negative, s = negative ^ (s[0] != "+"), s[1:].lstrip()
    if s[:1] and s[0] in _CURRENCY:
        s = s[1:].lstrip()
        if s[:1] in ("-", "−") and not negative:
            negative, s = True, s[1:].lstrip()
    if s.endswith("元"):
        s = s[:-1].rstrip()
    percent = s.endswith("%")
    if percent:
        s = s[:-1].rstrip()
    match = _DIGITS.fullmatch(s)
    if match is None or (match["int"] is None and match["frac"] is None):
        return None
    whole, frac, exp = match["int"] or "", match["frac"], match["exp"]
    if len(whole) > 1 and whole[0] == "0":
        return None
    digits = whole.replace(",", "")
    value: int | Decimal | float
    if exp is not None:
        value = float(f"{digits or '0'}.{frac or '0'}{exp}")
    elif frac is not None:
        value = Decimal(f"{digits or '0'}.{frac}")
    elif len(digits) > MAX_INT_DIGITS:
        return None
    else:
        value = int(digits)
    if percent:
        value = value / 100 if isinstance(value, float) else Decimal(value) / 100
    if negative:
        value = -value
    return ParsedNumber(value=value, percent=percent, grouped="," in whole, places=len(frac or ""))


def parse_temporal(text: str) -> date | datetime | None:
    """The date (no time written) or naive datetime `text` spells, or None."""
    match = _TEMPORAL.fullmatch(text.strip())
    if match is None:
        return None
    try:
        day = date(int(match["y"]), int(match["m"]), int(match["d"]))
        if match["H"] is None:
            return day
        return datetime(
            day.year,
            day.month,
            day.day,
            int(match["H"]),
            int(match["M"]),
            int(match["S"] or 0),
            int((match["f"] or "0").ljust(6, "0")),
        )
    except ValueError:
        return None


def number_from_float(value: float) -> Decimal | float:
    """A workbook's float as what Excel shows: `Decimal` when its shortest spelling has at most
    15 significant digits (12.5, 0.1), so money read from .xlsx sums exactly like money from CSV;
    the float itself otherwise (computed values like 0.30000000000000004, or 1e-20)."""
    text = repr(value)
    if "e" in text or "n" in text:  # exponent, nan, inf
        return value
    significant = text.lstrip("-").replace(".", "").lstrip("0")
    return Decimal(text) if len(significant) <= MAX_INT_DIGITS else value
