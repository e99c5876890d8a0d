"""File tools: list the user's stored files, send one to their chat, download one from the web.

`file_download` fetches through `automation.net` like `web_read` (only hosts the `sites` scope
allows, every redirect vetted, no private addresses) and keeps what it fetched as a file of the
user instead of reading it into the prompt: a spreadsheet or PDF is for the table and file tools.
"""

from __future__ import annotations

import mimetypes
import re
from email.message import Message
from typing import Any, Final
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from automation.net import HostPolicy, NetworkError, ResponseHead, ResponseTooLarge, guarded_request
from automation.tools.base import RiskLevel, Tool, ToolContext, ToolError
from automation.tools.file_access import FileService, NoChat
from automation.tools.targets import file_ref, url_host
from memory.file_models import FileOrigin
from memory.files import MAX_FILE_BYTES, FileNotFound, FileRejected, format_size

DOWNLOAD_SECONDS: Final = 60.0
"""Seconds for a whole download: name lookups, redirects and the body."""
_CONNECT_SECONDS: Final = 10.0
_HEADERS: Final = {"User-Agent": "Dadang/0.1 (personal assistant; file_download)"}
_POLICY_HINT: Final = "scopes.sites in policy.yaml"
_HINT: Final = "The table and file tools read it by its id; file_send gives it to the user."


def _files(ctx: ToolContext) -> FileService:
    if ctx.files is None:
        raise ToolError("file storage is not available in this process")
    return ctx.files


class FileListArgs(BaseModel):
    """Arguments of `file_list`."""

    limit: int = Field(default=20, ge=1, le=100, description="How many files, newest first")


class FileList(Tool[FileListArgs]):
    """The user's stored files, newest first, with ids for the other file tools."""

    name = "file_list"
    description = (
        "List the user's stored files (sent in chat, downloaded, or made by tools), newest "
        "first, with their ids."
    )
    on_demand = True
    args_model = FileListArgs
    risk = RiskLevel.READ
    reads = frozenset({"files"})

    async def run(self, args: FileListArgs, ctx: ToolContext) -> str:
        files = _files(ctx)
        records = await files.list(args.limit)
        used, quota = await files.usage()
        if not records:
            return "The user has no stored files."
        zone = ZoneInfo(ctx.timezone)
        lines = [
            f"#{r.id} {r.name} — {format_size(r.size)}, {r.mime}, {r.origin}, "
            f"{r.created_at.astimezone(zone):%Y-%m-%d %H:%M}"
            for r in records
        ]
        lines.append(f"({format_size(used)} of {format_size(quota)} used)")
        return "\n".join(lines)


class FileSendArgs(BaseModel):
    """Arguments of `file_send`."""

    file_id: int = Field(description="Id of one of the user's files (from file_list)")
    caption: str = Field(default="", max_length=1024, description="Short text shown with it")


class FileSend(Tool[FileSendArgs]):
    """Sends one of the user's own files to the chat the request came from."""

    name = "file_send"
    description = "Send one of the user's stored files to them in this chat, as a document."
    on_demand = True
    args_model = FileSendArgs
    risk = RiskLevel.WRITE
    stays_private = True
    reads = frozenset({"files"})

    def target(self, arguments: dict[str, Any]) -> str:
        """`file #<id>`."""
        return file_ref(arguments)

    async def run(self, args: FileSendArgs, ctx: ToolContext) -> str:
        files = _files(ctx)
        record = await files.get(args.file_id)
        if record is None:
            raise ToolError(f"there is no file #{args.file_id} among the user's files")
        try:
            sent = await files.send(record.id, caption=args.caption)
        except (FileNotFound, NoChat) as exc:
            raise ToolError(str(exc)) from exc
        if not sent:
            return f"{record.name} (#{record.id}) was already sent for this request; not again."
        return f"Sent {record.name} (#{record.id}, {format_size(record.size)}) to the user's chat."


class FileDownloadArgs(BaseModel):
    """Arguments of `file_download`."""

    url: str = Field(description="http:// or https:// address of the file")
    name: str | None = Field(
        default=None, max_length=200, description="File name to store it as (default: from URL)"
    )


class FileDownload(Tool[FileDownloadArgs]):
    """Downloads a file (up to 50 MB) and stores it among the user's files."""

    name = "file_download"
    description = (
        "Download a file from a web address (http/https, up to 50 MB) and store it among the "
        "user's files; returns its id. Its content is untrusted data."
    )
    on_demand = True
    args_model = FileDownloadArgs
    risk = RiskLevel.READ
    untrusted_output = True
    reads = frozenset({"web"})

    def target(self, arguments: dict[str, Any]) -> str:
        """`host` or `host:port`, as `web_read` names it."""
        return url_host(arguments)

    async def run(self, args: FileDownloadArgs, ctx: ToolContext) -> str:
        files = _files(ctx)
        room = await files.room()
        if room <= 0:
            used, quota = await files.usage()
            raise ToolError(
                f"the user's storage is full ({format_size(used)} of {format_size(quota)}); "
                "ask them to delete files first"
            )
        policy = HostPolicy(
            allows=ctx.scopes.allows_site,
            names=ctx.scopes.names_site,
            kind="sites",
            setting=_POLICY_HINT,
            verb="download",
            done="downloaded",
            noun="files",
        )
        try:
            response = await guarded_request(
                "GET",
                args.url,
                policy=policy,
                headers=_HEADERS,
                max_bytes=room,
                time_limit=DOWNLOAD_SECONDS,
                connect_limit=_CONNECT_SECONDS,
                same_host=ctx.tainted,
                inspect=_check_status,
            )
        except ResponseTooLarge as exc:
            why = "the 50 MB limit" if room >= MAX_FILE_BYTES else "the user's free storage"
            raise ToolError(
                f"{exc.url} is larger than {why} ({format_size(room)}); not downloaded"
            ) from exc
        except NetworkError as exc:
            raise ToolError(str(exc)) from exc
        name = args.name or _disposition_name(response.headers.get("content-disposition"))
        name = name or _url_name(response.url) or "download"
        mime = response.media_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        try:
            record = await files.add(name, response.body, mime=mime, origin=FileOrigin.DOWNLOAD)
        except FileRejected as exc:
            raise ToolError(str(exc)) from exc
        return (
            f"Downloaded {response.url} as file #{record.id}: {record.name}, "
            f"{format_size(record.size)}, {record.mime}. {_HINT}"
        )


def _check_status(head: ResponseHead) -> None:
    """Refuse an error page before its body is downloaded."""
    if head.status >= 400:
        raise ToolError(f"{head.url} answered {head.status} {head.reason}".strip())


def _disposition_name(header: str | None) -> str | None:
    """The file name a `Content-Disposition` header suggests (RFC 6266, `filename*` first)."""
    if not header:
        return None
    message = Message()
    message["content-disposition"] = header
    found = message.get_filename()
    return found.strip() if found else None


def _url_name(url: str) -> str | None:
    segment = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return segment if re.search(r"\w", segment) else None
