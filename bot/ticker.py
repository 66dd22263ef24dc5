"""The in-process ticker: the nudge sweep every minute, event-log pruning hourly. APScheduler runs jobs here but keeps no job store: what must
happen and when lives in the database, so replicas and restarts never share scheduler state."""

from __future__ import annotations

import logging
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.services import Services

log = logging.getLogger("postmortem_bot.ticker")

# Slack retries an event for about five minutes; a day of event ids is ample to catch those.
EVENT_LOG_RETENTION = timedelta(days=1)


def create_scheduler(services: Services) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")

    async def prune_event_log() -> None:
        removed = await services.timeline.prune_event_log(EVENT_LOG_RETENTION)
        if removed:
            log.info("pruned %d processed event ids older than %s", removed, EVENT_LOG_RETENTION)

    async def sweep() -> None:
        report = await services.nudges.sweep()
        for line in report.lines():
            log.info("nudge %s", line)
        for line in await services.trackers.sync():
            log.info("%s", line)

    # coalesce + max_instances=1: a slow run is never stacked; a missed one runs once.
    scheduler.add_job(prune_event_log, "interval", hours=1, id="prune_event_log", coalesce=True, max_instances=1)
    scheduler.add_job(sweep, "interval", minutes=1, id="sweep_nudges", coalesce=True, max_instances=1)
    return scheduler
