"""Time windows named in a question ("上周三", "last week", "yesterday"), for temporal recall.

"How was I feeling last Wednesday?" is answered by what was said last Wednesday, which no text
similarity finds; recall ranks memories from the named window first.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

Window = tuple[datetime, datetime]

_ZH_DAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_EN_DAYS = {
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5,
    "sunday": 6, "mon": 0, "tue": 1, "tues": 1, "wed": 2, "thu": 3, "thur": 3, "thurs": 3,
    "fri": 4,
}  # fmt: skip
_EN_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
         ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
         ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
         ("december", "dec")]
    )
    for m in names
}  # fmt: skip
_ZH_NUM = {
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}


def _day(d: date, now: datetime) -> Window:
    start = datetime.combine(d, time.min, tzinfo=now.tzinfo)
    return start, start + timedelta(days=1)


def _days(first: date, count: int, now: datetime) -> Window:
    start = datetime.combine(first, time.min, tzinfo=now.tzinfo)
    return start, start + timedelta(days=count)


def _week_start(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _number(token: str) -> int | None:
    if token.isdigit():
        return int(token)
    if token in _ZH_NUM:
        return _ZH_NUM[token]
    if len(token) == 2 and token[0] == "十" and token[1] in _ZH_NUM:
        return 10 + _ZH_NUM[token[1]]
    return None


def window(question: str, now: datetime) -> Window | None:
    """The period a question refers to, in `now`'s time zone, or None when it names none."""
    q = question.lower()
    today = now.date()
    this_week = _week_start(today)

    if m := re.search(r"(上上|上|这|本|下)?(?:个)?(?:周|星期|礼拜)([一二三四五六日天])", question):
        prefix, day = m.group(1) or "", _ZH_DAYS[m.group(2)]
        offset = {"上上": -14, "上": -7, "下": 7}.get(prefix, 0)
        return _day(this_week + timedelta(days=offset + day), now)
    if m := re.search(r"\b(last|this|next|on)?\s*(" + "|".join(_EN_DAYS) + r")\b", q):
        which, day = m.group(1) or "", _EN_DAYS[m.group(2)]
        if which == "last":
            return _day(this_week - timedelta(days=7) + timedelta(days=day), now)
        if which == "next":
            return _day(this_week + timedelta(days=7 + day), now)
        target = this_week + timedelta(days=day)
        if which != "this" and target > today:
            target -= timedelta(days=7)
        return _day(target, now)
    if m := re.search(r"(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]", question):
        return _month_day(int(m.group(1)), int(m.group(2)), now)
    month_names = "|".join(_EN_MONTHS)
    if m := re.search(rf"\b({month_names})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b", q):
        return _month_day(_EN_MONTHS[m.group(1)], int(m.group(2)), now)
    if m := re.search(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(" + month_names + r")\b", q):
        return _month_day(_EN_MONTHS[m.group(2)], int(m.group(1)), now)
    if m := re.search(r"(\d+|[一二两三四五六七八九十]+)\s*(?:天|日)前", question):
        n = _number(m.group(1))
        if n is not None:
            return _day(today - timedelta(days=n), now)
    if m := re.search(r"\b(\d+|two|three|four|five|six|seven)\s+days?\s+ago\b", q):
        words = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}
        n = int(m.group(1)) if m.group(1).isdigit() else words[m.group(1)]
        return _day(today - timedelta(days=n), now)
    if "前天" in question or "day before yesterday" in q:
        return _day(today - timedelta(days=2), now)
    if "昨天" in question or "昨晚" in question or "yesterday" in q or "last night" in q:
        return _day(today - timedelta(days=1), now)
    if "今天" in question or "今早" in question or "today" in q or "this morning" in q:
        return _day(today, now)
    if "上上周" in question or "two weeks ago" in q:
        return _days(this_week - timedelta(days=14), 7, now)
    if re.search(r"上(?:个)?(?:周|星期|礼拜)", question) or "last week" in q:
        return _days(this_week - timedelta(days=7), 7, now)
    if re.search(r"(?:这|本)(?:个)?(?:周|星期|礼拜)", question) or "this week" in q:
        return _days(this_week, 7, now)
    if "上个月" in question or "上月" in question or "last month" in q:
        first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
        return _days(first, (today.replace(day=1) - first).days, now)
    if "这个月" in question or "本月" in question or "this month" in q:
        first = today.replace(day=1)
        return _days(first, (today - first).days + 1, now)
    if "最近" in question or "这几天" in question or "recently" in q or "these days" in q:
        return _days(today - timedelta(days=6), 7, now)
    return None


def _month_day(month: int, day: int, now: datetime) -> Window | None:
    try:
        target = date(now.year, month, day)
    except ValueError:
        return None
    if target > now.date():
        try:
            target = date(now.year - 1, month, day)
        except ValueError:
            return None
    return _day(target, now)
