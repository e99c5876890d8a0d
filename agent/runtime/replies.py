"""Fixed replies the runtime sends without the model, in the user's language."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")

_TEXTS: dict[str, dict[str, str]] = {
    "pairing": {
        "en": "Hi! I'm a private assistant. To use me, ask my owner to run:\n"
        "dadang pair approve {code}",
        "zh": "你好！我是私人助理。如需使用，请让我的主人运行：\ndadang pair approve {code}",
    },
    "paired": {
        "en": "You're in! Say hello whenever you like.",
        "zh": "已通过配对！随时和我聊吧。",
    },
    "unavailable": {
        "en": "The model is unavailable right now; your message is kept and will be answered "
        "as soon as it is back.",
        "zh": "模型暂时不可用；你的消息已保存，恢复后会立即回复。",
    },
    "failed": {
        "en": "Sorry, I couldn't answer that ({reason}). Please try rephrasing or shortening it.",
        "zh": "抱歉，这条消息我没能回答（{reason}）。请换个说法或缩短一些再试。",
    },
    "too_long": {
        "en": "That message is too long for me ({length} characters, limit {limit}). "
        "Please send a shorter one or split it.",
        "zh": "这条消息太长了（{length} 个字符，上限 {limit}）。请缩短或分几次发送。",
    },
    "start": {
        "en": "Hi, I'm Dadang, your assistant. Just talk to me — ask, plan, or tell me what to "
        "remember. /help shows more.",
        "zh": "你好，我是搭档，你的私人助理。直接和我说话就行——提问、安排事情，或让我记住什么。"
        "/help 查看更多。",
    },
    "help": {
        "en": "Talk to me in plain words. I remember what you tell me (preferences, plans, "
        "promises) and use it later; /memory shows what I remember, and you can ask me to "
        'correct or forget any of it. I also remind you of things ("remind me tomorrow at 3pm '
        'to call Li") and follow up on what you promised. Commands: /start, /help, /memory, '
        "/pause (no unsolicited messages today), /resume.",
        "zh": "直接用自然语言和我说话。我会记住你告诉我的事（偏好、计划、承诺）并在之后用上；"
        "/memory 查看我记得的内容，也可以让我更正或忘掉任何一条。我也能提醒你（“明天下午三点提醒我"
        "给李总回电话”），并跟进你答应过的事。命令：/start、/help、/memory、/pause（今天不主动打扰）、"
        "/resume。",
    },
    "unknown_command": {
        "en": "I don't know the command /{command}. Try /help.",
        "zh": "我不认识 /{command} 这个命令。试试 /help。",
    },
    "memory_empty": {
        "en": "I don't remember anything about you yet.",
        "zh": "我还没有记住关于你的任何事。",
    },
    "memory_list": {
        "en": 'What I remember ({count}, newest first). Say "forget #N" or "correct #N: …" '
        "to change one:",
        "zh": "我记得的内容（{count} 条，最新在前）。说“忘掉 #N”或“更正 #N：……”即可修改：",
    },
    "reminder": {"en": "⏰ Reminder: {text}", "zh": "⏰ 提醒：{text}"},
    "reminder_late": {
        "en": "⏰ Reminder (late — it was due {due}; I was offline): {text}",
        "zh": "⏰ 提醒（晚了——原定 {due}，当时我不在线）：{text}",
    },
    "reminder_missed": {
        "en": "I missed a reminder while I was offline (it was due {due}): {text}",
        "zh": "我离线期间错过了一个提醒（原定 {due}）：{text}",
    },
    "followup": {
        "en": "Following up: {text} — is it done?",
        "zh": "跟进一下：{text} —— 完成了吗？",
    },
    "button_done": {"en": "✓ Done", "zh": "✓ 完成"},
    "button_snooze10": {"en": "Snooze 10 min", "zh": "10 分钟后"},
    "button_snooze60": {"en": "Snooze 1 h", "zh": "1 小时后"},
    "button_tomorrow": {"en": "Tomorrow", "zh": "明天"},
    "done_ack": {"en": "✓ Done: {text}", "zh": "✓ 已完成：{text}"},
    "snoozed_ack": {"en": "⏰ Snoozed until {when}: {text}", "zh": "⏰ 已推迟到 {when}：{text}"},
    "button_stale": {
        "en": "That reminder no longer exists.",
        "zh": "这个提醒已经不存在了。",
    },
    "paused": {
        "en": "OK — no unsolicited messages until {until}. Reminders you set still come. "
        "/resume to undo.",
        "zh": "好的——{until} 之前我不会主动打扰你。你设的提醒照常提醒。/resume 可取消。",
    },
    "resumed": {
        "en": "Back on: I'll speak up again when something matters.",
        "zh": "已恢复：有重要的事我会主动告诉你。",
    },
    "briefing": {"en": "Good morning! Today:", "zh": "早上好！今天的安排："},
    "briefing_conflicts": {"en": "⚠ Conflicts:", "zh": "⚠ 时间冲突："},
    "conflict": {
        "en": "{day} {time} {first} overlaps {second}",
        "zh": "{day} {time}「{first}」与「{second}」时间重叠",
    },
    "attachment_failed": {
        "en": "I couldn't take the file {name}: {reason}.",
        "zh": "文件 {name} 我没能接收：{reason}。",
    },
    "unsupported": {
        "en": "I can read text, documents and photos; this kind of message I can't use yet.",
        "zh": "我能读文字、文件和图片；这类消息我暂时还用不了。",
    },
    "approval_request": {
        "en": "🔐 May I do this?\n{what}\nWhy I ask: {reason}.\nThis request expires at {expires}.",
        "zh": "🔐 需要你确认：\n{what}\n为什么要确认：{reason}。\n此请求将于 {expires} 过期。",
    },
    "approve": {"en": "✅ Approve", "zh": "✅ 批准"},
    "reject": {"en": "❌ Reject", "zh": "❌ 拒绝"},
    "always": {"en": "Always allow this", "zh": "以后都允许"},
    "approved": {"en": "✅ Approved — doing it now.", "zh": "✅ 已批准——正在执行。"},
    "approved_always": {
        "en": "✅ Approved, and allowed from now on (undo: dadang policy grants).",
        "zh": "✅ 已批准，以后也允许（撤销：dadang policy grants）。",
    },
    "rejected": {"en": "❌ Rejected — not done.", "zh": "❌ 已拒绝——不会执行。"},
    "expired": {
        "en": "⌛ Expired without an answer — not done.",
        "zh": "⌛ 已过期未确认——不会执行。",
    },
    "approval_stale": {
        "en": "This request was already answered ({status}).",
        "zh": "这个请求已经处理过了（{status}）。",
    },
    "approval_unknown": {
        "en": "This request does not exist or is not yours.",
        "zh": "这个请求不存在，或不属于你。",
    },
    "rate_limited": {
        "en": "You're sending messages faster than I can take them (limit {limit} per minute). "
        "Please wait {seconds} s; messages sent meanwhile are not answered.",
        "zh": "消息发得太快了（每分钟上限 {limit} 条）。请等 {seconds} 秒；"
        "在此期间发送的消息不会被回复。",
    },
}


def language_of(text: str, hint: str | None = None) -> str:
    """`zh` or `en`: the text decides when it is clear, else the channel's language hint."""
    if _CJK.search(text):
        return "zh"
    if text.strip() and any(c.isalpha() for c in text):
        return "en"
    return "zh" if (hint or "").lower().startswith("zh") else "en"


def reply(key: str, language: str, **values: object) -> str:
    """A fixed reply in `language` (English if it has no translation)."""
    texts = _TEXTS[key]
    return texts.get(language, texts["en"]).format(**values)
