"""The terminal channel delivers files by writing them to its folder and printing the path."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

from agent.runtime.service import Runtime
from connectors.cli import TerminalConnector
from memory.migrate import upgrade
from tests.conftest import make_settings
from tests.fakes import vllm
from tests.fakes.vllm import FakeVLLM


async def test_a_sent_file_is_written_privately_without_replacing_an_earlier_one(
    tmp_path: Path,
) -> None:
    printed: list[str] = []
    terminal = TerminalConnector(write=printed.append, files_dir=tmp_path / "out")
    first = await terminal.send_file("local", name="报告.pdf", data=b"%PDF-1", caption="Here")
    second = await terminal.send_file("local", name="报告.pdf", data=b"%PDF-2")

    assert first != second
    assert (tmp_path / "out" / "报告.pdf").read_bytes() == b"%PDF-1"
    assert (tmp_path / "out" / "报告 (2).pdf").read_bytes() == b"%PDF-2"
    assert printed == [
        f"Here\n📎 {tmp_path / 'out' / '报告.pdf'}",
        f"📎 {tmp_path / 'out' / '报告 (2).pdf'}",
    ]
    assert stat.S_IMODE((tmp_path / "out" / "报告.pdf").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o700


async def test_file_send_in_the_terminal_chat_writes_the_owners_file(
    clean_environ: Path, fake_llm: FakeVLLM
) -> None:
    printed: list[str] = []
    folder = clean_environ / "outbox-files"
    terminal = TerminalConnector(write=printed.append, files_dir=folder)
    settings = make_settings(clean_environ, llm=fake_llm)
    await asyncio.to_thread(upgrade, settings.effective_database_url)
    runtime = Runtime(settings, [terminal])
    await runtime.start()
    try:
        owner = await runtime.stores.identities.owner()
        assert owner is not None
        record = await runtime.files.add(
            owner.id, "summary.csv", b"a,b\n1,2\n", mime="text/csv", origin="generated"
        )
        fake_llm.push(
            vllm.tool_calls([("file_send", {"file_id": record.id, "caption": "Your summary"})]),
            vllm.text("Sent."),
        )
        await terminal.say(f"send me file #{record.id}", message_id="t1")
        async with asyncio.timeout(10):
            await runtime.wait_idle()
            while "Sent." not in printed:  # the reply is delivered just after the turn ends
                await asyncio.sleep(0.02)
        assert (folder / "summary.csv").read_bytes() == b"a,b\n1,2\n"
        assert printed[0] == f"Your summary\n📎 {folder / 'summary.csv'}"
    finally:
        await runtime.stop()
