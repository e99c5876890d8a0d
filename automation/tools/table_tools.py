"""`table_read` and `table_write`: the table engine (`automation.files.tables`) on the user's
stored files.

The engine is CPU-bound (a large workbook takes seconds), so it runs in a worker thread; the
event loop keeps serving other conversations meanwhile. `table_write` stores the result as a
file of the user and sends it to their chat in the same call: the user asked for a file, and a
separate "now send it" step is one more round trip the model could forget.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from automation.files.tables import (
    Table,
    TableError,
    describe,
    read_table,
    render_text,
    write_csv,
    write_xlsx,
)
from automation.files.tool_args import TableReadArgs, TableWriteArgs
from automation.tools.base import RiskLevel, Tool, ToolContext, ToolError
from automation.tools.file_access import FileService, NoChat
from automation.tools.targets import file_ref
from memory.files import FileNotFound, FileRejected, format_size

_MIME: Final = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
}


def _files(ctx: ToolContext) -> FileService:
    if ctx.files is None:
        raise ToolError("file storage is not available in this process")
    return ctx.files


async def _load(files: FileService, file_id: int, sheet: str | None) -> Table:
    record = await files.get(file_id)
    if record is None:
        raise ToolError(f"there is no file #{file_id} among the user's files (see file_list)")
    try:
        data = await files.read(record.id)
        return await asyncio.to_thread(read_table, data, filename=record.name, sheet=sheet)
    except (FileNotFound, TableError) as exc:
        raise ToolError(f"{record.name} (#{record.id}): {exc}") from exc


class TableRead(Tool[TableReadArgs]):
    """Describes a stored CSV/Excel file, or answers a query on it."""

    name = "table_read"
    description = (
        "Read a CSV or Excel file the user stored: without query fields, its columns, types "
        "and sample rows; with where/group_by/aggregates/order_by/limit, the result."
    )
    on_demand = True
    args_model = TableReadArgs
    risk = RiskLevel.READ
    untrusted_output = True
    """A spreadsheet from someone else can carry planted instructions like any document."""
    reads = frozenset({"files"})

    def target(self, arguments: dict[str, Any]) -> str:
        """`file #<id>`."""
        return file_ref(arguments)

    async def run(self, args: TableReadArgs, ctx: ToolContext) -> str:
        table = await _load(_files(ctx), args.file_id, args.sheet)
        if args.is_empty:
            return await asyncio.to_thread(describe, table)
        try:
            result = await asyncio.to_thread(args.apply, table)
        except TableError as exc:
            raise ToolError(str(exc)) from exc
        return await asyncio.to_thread(render_text, result)


class TableWrite(Tool[TableWriteArgs]):
    """Writes a formatted Excel or CSV file for the user and sends it to their chat."""

    name = "table_write"
    description = (
        "Make an Excel (.xlsx, formatted) or CSV file for the user from rows you give (header + "
        "rows) or from a query on a stored file, store it and send it to them in this chat."
    )
    on_demand = True
    args_model = TableWriteArgs
    risk = RiskLevel.WRITE
    stays_private = True
    """The file goes to the user's own storage and their own chat, nowhere else."""
    reads = frozenset({"files"})

    async def run(self, args: TableWriteArgs, ctx: ToolContext) -> str:
        files = _files(ctx)
        table = args.given_table()
        if table is None:
            assert args.source_file_id is not None  # the model validator requires one source
            table = await _load(files, args.source_file_id, args.sheet)
        try:
            if not args.is_empty:
                table = await asyncio.to_thread(args.apply, table)
            if args.format == "xlsx":
                data = await asyncio.to_thread(
                    write_xlsx, table, title=args.title, sheet_name=args.sheet_name
                )
            else:
                data = await asyncio.to_thread(write_csv, table)
        except TableError as exc:
            raise ToolError(str(exc)) from exc
        name = args.output_name()
        try:
            record = await files.add(name, data, mime=_MIME[args.format], call_id=ctx.call_id)
            sent = await files.send(record.id)
        except (FileRejected, FileNotFound, NoChat) as exc:
            raise ToolError(str(exc)) from exc
        rows = len(table.rows)
        delivery = "sent to the user's chat" if sent else "already sent for this request"
        return (
            f"Wrote {record.name} (file #{record.id}, {rows} rows, {format_size(record.size)}); "
            f"{delivery}."
        )
