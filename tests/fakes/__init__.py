"""Loopback fakes of the external services Dadang talks to (vLLM, Telegram Bot API)."""
