"""A tool result's content blocks as the text the model reads.

Text is passed through; images, audio and binary resources are only named (the model cannot see
them, and base64 would fill the context); the whole is cut at `MAX_CHARS`.
"""

from __future__ import annotations

import json
from typing import Final

from mcp_types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
)

MAX_CHARS: Final = 8000
"""Longest result handed to the model; MCP servers can return whole documents."""
TRUNCATED: Final = "… (truncated)"


def render(result: CallToolResult, *, limit: int = MAX_CHARS) -> str:
    """The result's text parts joined, other parts summarised, cut to `limit` characters."""
    parts = [_block(block) for block in result.content]
    text = "\n".join(part for part in parts if part)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False, separators=(",", ":"))
    return truncate(text or "(no output)", limit)


def truncate(text: str, limit: int) -> str:
    """`text`, or its start and a marker when longer than `limit`."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(TRUNCATED))] + TRUNCATED


def _block(block: ContentBlock) -> str:
    if isinstance(block, TextContent):
        return block.text
    if isinstance(block, ImageContent):
        return f"[image {block.mime_type}, {_size(block.data)}]"
    if isinstance(block, AudioContent):
        return f"[audio {block.mime_type}, {_size(block.data)}]"
    if isinstance(block, ResourceLink):
        return f"[resource link {block.name}: {block.uri}]"
    if isinstance(block, EmbeddedResource):
        resource = block.resource
        if isinstance(resource, BlobResourceContents):
            kind = resource.mime_type or "binary"
            return f"[resource {resource.uri}, {kind}, {_size(resource.blob)}]"
        return f"[resource {resource.uri}]\n{resource.text}"
    return f"[{getattr(block, 'type', 'unknown')} content]"


def _size(base64_data: str) -> str:
    size = len(base64_data) * 3 // 4
    return f"{size} bytes" if size < 1024 else f"{size // 1024} KB"
