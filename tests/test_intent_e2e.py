"""The README walkthrough, end to end: "把这周的客户反馈整理成行动项，避开我之前否掉的方案，然后订个会议室".

Real parts: the demo office API on loopback, its OpenAPI document imported with the CLI, the
owner's API token stored encrypted with the CLI, the service with Telegram (fake Bot API) and
the scripted model (fake vLLM). The model is scripted, so what is tested is everything around
it: the plan shown and edited, the real feedback reaching the model as untrusted data, the
rejected proposal in the prompt, the Excel file built and sent, the booking held for approval
and made only after the tap, the report, the audit trail.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from examples.office_api import serve
from memory.audit import AuditLog
from memory.memories import NewMemory
from memory.models import MemoryKind
from tests.conftest import make_settings
from tests.fakes import vllm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM
from tests.test_pairing_admin import cli

OWNER = 9119
TOKEN = "office-demo-token-7f3a"
INTENT = "把这周的客户反馈整理成行动项，避开我之前否掉的方案，然后订个会议室"
REJECTED = "用户否掉了在黄山会议室开反馈评审会的方案（太小，只能坐 4 人）"
DOCUMENT = Path(__file__).resolve().parent.parent / "examples" / "office_api" / "openapi.yaml"

PLAN = ["读取本周客户反馈", "整理行动项并生成 Excel", "查询泰山会议室空闲", "预订会议室"]
ACTIONS = [
    ["优先级", "问题", "行动项", "负责人"],
    ["高", "发票导出慢", "排查导出接口性能", "后端组"],
    ["高", "登录超时", "延长会话并加提示", "前端组"],
    ["中", "移动端布局错乱", "修复小屏样式", "前端组"],
]
BOOKING = {
    "room_id": "room-taishan",
    "start": "2025-03-17T10:00:00+08:00",
    "end": "2025-03-17T11:00:00+08:00",
    "title": "反馈行动项评审",
    "attendees": ["me", "后端组", "前端组"],
}


def steps(*done: int) -> list[dict[str, str]]:
    return [
        {"title": t, "status": "done" if n in done else "pending"} for n, t in enumerate(PLAN, 1)
    ]


def script(llm: FakeVLLM) -> None:
    llm.push(
        vllm.tool_calls([("task_plan", {"steps": steps()})]),
        vllm.tool_calls([("office_list_feedback", {"since": "2025-03-10", "until": "2025-03-14"})]),
        vllm.tool_calls(
            [
                ("task_plan", {"steps": steps(1)}),
                (
                    "table_write",
                    {
                        "header": ACTIONS[0],
                        "rows": ACTIONS[1:],
                        "file_name": "客户反馈行动项",
                        "title": "本周客户反馈行动项",
                    },
                ),
            ]
        ),
        vllm.tool_calls(
            [
                ("task_plan", {"steps": steps(1, 2)}),
                ("office_get_room_availability", {"id": "room-taishan", "date": "2025-03-17"}),
            ]
        ),
        vllm.tool_calls([("office_create_booking", BOOKING)]),
        vllm.tool_calls([("task_plan", {"steps": steps(1, 2, 3, 4)})]),
        vllm.text(
            "已完成：行动项 Excel 已发给你；泰山会议室 3 月 17 日 10:00 已预订（没有用黄山）。"
        ),
    )


def prepare_home(home: Path, office_url: str) -> None:
    """What the README tells the user to do, through the same CLI commands."""
    imported = cli(
        "tools", "import-openapi", str(DOCUMENT), "--name", "office", "--base-url", office_url
    )
    assert imported.exit_code == 0, imported.output
    stored = cli("secrets", "set", "office_token", stdin=TOKEN + "\n")
    assert stored.exit_code == 0, stored.output
    host = office_url.removeprefix("http://")
    (home / "policy.yaml").write_text(
        "tools:\n  office_create_booking: ask\n  office_cancel_booking: ask\n"
        f'scopes:\n  api_hosts: ["{host}"]\n',
        encoding="utf-8",
    )


async def test_feedback_to_action_items_to_a_booking_after_approval(
    clean_environ: Path,
    fake_llm: FakeVLLM,
    fake_tg: FakeTelegram,
    service_factory: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve(token=TOKEN, today=date(2025, 3, 14)) as office:
        await asyncio.to_thread(prepare_home, clean_environ, office.url)
        settings = make_settings(
            clean_environ, llm=fake_llm, tg=fake_tg, telegram_allowed_users=[OWNER]
        )
        svc = await service_factory(settings)
        owner = await svc.runtime.stores.identities.owner()
        await svc.runtime.memory.remember(
            owner.id, NewMemory(content=REJECTED, kind=MemoryKind.REJECTED_PROPOSAL)
        )
        bookings_before = set(office.state.bookings)
        script(fake_llm)

        fake_tg.push_message(OWNER, INTENT)
        request = (await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=2))[-1]

        # The booking waits for the user; everything before it has happened.
        assert "office_create_booking" in request["text"]
        assert "room-taishan" in request["text"]
        assert set(office.state.bookings) == bookings_before
        documents = fake_tg.sent_to(OWNER, method="sendDocument")
        assert len(documents) == 1
        upload = documents[0]["document"]
        assert upload["filename"] == "客户反馈行动项.xlsx"
        sheet = load_workbook(io.BytesIO(upload["content"])).active
        values = [[c.value for c in row] for row in sheet.iter_rows()]
        assert values[0][0] == "本周客户反馈行动项"  # title row
        assert values[1] == ACTIONS[0] and values[2:] == ACTIONS[1:]
        assert sheet["A2"].font.bold

        buttons = {
            b["callback_data"].rsplit(":", 1)[1]: b["callback_data"]
            for row in request["reply_markup"]["inline_keyboard"]
            for b in row
        }
        fake_tg.push_callback(OWNER, buttons["ok"], message_id=request["message_id"])
        sent = await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=3)
        assert sent[-1]["text"].startswith("已完成")

        # The booking exists now, once, in the room the plan chose.
        new = [b for k, b in office.state.bookings.items() if k not in bookings_before]
        assert [(b.room_id, b.title) for b in new] == [("room-taishan", "反馈行动项评审")]

    # The plan was one message, edited in place up to "all done".
    plan_message = sent[0]
    assert plan_message["text"].splitlines()[0] == "计划（0/4）"
    edits = [
        e
        for e in fake_tg.sent_to(OWNER, method="editMessageText")
        if e["message_id"] == plan_message["message_id"]
    ]
    assert edits[-1]["text"].splitlines()[0] == "计划（4/4）"

    # The model saw the rejected proposal, and the real feedback as untrusted data.
    first_prompt = json.dumps(fake_llm.requests[0]["messages"], ensure_ascii=False)
    assert REJECTED in first_prompt
    feedback = next(
        m["content"]
        for m in fake_llm.requests[2]["messages"]
        if m["role"] == "tool" and "office_list_feedback" in m["content"]
    )
    assert 'trust="untrusted"' in feedback and "fb-0" in feedback

    # The token never reached the model, the chat or the audit trail; the audit chain holds.
    everything = json.dumps(fake_llm.requests, ensure_ascii=False) + json.dumps(
        fake_tg.sent_to(OWNER), ensure_ascii=False, default=str
    )
    assert TOKEN not in everything
    assert TOKEN not in caplog.text
    audit = AuditLog(svc.runtime.stores.db)
    rows = await audit.entries(limit=None)
    assert TOKEN not in json.dumps([r.detail for r in rows], ensure_ascii=False)
    calls = [
        (r.target, r.detail["decision"], r.detail["ran"]) for r in rows if r.action == "tool_call"
    ]
    assert ("office_create_booking", "allow", True) in calls
    assert ("table_write", "allow", True) in calls
    assert [r.action for r in rows].count("approval_approved") == 1
    assert (await audit.verify())[1] == []
