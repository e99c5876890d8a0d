"""Tool results as the text the model reads: text kept, media named, everything bounded."""

from __future__ import annotations

from mcp_types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

from automation.mcp.content import MAX_CHARS, render


def test_each_kind_of_content_becomes_a_line() -> None:
    result = CallToolResult(
        content=[
            TextContent(type="text", text="Found 2 files."),
            ResourceLink(type="resource_link", name="notes", uri="file:///srv/notes.md"),
            EmbeddedResource(
                type="resource",
                resource=TextResourceContents(uri="file:///srv/todo.txt", text="buy milk"),
            ),
            EmbeddedResource(
                type="resource",
                resource=BlobResourceContents(
                    uri="file:///srv/a.pdf", mime_type="application/pdf", blob="A" * 4096
                ),
            ),
            AudioContent(type="audio", data="AAAA", mime_type="audio/wav"),
        ]
    )
    assert render(result).splitlines() == [
        "Found 2 files.",
        "[resource link notes: file:///srv/notes.md]",
        "[resource file:///srv/todo.txt]",
        "buy milk",
        "[resource file:///srv/a.pdf, application/pdf, 3 KB]",
        "[audio audio/wav, 3 bytes]",
    ]


def test_structured_content_is_used_when_there_is_no_text() -> None:
    result = CallToolResult(content=[], structured_content={"temp": 21.5, "city": "上海"})
    assert render(result) == '{"temp":21.5,"city":"上海"}'
    assert render(CallToolResult(content=[])) == "(no output)"


def test_long_results_are_cut() -> None:
    text = render(CallToolResult(content=[TextContent(type="text", text="é" * 50_000)]))
    assert len(text) == MAX_CHARS and text.endswith("… (truncated)")
