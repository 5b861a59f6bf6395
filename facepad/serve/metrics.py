"""Prometheus metrics of the service, with the official client library (prometheus_client).

One process: an app-owned registry (plus process memory and CPU). Several workers (`--workers N`):
the CLI sets PROMETHEUS_MULTIPROC_DIR before the workers start, each writes its values there, and
`/metrics` on any worker adds them up across workers.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


class ServeMetrics:
    """Requests by path and status, latency, decisions by outcome, predictions in flight."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        if multiprocess_dir() is None:
            ProcessCollector(registry=self.registry)
        r = self.registry
        self.requests = Counter(
            "facepad_requests", "HTTP requests answered", ["path", "status"], registry=r
        )
        self.latency = Histogram(
            "facepad_request_duration_seconds",
            "Time from request to response",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "facepad_decisions", "Liveness decisions by outcome", ["decision"], registry=r
        )
        self.inflight = Gauge(
            "facepad_predictions_in_flight",
            "Predictions running now",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.admitted = Gauge(
            "facepad_predictions_admitted",
            "Predictions admitted: in flight or waiting for a slot",
            registry=r,
            multiprocess_mode="livesum",
        )

    def render(self) -> tuple[bytes, str]:
        """The text exposition: this process's registry, or every worker's in multiprocess mode."""
        if multiprocess_dir() is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
