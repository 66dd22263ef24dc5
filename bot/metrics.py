"""What the bot counts, for `GET /metrics` (Prometheus text format, prometheus-client).

Every metric lives here, so an operator reads one file to learn what can be scraped. Metrics
are process-wide (prometheus-client's default registry): each replica reports its own, and
Prometheus sums them.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

# --- event intake (bot/intake.py) ---------------------------------------------------------
EVENTS_RECEIVED = Counter("postmortem_events_received", "Signed Events API deliveries received")
EVENTS_STORED = Counter("postmortem_events_stored", "Event deliveries committed to the inbox and answered 200")
EVENTS_REFUSED = Counter("postmortem_events_refused", "Event deliveries answered 503 for Slack to retry", ["reason"])
EVENTS_APPLIED = Counter("postmortem_events_applied", "Inbox events applied to the timeline (redeliveries included)")
EVENTS_FAILED = Counter("postmortem_events_failed", "Inbox events that failed to apply and were set aside")
INTAKE_BATCH_SIZE = Histogram(
    "postmortem_intake_batch_size",
    "Events committed together in one inbox transaction",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
INTAKE_APPLY_BATCH_SIZE = Histogram(
    "postmortem_intake_apply_batch_size",
    "Stored events applied together in one transaction",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
INTAKE_COMMIT_SECONDS = Histogram(
    "postmortem_intake_commit_seconds",
    "Time to commit one inbox batch",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
INTAKE_LAG_SECONDS = Histogram(
    "postmortem_intake_lag_seconds",
    "From an event's acknowledgement to its effect on the timeline",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
INTAKE_BACKLOG = Gauge("postmortem_intake_backlog", "Acknowledged events waiting to be applied (last seen)")

# --- the sweep (bot/nudges.py) --------------------------------------------------------------
SWEEP_SECONDS = Histogram(
    "postmortem_sweep_seconds",
    "Duration of one sweep",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
SWEEP_DUE_BACKLOG = Gauge("postmortem_sweep_due_backlog", "Nudges due and not yet sent, as of the last sweep")
NUDGES_SENT = Counter("postmortem_nudges_sent", "Nudges sent", ["kind"])

# --- Slack and trackers ---------------------------------------------------------------------
SLACK_API_ERRORS = Counter(
    "postmortem_slack_api_errors", "Slack Web API calls that failed after retries", ["method", "error"]
)
TRACKER_SYNC_LAG_SECONDS = Gauge(
    "postmortem_tracker_sync_lag_seconds", "Age of the oldest tracker change not yet pulled", ["tracker"]
)


def exposition() -> tuple[bytes, str]:
    """The current values in Prometheus text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
