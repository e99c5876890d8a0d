"""`dadang policy` and `dadang approvals` as the owner runs them, next to a running service."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from agent.policy.rules import DEFAULT_POLICY, POLICY_FILE
from memory.audit import AuditLog
from memory.memories import NewMemory
from tests.conftest import make_settings
from tests.fakes import vllm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM
from tests.test_pairing_admin import cli

OWNER = 3003


def test_policy_check_shows_the_effective_rule_of_every_tool(clean_environ: Path) -> None:
    result = cli("policy", "check")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines() if line}
    assert lines["memory_forget"][1:] == ["irreversible", "ask", "risk.irreversible"]
    assert lines["reminder_create"][1:] == ["write", "allow", "risk.write"]
    assert lines["web_read"][1:] == ["read", "allow", "risk.read"]
    assert "absent: documented defaults" in result.output
    assert "approvals expire after 480 min" in result.output


def test_policy_check_reports_a_broken_file_and_records_a_change(clean_environ: Path) -> None:
    clean_environ.mkdir(parents=True, exist_ok=True)
    path = clean_environ / POLICY_FILE
    path.write_text("risk:\n  write: sometimes\n")
    broken = cli("policy", "check")
    assert broken.exit_code == 1
    assert "risk.write" in broken.output and str(path) in broken.output
    path.write_text(DEFAULT_POLICY.replace("  memory_forget: allow", "  memory_forget: allow"))
    path.write_text(DEFAULT_POLICY.replace("tools: {}", "tools:\n  memory_forget: allow"))
    first = cli("policy", "check")
    assert first.exit_code == 0, first.output
    assert "memory_forget            irreversible   allow  tools.memory_forget" in first.output
    assert "recorded in the audit trail" in first.output
    assert "recorded in the audit trail" not in cli("policy", "check").output  # unchanged
    path.write_text(DEFAULT_POLICY)
    assert "recorded in the audit trail" in cli("policy", "check").output
    shown = cli("audit", "show").output
    assert shown.count("policy_loaded") == 1 and shown.count("policy_changed") == 1


async def test_the_owner_answers_from_the_terminal_and_the_service_resumes(
    clean_environ: Path, fake_llm: FakeVLLM, fake_tg: FakeTelegram, service_factory: Any
) -> None:
    svc = await service_factory(
        make_settings(clean_environ, llm=fake_llm, tg=fake_tg, telegram_allowed_users=[OWNER])
    )
    owner = await svc.runtime.stores.identities.owner()
    assert owner is not None
    kept = await svc.runtime.memory.remember(owner.id, NewMemory(content="keep me"))
    gone = await svc.runtime.memory.remember(owner.id, NewMemory(content="drop me"))
    for memory in (kept, gone):
        # Only the call: the paused turn's last reply is scripted once it resumes.
        fake_llm.push(vllm.tool_calls([("memory_forget", {"memory_id": memory.id})]))
        fake_tg.push_message(OWNER, f"forget #{memory.id}")
        await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=1 + (memory is gone))
    listed = await asyncio.to_thread(cli, "approvals", "list")
    ids = [int(line.split()[0][1:]) for line in listed.output.splitlines()]
    assert len(ids) == 2 and "memory_forget" in listed.output
    newer, older = ids
    fake_llm.push(vllm.text("ok"), vllm.text("ok"))
    rejected = await asyncio.to_thread(cli, "approvals", "reject", str(older))
    assert rejected.exit_code == 0 and "rejected" in rejected.output
    approved = await asyncio.to_thread(cli, "approvals", "approve", str(newer), "--always")
    assert approved.exit_code == 0, approved.output
    again = await asyncio.to_thread(cli, "approvals", "approve", str(newer))
    assert again.exit_code == 1 and "already approved" in again.output
    # The service notices decisions made elsewhere within its 5 s tick.
    await fake_tg.wait_sent(chat_id=OWNER, method="sendMessage", count=4, timeout=15)
    remaining = {m.content for m in await svc.runtime.memory.store.recent(owner.id, limit=10)}
    assert "keep me" in remaining and "drop me" not in remaining
    grants = await asyncio.to_thread(cli, "policy", "grants")
    assert "memory_forget  (any target)" in grants.output
    grant_id = grants.output.split()[0][1:]
    assert (await asyncio.to_thread(cli, "policy", "ungrant", grant_id)).exit_code == 0
    assert (await asyncio.to_thread(cli, "policy", "grants")).output.strip() == "no grants"
    assert (await asyncio.to_thread(cli, "policy", "ungrant", grant_id)).exit_code == 1
    actions = [r.action for r in await AuditLog(svc.runtime.stores.db).entries(limit=None)]
    for action in ("approval_rejected", "approval_approved", "policy_grant_added"):
        assert action in actions
    assert "policy_grant_withdrawn" in actions
