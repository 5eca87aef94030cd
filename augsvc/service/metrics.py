"""The service's Prometheus metrics: one CollectorRegistry per app, so tests and several
apps in one process never collide in the global registry. The HTTP middleware that
records requests lives in :mod:`augsvc.api.metrics`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "augsvc_http_requests", "HTTP requests answered.", ["route", "method", "status"],
            registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "augsvc_http_request_duration_seconds", "Time to answer a request.",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.images = Counter("augsvc_images_augmented", "Images augmented.", registry=r)
        self.batch_size = Histogram(
            "augsvc_augment_batch_size", "Images per augment request.",
            buckets=BATCH_BUCKETS, registry=r,
        )  # fmt: skip
        self.queue_depth = Gauge(
            "augsvc_engine_queue_depth", "Engine jobs waiting for a worker.", registry=r
        )
        self.engine_busy = Gauge(
            "augsvc_engine_jobs_running", "Engine jobs being worked on.", registry=r
        )
        self.rejected = Counter(
            "augsvc_engine_rejected", "Jobs refused with 503 because the queue was full.",
            registry=r,
        )  # fmt: skip
        self.memory_held = Gauge(
            "augsvc_memory_held_bytes",
            "Memory admitted to jobs and streams (the estimate they were admitted with).",
            registry=r,
        )
        self.memory_rejected = Counter(
            "augsvc_memory_rejected",
            "Jobs and stream batches refused with 503 because the memory budget was taken.",
            registry=r,
        )
        self.plan_cache_hits = Counter(
            "augsvc_plan_cache_hits", "Plans found compiled in the cache.", registry=r
        )
        self.plan_cache_misses = Counter(
            "augsvc_plan_cache_misses", "Plans compiled on a cache miss.", registry=r
        )
        self.streams_active = Gauge(
            "augsvc_streams_active", "Dataset streams being served.", registry=r
        )
        self.stream_frames = Counter(
            "augsvc_stream_frames", "Stream frames rendered (decoded + augmented).", registry=r
        )
        self.stream_frames_buffered = Gauge(
            "augsvc_stream_frames_buffered",
            "Rendered frames waiting for the socket, over all streams.",
            registry=r,
        )
