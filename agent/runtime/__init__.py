"""The runtime: per-conversation queues, the outbox, lifecycle and the HTTP app."""
