"""Telegram's text checks for sendMessage/editMessageText, simplified.

Why: the commonest production failure with Telegram is an unescaped MarkdownV2 character,
which Telegram refuses with ``400 Bad Request: can't parse entities``. The fake must refuse
the same texts, and accept correct formatting, so the bot's escaping is really tested.

Simplifications (documented so a test never relies on them):
- MarkdownV2: ``\\`` escapes any ASCII character; ``*`` ``_`` ``__`` ``~`` ``||`` toggle
  entities that must be closed and properly nested; `` ` `` and ``` ``` ``` spans are
  verbatim until their closing fence; ``[text](url)`` is a link (inside the URL only
  ``)`` and ``\\`` need escaping); ``>`` starts a quote only at a line start. Any other
  reserved character ``_*[]()~`>#+-=|{}.!`` outside code is an error. Custom emoji,
  expandable quotes and the fine rules for ``_`` vs ``__`` ambiguity are not modelled.
- HTML: only Telegram's tag names are allowed, tags must balance, attributes are not
  checked, a ``<`` that does not start a tag is an error; entities are unescaped.
- Length is counted in UTF-16 code units of the text after entity parsing, as Telegram does.
"""

from __future__ import annotations

import html
import re

__all__ = ["MAX_CAPTION", "MAX_TEXT", "parse_text", "utf16_len"]

MAX_TEXT = 4096
MAX_CAPTION = 1024
MD_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD_NAMES = {
    "*": "Bold",
    "_": "Italic",
    "__": "Underline",
    "~": "Strikethrough",
    "||": "Spoiler",
    "[": "TextUrl",
}
HTML_TAGS = frozenset(
    [
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    ]
)
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s[^<>]*)?)>")


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (characters outside the BMP count twice)."""
    return len(text.encode("utf-16-le")) // 2


def _offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _reserved(char: str) -> str:
    return f"Character '{char}' is reserved and must be escaped with the preceding '\\'"


def _parse_markdown_v2(text: str) -> tuple[str, str | None]:
    out: list[str] = []
    stack: list[tuple[str, int]] = []  # (marker, index where it opened)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 < n and 1 <= ord(text[i + 1]) <= 126:
                out.append(text[i + 1])
                i += 2
                continue
            return "", _reserved("\\")
        if text.startswith("```", i) or c == "`":
            fence = "```" if text.startswith("```", i) else "`"
            end = i + len(fence)
            while end < n and not text.startswith(fence, end):
                end += 2 if text[end] == "\\" else 1
            if end >= n:
                kind = "Pre" if len(fence) == 3 else "Code"
                return "", f"Can't find end of {kind} entity at byte offset {_offset(text, i)}"
            body = text[i + len(fence) : end]
            if fence == "```" and "\n" in body:
                body = body.split("\n", 1)[1]  # first line names the language
            out.append(re.sub(r"\\(.)", r"\1", body))
            i = end + len(fence)
            continue
        marker = "__" if text.startswith("__", i) else "||" if text.startswith("||", i) else c
        if marker in ("*", "_", "__", "~", "||"):
            if stack and stack[-1][0] == marker:
                stack.pop()
            elif any(m == marker for m, _ in stack):
                m, at = stack[-1]
                return (
                    "",
                    f"Can't find end of {_MD_NAMES[m]} entity at byte offset {_offset(text, at)}",
                )
            else:
                stack.append((marker, i))
            i += len(marker)
            continue
        if c == "[":
            stack.append(("[", i))
            i += 1
            continue
        if c == "]" and stack and stack[-1][0] == "[":
            stack.pop()
            if not text.startswith("(", i + 1):
                return "", f"Can't find end of TextUrl entity at byte offset {_offset(text, i)}"
            end = i + 2
            while end < n and text[end] != ")":
                end += 2 if text[end] == "\\" else 1
            if end >= n:
                return (
                    "",
                    f"Can't find end of a url for TextUrl entity at byte offset {_offset(text, i)}",
                )
            i = end + 1
            continue
        if c == ">" and (i == 0 or text[i - 1] == "\n"):
            i += 1
            continue
        if c in MD_RESERVED:
            return "", _reserved(c)
        out.append(c)
        i += 1
    if stack:
        marker, at = stack[-1]
        return (
            "",
            f"Can't find end of {_MD_NAMES[marker]} entity at byte offset {_offset(text, at)}",
        )
    return "".join(out), None


def _parse_html(text: str) -> tuple[str, str | None]:
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        j = text.find("<", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        m = _TAG.match(text, j)
        if m is None:
            return "", f'Unsupported start tag "" at byte offset {_offset(text, j)}'
        closing, name = m.group(1) == "/", m.group(2).lower()
        if name not in HTML_TAGS:
            kind = "end" if closing else "start"
            return "", f'Unsupported {kind} tag "{name}" at byte offset {_offset(text, j)}'
        if not closing:
            stack.append(name)
        elif not stack:
            return "", f"Unexpected end tag at byte offset {_offset(text, j)}"
        elif stack[-1] != name:
            at, want = _offset(text, j), stack[-1]
            return (
                "",
                f'Unmatched end tag at byte offset {at}, expected "</{want}>", found "</{name}>"',
            )
        else:
            stack.pop()
        i = m.end()
    if stack:
        return "", f'Can\'t find end tag corresponding to start tag "{stack[-1]}"'
    return html.unescape("".join(out)), None


def parse_text(text: str, parse_mode: str | None) -> tuple[str, str | None]:
    """Return ``(plain text, error)``; ``error`` is the part after "can't parse entities: "."""
    mode = (parse_mode or "").lower()
    if mode == "markdownv2":
        return _parse_markdown_v2(text)
    if mode == "html":
        return _parse_html(text)
    if mode == "markdown":  # legacy mode: only *, _, ` and [ are special; treat as plain
        return re.sub(r"[*_`]", "", text), None
    return text, None
