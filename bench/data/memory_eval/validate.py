#!/usr/bin/env python3
"""Check the memory-retrieval evaluation dataset (stdlib only).

    python bench/data/memory_eval/validate.py

Checks conversations.jsonl and questions.jsonl next to this file, prints a summary
and exits 1 if anything is wrong.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = (
    "preference",
    "mood",
    "commitment",
    "rejected_proposal",
    "person",
    "project",
    "event",
    "fact",
    "instruction",
    "temporal",
    "update",
)
LANGS = ("zh", "en")
MIN_CONVS, MIN_QUESTIONS, MIN_LANG_SHARE = 20, 200, 0.40
MIN_PER_KIND = {k: 10 for k in KINDS} | {"update": 20, "rejected_proposal": 20}
SESSIONS_PER_CONV = (3, 6)
MESSAGES_PER_SESSION = (8, 20)
SPAN_DAYS = (21, 56)  # sessions spread over 3-8 weeks
MAX_CHARS = 300
ID_RE = re.compile(r"^(c\d{2,})-s(\d+)-m(\d{2,})$")

problems: list[str] = []


def problem(msg: str) -> None:
    problems.append(msg)


def parse_time(value, where: str):
    if not isinstance(value, str):
        problem(f"{where}: time is not a string")
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        problem(f"{where}: not ISO 8601: {value!r}")
        return None
    if t.tzinfo is None:
        problem(f"{where}: time has no UTC offset: {value!r}")
        return None
    return t


def read_jsonl(name: str) -> list[dict]:
    path = HERE / name
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        problem(f"{name}: cannot read: {e}")
        return rows
    for n, line in enumerate(lines, 1):
        if not line.strip():
            problem(f"{name}:{n}: empty line")
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            problem(f"{name}:{n}: invalid JSON: {e}")
            continue
        if not isinstance(row, dict):
            problem(f"{name}:{n}: not a JSON object")
            continue
        row["_line"] = n
        rows.append(row)
    return rows


def check_messages(msgs: list[dict]) -> dict[str, dict]:
    by_id: dict[str, dict] = {}
    per_conv: dict[str, list[dict]] = defaultdict(list)
    for m in msgs:
        where = f"conversations.jsonl:{m['_line']}"
        for field, typ in (
            ("conv", str),
            ("session", int),
            ("id", str),
            ("role", str),
            ("created_at", str),
            ("lang", str),
            ("content", str),
        ):
            if not isinstance(m.get(field), typ) or isinstance(m.get(field), bool):
                problem(f"{where}: field {field!r} missing or not {typ.__name__}")
                break
        else:
            mid = m["id"]
            if mid in by_id:
                problem(f"{where}: duplicate id {mid}")
            by_id[mid] = m
            mm = ID_RE.match(mid)
            if not mm or mm.group(1) != m["conv"] or int(mm.group(2)) != m["session"]:
                problem(f"{where}: id {mid} does not match conv/session")
            if m["role"] not in ("user", "assistant"):
                problem(f"{where}: bad role {m['role']!r}")
            if m["lang"] not in LANGS:
                problem(f"{where}: bad lang {m['lang']!r}")
            if not m["content"].strip():
                problem(f"{where}: empty content")
            if len(m["content"]) > MAX_CHARS:
                problem(f"{where}: content longer than {MAX_CHARS} characters")
            m["_t"] = parse_time(m["created_at"], where)
            per_conv[m["conv"]].append(m)

    for conv, cm in per_conv.items():
        sessions: dict[int, list[dict]] = defaultdict(list)
        prev = None
        for m in cm:
            if m["_t"] is not None and prev is not None and m["_t"] <= prev:
                problem(f"{m['id']}: created_at not after the previous message of {conv}")
            prev = m["_t"] or prev
            sessions[m["session"]].append(m)
        nums = sorted(sessions)
        if nums != list(range(1, len(nums) + 1)):
            problem(f"{conv}: sessions are not numbered 1..n: {nums}")
        if not SESSIONS_PER_CONV[0] <= len(nums) <= SESSIONS_PER_CONV[1]:
            problem(f"{conv}: {len(nums)} sessions, want {SESSIONS_PER_CONV}")
        for s, sm in sessions.items():
            if not MESSAGES_PER_SESSION[0] <= len(sm) <= MESSAGES_PER_SESSION[1]:
                problem(f"{conv} session {s}: {len(sm)} messages, want {MESSAGES_PER_SESSION}")
            if sm[0]["role"] != "user":
                problem(f"{conv} session {s}: does not start with a user message")
            for a, b in itertools.pairwise(sm):
                if a["role"] == b["role"]:
                    problem(f"{b['id']}: two {b['role']} messages in a row")
        times = [m["_t"] for m in cm if m["_t"] is not None]
        if times:
            span = (max(times) - min(times)).days
            if not SPAN_DAYS[0] <= span <= SPAN_DAYS[1]:
                problem(f"{conv}: spans {span} days, want {SPAN_DAYS}")
    return by_id


def check_questions(qs: list[dict], by_id: dict[str, dict], convs: set[str]) -> None:
    seen = set()
    for q in qs:
        where = f"questions.jsonl:{q['_line']}"
        for field, typ in (
            ("qid", str),
            ("conv", str),
            ("lang", str),
            ("asked_at", str),
            ("question", str),
            ("evidence", list),
            ("kind", str),
            ("answer", str),
        ):
            if not isinstance(q.get(field), typ):
                problem(f"{where}: field {field!r} missing or not {typ.__name__}")
                break
        else:
            if q["qid"] in seen:
                problem(f"{where}: duplicate qid {q['qid']}")
            seen.add(q["qid"])
            if q["conv"] not in convs:
                problem(f"{where}: unknown conv {q['conv']}")
            if q["lang"] not in LANGS:
                problem(f"{where}: bad lang {q['lang']!r}")
            if q["kind"] not in KINDS:
                problem(f"{where}: bad kind {q['kind']!r}")
            if not q["question"].strip() or not q["answer"].strip():
                problem(f"{where}: empty question or answer")
            asked = parse_time(q["asked_at"], where)
            ev = q["evidence"]
            if not 1 <= len(ev) <= 3:
                problem(f"{where}: {len(ev)} evidence ids, want 1-3")
            if len(set(map(str, ev))) != len(ev):
                problem(f"{where}: repeated evidence id")
            for eid in ev:
                m = by_id.get(eid) if isinstance(eid, str) else None
                if m is None:
                    problem(f"{where}: evidence {eid!r} does not exist")
                    continue
                if m["role"] != "user":
                    problem(f"{where}: evidence {eid} is not a user message")
                if m["conv"] != q["conv"]:
                    problem(f"{where}: evidence {eid} is not in conv {q['conv']}")
                if asked is not None and m["_t"] is not None and not m["_t"] < asked:
                    problem(f"{where}: evidence {eid} is not before asked_at")


def main() -> int:
    msgs = read_jsonl("conversations.jsonl")
    qs = read_jsonl("questions.jsonl")
    by_id = check_messages(msgs)
    convs = {m["conv"] for m in msgs if isinstance(m.get("conv"), str)}
    check_questions(qs, by_id, convs)

    n_q = len(qs)
    q_lang = Counter(q.get("lang") for q in qs)
    q_kind = Counter(q.get("kind") for q in qs)
    if len(convs) < MIN_CONVS:
        problem(f"{len(convs)} conversations, want at least {MIN_CONVS}")
    if n_q < MIN_QUESTIONS:
        problem(f"{n_q} questions, want at least {MIN_QUESTIONS}")
    for lang in LANGS:
        if n_q and q_lang[lang] / n_q < MIN_LANG_SHARE:
            problem(
                f"only {q_lang[lang] / n_q:.0%} of questions are {lang}, want {MIN_LANG_SHARE:.0%}"
            )
    for kind, low in MIN_PER_KIND.items():
        if q_kind[kind] < low:
            problem(f"{q_kind[kind]} {kind} questions, want at least {low}")

    conv_lang = {}
    for c in sorted(convs):
        cl = Counter(m["lang"] for m in msgs if m.get("conv") == c)
        conv_lang[c] = (
            "/".join(lang for lang, _ in cl.most_common())
            if len(cl) > 1 and min(cl.values()) / sum(cl.values()) > 0.2
            else cl.most_common(1)[0][0]
        )
    sess = {(m.get("conv"), m.get("session")) for m in msgs}
    print("memory_eval dataset")
    print(f"  conversations: {len(convs)}  ({Counter(conv_lang.values())})")
    print(f"  sessions:      {len(sess)}")
    print(
        f"  messages:      {len(msgs)}  by role {dict(Counter(m.get('role') for m in msgs))}"
        f"  by lang {dict(Counter(m.get('lang') for m in msgs))}"
    )
    print(
        f"  questions:     {n_q}  by lang "
        + ", ".join(f"{lang} {q_lang[lang]} ({q_lang[lang] / max(n_q, 1):.0%})" for lang in LANGS)
    )
    print("  by kind:       " + ", ".join(f"{k} {q_kind[k]}" for k in KINDS))
    print(
        "  evidence ids per question: "
        + ", ".join(
            f"{k}: {v}"
            for k, v in sorted(Counter(len(q.get("evidence") or []) for q in qs).items())
        )
    )
    if problems:
        print(f"\n{len(problems)} problem(s):")
        for p in problems[:200]:
            print("  - " + p)
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
