"""Dadang's hands: tools the agent can call (time, notes now; HTTP, browser, calendar, files later)."""
