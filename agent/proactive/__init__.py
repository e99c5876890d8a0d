"""Speaking first: reminders firing, follow-ups, heartbeats, briefings, and the gate before them."""
