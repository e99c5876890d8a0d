"""Prometheus metrics, in a registry owned by one runtime (tests run several side by side)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)


class Metrics:
    """Counters and histograms the runtime updates; rendered at `GET /metrics`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages_in = Counter(
            "dadang_messages_in", "Inbound messages accepted", ["channel"], registry=self.registry
        )
        self.messages_out = Counter(
            "dadang_messages_out", "Message parts delivered", ["channel"], registry=self.registry
        )
        self.llm_latency = Histogram(
            "dadang_llm_request_seconds",
            "Model HTTP request latency",
            ["outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.llm_tokens = Counter(
            "dadang_llm_tokens", "Tokens used by the model", ["kind"], registry=self.registry
        )
        self.turn_latency = Histogram(
            "dadang_turn_seconds",
            "Time from dequeue to reply committed",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "dadang_queue_depth", "Inbound messages waiting or in progress", registry=self.registry
        )
        self.outbox_pending = Gauge(
            "dadang_outbox_pending", "Outbox rows not yet delivered", registry=self.registry
        )
        self.errors = Counter("dadang_errors", "Errors by kind", ["kind"], registry=self.registry)

    def observe_llm(
        self, *, latency: float, prompt_tokens: int, completion_tokens: int, outcome: str
    ) -> None:
        """`LLMObserver` implementation."""
        self.llm_latency.labels(outcome=outcome).observe(latency)
        if prompt_tokens:
            self.llm_tokens.labels(kind="prompt").inc(prompt_tokens)
        if completion_tokens:
            self.llm_tokens.labels(kind="completion").inc(completion_tokens)
        if outcome != "ok":
            self.errors.labels(kind=f"llm_{outcome}").inc()

    def render(self) -> bytes:
        """Prometheus text exposition."""
        return generate_latest(self.registry)
