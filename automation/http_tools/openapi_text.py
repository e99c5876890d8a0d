"""Short plain text and snake_case names from OpenAPI prose.

Why so short: every tool's description and parameters go into every prompt, and an API of 200
operations would otherwise spend more of the context on documentation than on the conversation.
A description keeps its first sentences up to `DESCRIPTION_CHARS`; markdown and HTML go.
"""

from __future__ import annotations

import re
from typing import Final

DESCRIPTION_CHARS: Final = 160
"""Longest tool description written."""
PARAMETER_CHARS: Final = 80
"""Longest parameter description written."""
ELLIPSIS: Final = "…"

_TAG: Final = re.compile(r"<[^<>]{1,200}>")
_IMAGE: Final = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK: Final = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MARKUP: Final = re.compile(r"(\*\*|__|`|^#+\s*)", re.MULTILINE)
_SENTENCE_END: Final = re.compile(r"[.!?。！？](?=\s|$)")


def brief(text: object, limit: int) -> str:
    """The first paragraph of `text` as one plain line of at most `limit` characters.

    Cut after the last whole sentence that fits when that keeps at least half, else after the
    last whole word, with an ellipsis.
    """
    if not isinstance(text, str):
        return ""
    plain = _MARKUP.sub("", _LINK.sub(r"\1", _IMAGE.sub("", _TAG.sub(" ", text))))
    paragraph = next((p for p in re.split(r"\n\s*\n", plain) if p.strip()), "")
    line = " ".join(paragraph.split())
    if len(line) <= limit:
        return line
    ends = [m.end() for m in _SENTENCE_END.finditer(line, 0, limit + 1)]
    if ends and ends[-1] >= limit // 2:
        return line[: ends[-1]]
    cut = line[: limit - len(ELLIPSIS)]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-") + ELLIPSIS


def snake(text: str) -> str:
    """`listFeedback` → `list_feedback`, `HTTPServer-v2` → `http_server_v2`; ASCII only."""
    words = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", words)
    return re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_")
