"""`task_plan`: the plan of a multi-step request, shown to the user and kept up to date.

Why a tool and not hidden reasoning: the user sees what the assistant is about to do before it
does it, and watches it progress (the plan message is edited in place, in Telegram too); the
model re-reads its own plan in the tool results, which keeps long tasks on track.
"""

from __future__ import annotations

import re
from typing import ClassVar, Final, Literal

from pydantic import BaseModel, Field

from automation.tools.base import RiskLevel, Tool, ToolContext

Status = Literal["pending", "doing", "done", "failed", "skipped"]

MARKS: Final[dict[str, str]] = {
    "pending": "▫️",
    "doing": "⏳",
    "done": "✅",
    "failed": "❌",
    "skipped": "➖",
}
_CJK: Final = re.compile(r"[\u3400-\u9fff]")


class PlanStep(BaseModel):
    title: str = Field(min_length=1, max_length=160, description="short, in the user's language")
    status: Status = "pending"
    note: str = Field(default="", max_length=200, description="result id, link or failure reason")


class PlanArgs(BaseModel):
    steps: list[PlanStep] = Field(min_length=1, max_length=12)


class TaskPlan(Tool[PlanArgs]):
    name = "task_plan"
    description = (
        "For a request needing several tool calls: show the user the plan before starting, "
        "then call again with updated statuses as steps finish or fail."
    )
    args_model = PlanArgs
    risk: ClassVar[RiskLevel | None] = RiskLevel.READ

    async def run(self, args: PlanArgs, ctx: ToolContext) -> str:
        text = render_plan(args.steps)
        if ctx.progress is not None:
            await ctx.progress.show(text)
        counts = {s: sum(1 for step in args.steps if step.status == s) for s in MARKS}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        shown = "shown to the user" if ctx.progress is not None else "noted"
        return f"Plan {shown} ({summary}). Carry on with the next step."


def render_plan(steps: list[PlanStep]) -> str:
    """The plan as the user sees it: a header in their language and one line per step."""
    chinese = any(_CJK.search(step.title) for step in steps)
    done = sum(1 for step in steps if step.status in ("done", "skipped"))
    header = f"计划（{done}/{len(steps)}）" if chinese else f"Plan ({done}/{len(steps)})"
    lines = [header]
    for number, step in enumerate(steps, 1):
        line = f"{MARKS[step.status]} {number}. {step.title}"
        if step.note:
            line += f" — {step.note}"
        lines.append(line)
    return "\n".join(lines)
