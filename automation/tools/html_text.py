"""HTML to the text a reader sees: hidden elements (a classic prompt-injection carrier) dropped
and counted, block elements ending lines, absolute links kept as `text (url)`.

Built on the standard library's tolerant parser; the few end-tag rules browsers apply are
reproduced so a hidden element without its end tag does not swallow the rest of the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Final
from urllib.parse import urlsplit

_VOID: Final = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param"}
    | {"source", "track", "wbr"}
)
_DROPPED: Final = frozenset({"script", "style", "noscript", "template", "head", "svg", "iframe"})
_HEAD_CONTENT: Final = frozenset({"title", "meta", "link", "style", "script", "base", "noscript"})
_BLOCKS: Final = frozenset(
    {"address", "article", "aside", "blockquote", "caption", "dd", "details", "dialog", "div"}
    | {"dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4"}
    | {"h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary"}
    | {"table", "tr", "ul"}
)
# Open elements a start tag closes, as browsers do (a subset of HTML's rules, enough that a
# hidden <li> or <p> without its end tag does not hide its siblings).
_CLOSED_BY: Final = {
    "li": {"li"},
    "dt": {"dt", "dd"},
    "dd": {"dt", "dd"},
    "tr": {"tr", "td", "th"},
    "td": {"td", "th"},
    "th": {"td", "th"},
    "option": {"option"},
    "a": {"a"},
}
_ZERO: Final = re.compile(r"[+-]?(?:0+(?:\.0*)?|\.0+)(?:[a-z]+|%)?")


@dataclass(frozen=True, kw_only=True)
class VisibleText:
    """What a reader of the page sees, and how many hidden elements were left out."""

    title: str
    text: str
    hidden: int


def visible_text(markup: str) -> VisibleText:
    """The title and visible text of an HTML document; block elements end lines."""
    parser = _TextParser()
    try:
        parser.feed(markup)
        parser.close()
    except AssertionError:
        # html.parser gives up on some malformed declarations ("<![foo["); keep what it read.
        parser.pieces.append("\n(the rest of the page could not be parsed)")
    lines = (
        " ".join(line.split()).removeprefix("| ") for line in "".join(parser.pieces).split("\n")
    )
    title = " ".join("".join(parser.title or []).split())
    return VisibleText(
        title=title[:300], text="\n".join(line for line in lines if line), hidden=parser.hidden
    )


@dataclass(slots=True, kw_only=True)
class _Open:
    tag: str
    drops: bool
    """Whether the element's content is left out (hidden, a script, the head)."""
    href: str | None = None
    start: int = 0


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.title: list[str] | None = None
        self.hidden = 0
        self._stack: list[_Open] = []
        self._dropping = 0
        self._in_title = False
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._close_implied(tag)
        if tag in _VOID:  # never has text: <input type=hidden> is as invisible as any input
            if tag in ("br", "hr") and not self._dropping:
                self.pieces.append("\n")
            return
        values = {name: value or "" for name, value in attrs}
        hidden = _is_hidden(tag, values)
        entry = _Open(tag=tag, drops=hidden or tag in _DROPPED or tag == "title")
        if tag == "title" and self.title is None and all(e.tag != "svg" for e in self._stack):
            self.title, self._in_title = [], True
        if not self._dropping:
            self.hidden += hidden
        if not self._dropping and not entry.drops:
            if tag in _BLOCKS:
                self.pieces.append("\n")
            if tag == "li":
                self.pieces.append("- ")
            elif tag in ("td", "th"):
                self.pieces.append(" | ")
            elif tag == "a":
                entry.href, entry.start = _absolute_link(values.get("href", "")), len(self.pieces)
        self._pre += tag == "pre"
        self._dropping += entry.drops
        self._stack.append(entry)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # HTML ignores the slash of a non-void element, so <div hidden/> hides what follows until
        # its parent ends and <script/> starts a script, as in a browser.
        self.handle_starttag(tag, attrs)
        if tag in self.CDATA_CONTENT_ELEMENTS:
            self.set_cdata_mode(tag)

    def handle_endtag(self, tag: str) -> None:
        # The nearest open element of that name ends, and with it every element left open inside
        # it; an end tag nothing matches is ignored.
        for depth in range(len(self._stack) - 1, -1, -1):
            if self._stack[depth].tag == tag:
                while len(self._stack) > depth:
                    self._pop()
                return

    def handle_data(self, data: str) -> None:
        if self._in_title and self.title is not None:
            self.title.append(data)
        elif not self._dropping:
            self.pieces.append(data if self._pre else data.replace("\r", " ").replace("\n", " "))

    def _close_implied(self, tag: str) -> None:
        while self._stack:
            top = self._stack[-1].tag
            if (
                (top == "head" and tag not in _HEAD_CONTENT)
                or (top == "p" and tag in _BLOCKS)
                or top in _CLOSED_BY.get(tag, ())
            ):
                self._pop()
            else:
                return

    def _pop(self) -> None:
        entry = self._stack.pop()
        self._dropping -= entry.drops
        self._pre -= entry.tag == "pre"
        if entry.tag == "title":
            self._in_title = False
        if self._dropping:
            return
        if entry.href:
            shown = "".join(self.pieces[entry.start :]).strip()
            if shown and shown != entry.href:
                self.pieces.append(f" ({entry.href})")
        if entry.tag in _BLOCKS:
            self.pieces.append("\n")


def _is_hidden(tag: str, attributes: dict[str, str]) -> bool:
    if "hidden" in attributes or attributes.get("aria-hidden", "").strip().lower() == "true":
        return True
    if tag == "dialog" and "open" not in attributes:
        return True  # browsers show a dialog only when it is open
    style: dict[str, str] = {}
    for declaration in attributes.get("style", "").split(";"):
        prop, _, value = declaration.partition(":")
        prop = prop.strip().lower()
        value = "".join(value.split()).lower().removesuffix("!important")
        if (
            (prop == "display" and value == "none")
            or (prop == "visibility" and value in ("hidden", "collapse"))
            or (prop in ("font-size", "opacity") and _ZERO.fullmatch(value))
            or (prop in ("clip", "clip-path") and value.startswith(("rect(0", "inset(50%")))
        ):
            return True
        style[prop] = value
    return _off_screen(style) or _invisible_colour(style)


_FAR: Final = re.compile(r"-\d{4,}(?:\.\d+)?(?:px|em|rem|pt|vw|vh)?")


def _off_screen(style: dict[str, str]) -> bool:
    # Positioned thousands of pixels away (the "left:-9999px" trick), or indented out of view.
    positioned = style.get("position") in ("absolute", "fixed")
    far = any(_FAR.fullmatch(style.get(side, "")) for side in ("left", "top", "right"))
    return (positioned and far) or bool(_FAR.fullmatch(style.get("text-indent", "")))


def _invisible_colour(style: dict[str, str]) -> bool:
    # Text in the colour of its own background, or fully transparent text.
    colour = style.get("color", "")
    background = style.get("background-color") or style.get("background", "")
    if colour in ("transparent", "rgba(0,0,0,0)"):
        return True
    return bool(colour) and colour == background


def _absolute_link(href: str) -> str | None:
    href = href.strip()
    try:
        parts = urlsplit(href)
    except ValueError:
        return None
    return href if parts.scheme.lower() in ("http", "https") and parts.netloc else None
