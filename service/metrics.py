"""Prometheus metrics, one registry per app (so several apps in one test process don't clash)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics", "MetricsMiddleware"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sealcheck_http_requests_total", "HTTP requests answered",
            ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "sealcheck_http_request_duration_seconds", "Time to answer an HTTP request",
            ["method", "route"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.stage = Histogram(
            "sealcheck_pipeline_stage_seconds",
            "Time per pipeline stage (decode, prepare_golden, register, ..., encode_png, store)",
            ["stage"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge(
            "sealcheck_queue_depth", "Admitted requests beyond the workers (waiting or uploading)",
            registry=self.registry)
        self.in_flight = Gauge(
            "sealcheck_pipeline_jobs", "Places taken in the admission budget (service.work): "
            "comparisons, uploads, spec parsing, photo re-encodes", registry=self.registry)
        self.rejected = Counter(
            "sealcheck_queue_rejected_total",
            "Requests answered 503 because the admission budget was full",
            registry=self.registry)
        self.golden_cache = Counter(
            "sealcheck_golden_cache_total", "Prepared-golden cache look-ups", ["result"],
            registry=self.registry)

    def observe_stages(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self.stage.labels(stage).observe(ms / 1000.0)


Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


class MetricsMiddleware:
    """Counts and times every request by its route template; adds a ``Server-Timing`` header.

    Pure ASGI rather than BaseHTTPMiddleware, so the request body streams through untouched
    (the upload cap is applied while it streams).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                ms = (time.perf_counter() - start) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={ms:.1f}".encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            # The template (/v1/goldens/{golden_id}), never the raw path: ids would explode the
            # number of time series.
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], label, str(status)).inc()
            self.metrics.latency.labels(scope["method"], label).observe(
                time.perf_counter() - start)
