"""Prometheus metrics of the web process: requests, latencies and errors by handler.

A registry per app (not prometheus_client's global one), so tests and several apps in one
process never share counters. The ``handler`` label only takes values from
``bot.middleware.LABELS``, a fixed set: a label computed from what a request says would let
anyone on the internet add series without bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "churnbot_requests",
            "Slack requests handled",
            ["handler", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "churnbot_request_seconds",
            "Time from a Slack request's arrival to its answer",
            ["handler"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 3),
            registry=self.registry,
        )
        self.errors = Counter(
            "churnbot_errors", "Unexpected errors by handler", ["handler"], registry=self.registry
        )
        self.duplicates = Counter(
            "churnbot_duplicate_deliveries",
            "Slack retries and double clicks ignored",
            ["handler"],
            registry=self.registry,
        )
        self.killswitch = Gauge(
            "churnbot_killswitch_on",
            "1 while the kill switch is on (last value read; see churnbot_redis_up)",
            registry=self.registry,
            multiprocess_mode="mostrecent",  # several workers: the last one read
        )
        self.redis_up = Gauge(
            "churnbot_redis_up",
            "1 if Redis answered this scrape within its time budget",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
