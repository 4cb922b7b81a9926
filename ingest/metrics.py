"""Ingest metrics in Prometheus text format."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages_received = Counter(
            "sanitrack_ingest_messages_received", "MQTT messages received", registry=r
        )
        self.messages_acked = Counter(
            "sanitrack_ingest_messages_acked",
            "Messages acknowledged after their commit",
            registry=r,
        )
        self.fixes_accepted = Counter(
            "sanitrack_ingest_fixes_accepted",
            "Fixes that passed validation and filters",
            registry=r,
        )
        self.events_accepted = Counter(
            "sanitrack_ingest_events_accepted",
            "Device events that passed validation and the duplicate filter",
            registry=r,
        )
        self.rejected = Counter(
            "sanitrack_ingest_rejected",
            "Messages, fixes or events rejected, by reason",
            ["reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "sanitrack_ingest_duplicates",
            "Identical fixes and events dropped (first copy kept)",
            registry=r,
        )
        self.rows_written = Counter(
            "sanitrack_ingest_rows_written", "Rows inserted into positions", registry=r
        )
        self.events_written = Counter(
            "sanitrack_ingest_events_written", "Rows inserted into device_events", registry=r
        )
        self.dead_letters_written = Counter(
            "sanitrack_ingest_dead_letters_written", "Rows inserted into dead_letters", registry=r
        )
        self.write_errors = Counter(
            "sanitrack_ingest_write_errors", "Failed database writes (retried)", registry=r
        )
        self.batch_rows = Histogram(
            "sanitrack_ingest_batch_rows",
            "Rows per database batch",
            buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10_000, 50_000),
            registry=r,
        )
        self.flush_seconds = Histogram(
            "sanitrack_ingest_flush_seconds",
            "Time to write and commit one batch",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.pending_messages = Gauge(
            "sanitrack_ingest_pending_messages",
            "Messages received and not yet acknowledged",
            registry=r,
        )
        self.buffered_rows = Gauge(
            "sanitrack_ingest_buffered_rows", "Rows waiting for the batch writer", registry=r
        )
        self.reorder_held = Gauge(
            "sanitrack_ingest_reorder_held",
            "Fixes and events held in the reorder window",
            registry=r,
        )
        self.broker_connected = Gauge(
            "sanitrack_ingest_broker_connected", "1 while connected to the MQTT broker", registry=r
        )
        self.reading_paused = Gauge(
            "sanitrack_ingest_reading_paused",
            "1 while reading is paused for back-pressure",
            registry=r,
        )
