"""Dadang's hands: tools the agent calls (time and notes now; HTTP, browser, files later)."""
