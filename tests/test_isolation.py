"""Two people on one instance: what is stored for B never reaches A, and A cannot change it.

Every stored text of A's carries ALICEONLY and every one of B's BOBONLY, so "B's data is absent"
is one substring test on whatever A was shown (and A's marker shows the command did answer).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import typer.main
from click.testing import Result
from sqlalchemy import insert

from agent.cli.main import app
from agent.settings import load_settings
from memory.approval_models import PolicyGrant
from memory.approvals import ApprovalStore, NewApproval
from memory.audit import AuditLog
from memory.db import Database
from memory.identities import IdentityStore
from memory.memories import MemoryStore, NewMemory
from memory.notes import NoteStore
from memory.proactive import ProactiveStore
from memory.secrets import Keyring, SecretStore
from memory.tool_access import ToolAccess
from memory.types import utcnow
from tests.conftest import Service, make_settings
from tests.fakes import vllm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vllm import FakeVLLM
from tests.test_cli import dadang
from tests.test_pairing_admin import cli, on_db, verify

A_TG, B_TG = 7701, 7702
A, B = f"telegram:{A_TG}", f"telegram:{B_TG}"
A_MARK, B_MARK = "ALICEONLY", "BOBONLY"
LATER = "2099-05-01T09:00"


@pytest.fixture
def url(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test database (SQLite and PostgreSQL), also used by every `dadang` command."""
    monkeypatch.setenv("DADANG_DATABASE_URL", db_url)
    return db_url


def commands_taking_a_user() -> set[str]:
    """`memory list`, `jobs add`, …: every command of the CLI with a `--user` option."""
    found: set[str] = set()

    # Typer vendors its own click (typer._click), so the walk goes by shape, not by class.
    def walk(command: Any, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)
        if isinstance(subcommands, dict):
            for name, sub in subcommands.items():
                walk(sub, (*path, name))
        elif any("--user" in getattr(p, "opts", ()) for p in command.params):
            found.add(" ".join(path))

    walk(typer.main.get_command(app), ())
    return found


@dataclass
class AsA:
    """Runs `dadang …` and remembers which commands were given A as their user."""

    ran: set[str] = field(default_factory=set)

    def __call__(self, *args: str, stdin: str | None = None) -> Result:
        if "--user" in args and args[args.index("--user") + 1] == A:
            self.ran.add(" ".join(args[:2]))
        return cli(*args, stdin=stdin)

    def shows_only_a(self, *args: str, stdin: str | None = None) -> Result:
        result = self(*args, stdin=stdin)
        assert result.exit_code == 0, (args, result.output)
        shown = result.output.lower()
        assert A_MARK.lower() in shown, (args, result.output)  # it did answer, with A's data
        assert B_MARK.lower() not in shown, (args, result.output)
        return result


@dataclass(frozen=True)
class Seeded:
    a: int
    b: int
    b_memory: int
    """The number of B's memory `bobonly-1`."""
    b_job: int
    b_grant: int


def _seed_memories(tmp_path: Path, spec: str, mark: str) -> None:
    lines = [
        {"id": f"{mark.lower()}-1", "content": f"{mark} drinks jasmine tea from Lisbon"},
        {"id": "shared-1", "content": f"{mark} flies to Lisbon every May", "kind": "commitment"},
    ]
    data = tmp_path / f"{mark}.jsonl"
    data.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert cli("memory", "import", str(data), "--user", spec).exit_code == 0


def seed(url: str, tmp_path: Path) -> Seeded:
    """Both users with memories, notes, a reminder, secrets, audit rows and proactive entries."""

    async def people(db: Database) -> tuple[int, int]:
        identities = IdentityStore(db)
        await identities.ensure_owner(name="Olga")
        ids = []
        for tg, name in ((A_TG, "Alice"), (B_TG, "Bob")):
            ids.append(
                await identities.link(
                    user_id=None, channel="telegram", external_id=str(tg), display_name=name
                )
            )
        return ids[0], ids[1]

    a, b = on_db(url, people)
    jobs = {}
    for spec, mark in ((A, A_MARK), (B, B_MARK)):
        _seed_memories(tmp_path, spec, mark)
        added = cli("jobs", "add", "--user", spec, "--text", f"{mark} dentist", "--at", LATER)
        assert added.exit_code == 0, added.output
        jobs[mark] = int(added.stdout)
        for name in ("api_token", f"{mark.lower()}_bank"):
            stored = cli("secrets", "set", name, "--user", spec, stdin=f"{mark}-value-4711\n")
            assert stored.exit_code == 0, stored.output
    assert cli("tools", "disable", "web_read", "--user", B).exit_code == 0

    async def rows(db: Database) -> int:
        for uid, mark in ((a, A_MARK), (b, B_MARK)):
            await NoteStore(db).add(user_id=uid, text=f"{mark} locker 12", source_message_id=None)
            await AuditLog(db).append(
                actor="agent", action="tool_call", user_id=uid, target=f"{mark}-target"
            )
            await ProactiveStore(db).log(
                user_id=uid,
                source="heartbeat",
                decision="sent",
                reason=f"{mark} seemed tired",
                text=f"{mark}, how are you?",
            )
        found = await MemoryStore(db).by_external_id(b, "bobonly-1")
        assert found is not None
        return found.id

    async def contract(db: Database) -> int:
        """A pending approval request and an "Always allow" grant each; B's grant id."""
        approvals = ApprovalStore(db, AuditLog(db))
        grant_ids = {}
        for n, (uid, mark) in enumerate(((a, A_MARK), (b, B_MARK))):
            await approvals.request(
                NewApproval(
                    user_id=uid,
                    message_id=900 + n,
                    call_id="call-1",
                    tool="web_read",
                    risk="read",
                    target=f"{mark.lower()}.example",
                    arguments=json.dumps({"url": f"https://{mark}.example/"}),
                    reason="taint",
                    channel="telegram",
                    chat_id=str(A_TG if uid == a else B_TG),
                    expires_at=utcnow() + timedelta(hours=1),
                ),
                lambda i: (f"request {i}", []),
            )
            async with db.engine.begin() as conn:
                grant_ids[uid] = (
                    await conn.execute(
                        insert(PolicyGrant)
                        .values(
                            user_id=uid,
                            tool="web_read",
                            target=f"{mark.lower()}.example",
                            created_at=utcnow(),
                        )
                        .returning(PolicyGrant.id)
                    )
                ).scalar_one()
        return grant_ids[b]

    b_memory = on_db(url, rows)
    return Seeded(a=a, b=b, b_memory=b_memory, b_job=jobs[B_MARK], b_grant=on_db(url, contract))


def everything_of_b(url: str, b: int) -> dict[str, Any]:
    """B's data as B sees it (through the CLI) plus what no command prints (notes, values)."""
    seen = {
        " ".join(args): cli(*args, "--user", B).output
        for args in (
            ("memory", "export"),
            ("jobs", "list", "--all", "--json"),
            ("secrets", "list"),
            ("audit", "export"),
            ("proactive", "log", "--json"),
            ("approvals", "list", "--all"),
            ("policy", "grants"),
        )
    }
    keyring = Keyring.load(load_settings().home, None)

    async def stored(db: Database) -> dict[str, Any]:
        secrets = SecretStore(db, keyring)
        return {
            "notes": [n.text for n in await NoteStore(db).list(user_id=b)],
            "secrets": [await secrets.get(b, n) for n in ("api_token", "bobonly_bank")],
            "tool_access": [
                (r.pattern, r.enabled) for r in await ToolAccess(db, AuditLog(db)).rules(b)
            ],
        }

    return seen | on_db(url, stored)


def read_everything_as_a(as_a: AsA, tmp_path: Path, seeded: Seeded) -> None:
    as_a.shows_only_a("memory", "list", "--user", A)
    listed = json.loads(as_a.shows_only_a("memory", "list", "--user", A, "--json").stdout)
    assert len(listed) == 2
    # B's memories match this query better than anything of A's: only A's may come back.
    as_a.shows_only_a("memory", "search", "BOBONLY jasmine tea Lisbon", "--user", A, "--json")
    queries = tmp_path / "queries.jsonl"
    queries.write_text(json.dumps({"qid": "q", "query": "who flies to Lisbon in May?"}) + "\n")
    as_a.shows_only_a("memory", "search", "--queries", str(queries), "--user", A)
    as_a.shows_only_a("memory", "show", "shared-1", "--user", A)  # B has a `shared-1` too
    as_a.shows_only_a("memory", "export", "--user", A)
    as_a.shows_only_a("jobs", "list", "--user", A, "--all")
    jobs = as_a.shows_only_a("jobs", "list", "--user", A, "--json").stdout.splitlines()
    assert {json.loads(line)["user_id"] for line in jobs} == {seeded.a}
    as_a.shows_only_a("secrets", "list", "--user", A)
    as_a.shows_only_a("audit", "show", "--user", A)
    exported = as_a.shows_only_a("audit", "export", "--user", A).stdout.splitlines()
    assert {json.loads(line)["user_id"] for line in exported} == {seeded.a}
    as_a.shows_only_a("proactive", "log", "--user", A)
    as_a.shows_only_a("proactive", "log", "--user", A, "--json")
    as_a.shows_only_a("approvals", "list", "--user", A)
    as_a.shows_only_a("policy", "grants", "--user", A)
    # B switched web_read off for themselves: A still has it.
    tools = as_a("tools", "list", "--json", "--user", A).stdout.splitlines()
    assert {r["name"]: r["enabled"] for r in map(json.loads, tools)}["web_read"] is True


def try_bs_things_as_a(as_a: AsA, tmp_path: Path, seeded: Seeded) -> None:
    refused = [
        ("memory", "show", str(seeded.b_memory)),
        ("memory", "forget", str(seeded.b_memory)),
        ("memory", "forget", "bobonly-1"),
        ("secrets", "delete", "bobonly_bank"),
    ]
    refused.append(("policy", "ungrant", str(seeded.b_grant)))
    refused.append(("tools", "reset", "web_read"))  # B's switch, not A's
    for args in refused:
        result = as_a(*args, "--user", A)
        assert result.exit_code == 1, (args, result.output)
        # The id or name asked for is echoed back; B's content and values are not.
        assert f"{B_MARK} " not in result.output and f"{B_MARK}-value" not in result.output
    # Job changes take no user: the terminal acts with the owner's authority over every job.
    for action in ("cancel", "pause", "resume"):
        assert as_a("jobs", action, str(seeded.b_job), "--user", A).exit_code == 2

    # Same names and ids as B's, acting as A: only A's rows move.
    forgot = as_a("memory", "forget", "shared-1", "--user", A)
    assert forgot.exit_code == 0 and A_MARK in forgot.stdout
    reused = tmp_path / "reused.jsonl"
    reused.write_text(json.dumps({"id": "bobonly-1", "content": f"{A_MARK} reuses an id"}) + "\n")
    assert "imported 1" in as_a("memory", "import", str(reused), "--user", A).stdout
    replaced = as_a("secrets", "set", "api_token", "--user", A, stdin=f"{A_MARK}-new\n")
    assert replaced.stdout.strip() == "replaced secret api_token"
    added = as_a("jobs", "add", "--user", A, "--text", f"{A_MARK} gym", "--at", LATER)
    assert added.exit_code == 0
    for action in ("disable", "enable"):
        assert as_a("tools", action, "web_*", "--user", A).exit_code == 0
    assert as_a("tools", "reset", "web_*", "--user", A).exit_code == 0


def test_acting_as_a_never_shows_or_changes_bs_data(url: str, tmp_path: Path) -> None:
    seeded = seed(url, tmp_path)
    before = everything_of_b(url, seeded.b)
    assert B_MARK in json.dumps(before)  # B really has data to leak
    as_a = AsA()

    read_everything_as_a(as_a, tmp_path, seeded)
    try_bs_things_as_a(as_a, tmp_path, seeded)

    assert everything_of_b(url, seeded.b) == before
    missing = commands_taking_a_user() - as_a.ran
    assert not missing, f"commands with --user this test does not run as A yet: {missing}"
    rows = on_db(url, lambda db: AuditLog(db).entries(limit=None))
    [deleted] = [r for r in rows if r.action == "memory_deleted"]
    assert (deleted.actor, deleted.user_id) == ("owner", seeded.a)
    assert deleted.target.startswith("memory:") and deleted.detail == {"kind": "commitment"}
    assert verify(url)[1] == []


async def _pair(fake_tg: FakeTelegram, tg: int, env: dict[str, str]) -> None:
    """A stranger writes, is given a code, and the owner approves it with `dadang pair`."""
    fake_tg.push_message(tg, "hi, may I?")
    code = (await fake_tg.wait_sent(chat_id=tg, count=1))[0]["text"].split()[-1]
    approved = await asyncio.to_thread(dadang, "pair", "approve", code, env=env)
    assert approved.returncode == 0, approved.stderr
    await fake_tg.wait_sent(chat_id=tg, count=2, timeout=15)


async def test_in_chat_a_never_sees_bs_memories_notes_or_reminders(
    db_url: str,
    clean_environ: Path,
    fake_llm: FakeVLLM,
    fake_tg: FakeTelegram,
    service_factory: Any,
) -> None:
    # db_url first: the database must outlive the service, which is stopped before it is dropped.
    svc: Service = await service_factory(
        make_settings(clean_environ, llm=fake_llm, tg=fake_tg, database_url=db_url)
    )
    env = {"DADANG_HOME": str(clean_environ), "DADANG_DATABASE_URL": db_url}
    for tg in (A_TG, B_TG):
        await _pair(fake_tg, tg, env)
    identities = svc.runtime.stores.identities
    users = {tg: await identities.user_for("telegram", str(tg)) for tg in (A_TG, B_TG)}
    a, b = users[A_TG], users[B_TG]
    assert a is not None and b is not None and a != b
    notes = NoteStore(svc.runtime.stores.db)
    for uid, tg, mark in ((a, A_TG, A_MARK), (b, B_TG, B_MARK)):
        await svc.runtime.memory.remember(
            uid, NewMemory(content=f"{mark} drinks jasmine tea, safe code 2468", kind="preference")
        )
        await notes.add(user_id=uid, text=f"{mark} locker 12", source_message_id=None)
        job = ("jobs", "add", "--user", f"telegram:{tg}", "--text", f"{mark} dentist")
        added = await asyncio.to_thread(dadang, *job, "--at", LATER, env=env)
        assert added.returncode == 0, added.stderr

    fake_tg.push_command(A_TG, "/memory")
    listing = (await fake_tg.wait_sent(chat_id=A_TG, count=3))[-1]["text"]
    assert A_MARK in listing and B_MARK not in listing

    first = len(fake_llm.requests)
    fake_llm.push(
        vllm.tool_calls(
            [
                ("memory_search", {"query": "Bob jasmine tea safe code"}),
                ("list_notes", {}),
                ("reminder_list", {}),
            ]
        ),
        vllm.text("Here is what I know."),
    )
    fake_tg.push_message(A_TG, "what tea do I drink, what is the safe code, what are my notes?")
    assert (await fake_tg.wait_sent(chat_id=A_TG, count=4))[-1]["text"] == "Here is what I know."
    turn = json.dumps(fake_llm.requests[first:], ensure_ascii=False)
    assert len(fake_llm.requests) - first == 2
    assert B_MARK not in turn
    # Recall did run: A's own twin memory is in the prompt before any tool was called.
    assert f"{A_MARK} drinks jasmine tea" in json.dumps(fake_llm.requests[first]["messages"][0])
    tool_results = [m for m in fake_llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert [A_MARK in t["content"] for t in tool_results] == [True, True, True]

    # The control: B's own view has B's memory (and none of A's).
    fake_tg.push_command(B_TG, "/memory")
    theirs = (await fake_tg.wait_sent(chat_id=B_TG, count=3))[-1]["text"]
    assert B_MARK in theirs and A_MARK not in theirs
