"""The scheduler job that sends queued billing notices (every few seconds, off the loop)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from apscheduler.schedulers.base import BaseScheduler

from appliance.notify import service

if TYPE_CHECKING:
    from appliance.config import Settings

log = logging.getLogger(__name__)

EVERY_SECONDS = 5


def install(sched: BaseScheduler, settings: Settings) -> None:
    if not settings.smtp_url:
        return  # nothing to send with; notices stay listed (GET /api/v1/notices)

    async def deliver() -> None:
        try:
            await asyncio.to_thread(service.deliver_from_settings, settings)
        except ValueError as e:  # a setting the start-up check let through
            log.error("billing mail: %s", e)

    sched.add_job(
        deliver, "interval", seconds=EVERY_SECONDS, id="notices", coalesce=True, max_instances=1
    )
