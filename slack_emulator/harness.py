"""A running bot wired to an emulated Slack: shared by the end-to-end tests and `postmortem-bot demo`."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select

from bot.app import Bot, drain_listeners, start_http
from bot.clock import Clock
from bot.config import Settings
from bot.views import TimelineItem
from slack_emulator.driver import SlackDriver
from slack_emulator.server import SlackEmulator
from storage.models import ProcessedEvent


@dataclass
class Harness:
    """One bot on a real port, the emulator it talks to, and a driver that plays Slack."""

    bot: Bot
    emulator: SlackEmulator
    driver: SlackDriver
    runner: web.AppRunner
    url: str
    clock: Clock
    """The bot's clock (the emulator's too, unless the test gave the bot its own)."""

    @classmethod
    async def start(
        cls, emulator: SlackEmulator, database_url: str, *, clock: Clock | None = None, **settings: Any
    ) -> Harness:
        """Start the bot against a started `emulator`, with a fresh signing secret; the bot
        reads the emulator's clock unless given its own."""
        signing_secret = settings.pop("signing_secret", None) or secrets.token_hex(16)
        config = Settings(
            bot_token=emulator.bot_token,
            signing_secret=signing_secret,
            slack_api_url=emulator.api_url,
            database_url=database_url,
            **settings,
        )
        clock = clock or emulator.clock
        bot = await Bot.create(config, clock=clock)
        runner, port = await start_http(bot, "127.0.0.1", 0)
        driver = SlackDriver(emulator, f"http://127.0.0.1:{port}", signing_secret)
        return cls(bot=bot, emulator=emulator, driver=driver, runner=runner, url=database_url, clock=clock)

    def today(self, tz: str = "UTC") -> date:
        """The date on the bot's clock in time zone `tz`."""
        return self.clock.now().astimezone(ZoneInfo(tz)).date()

    async def stop(self) -> None:
        await self.driver.close()
        await self.runner.shutdown()
        await drain_listeners()
        await self.runner.cleanup()
        await self.bot.close()

    async def eventually(self, check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
        """Poll `check` until it returns something truthy: listeners run after the ack."""
        deadline = time.monotonic() + timeout
        while True:
            result = await check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s: {check.__qualname__}")
            await asyncio.sleep(0.02)

    async def settled(self) -> None:
        """Wait until every acknowledged request has finished its work: listeners (they run
        after the ack), answers sent through response_url, and stored events applied."""
        await self.eventually(self.bot.idle)

    async def processed(self, event_id: str | None) -> None:
        """Wait until the bot has committed its handling of `event_id`."""
        assert event_id is not None

        async def done() -> bool:
            async with self.bot.services.timeline.sessions() as session:
                found = await session.scalar(select(ProcessedEvent.event_id).where(ProcessedEvent.event_id == event_id))
                return found is not None

        await self.eventually(done)

    async def responses(self, count: int) -> list[dict]:
        """Wait for at least `count` response_url answers in total, and return them all."""

        async def enough() -> list[dict] | None:
            found = self.emulator.responses()
            return found if len(found) >= count else None

        return await self.eventually(enough)

    def bot_messages(self, channel: str) -> list[dict]:
        return [m for m in self.emulator.messages(channel) if m.get("user") == self.emulator.bot_user_id]

    async def timeline(self, channel: str) -> list[TimelineItem]:
        incident = await self.bot.services.timeline.current_incident(self.emulator.team_id, channel)
        assert incident is not None, f"no incident in {channel}"
        return await self.bot.services.timeline.items(incident)

    async def start_incident(self, channel: str, user: str, title: str) -> dict:
        """Run `/postmortem start <title>` as `user` and wait for the card; returns it."""
        before = len(self.bot_messages(channel))
        delivery = await self.driver.slash_command(channel, user, f"start {title}")
        assert delivery.status == 200, delivery.text

        async def card() -> dict | None:
            mine = self.bot_messages(channel)
            return mine[-1] if len(mine) > before else None

        posted = await self.eventually(card)

        async def recorded() -> bool:
            # The card is pinned and its ts stored after it is posted: wait for the end of start.
            incident = await self.bot.services.timeline.current_incident(self.emulator.team_id, channel)
            return incident is not None and incident.card_ts == posted["ts"]

        await self.eventually(recorded)
        return posted

    # --- the post-mortem modal -------------------------------------------------------------

    async def latest_view(self, callback_id: str = "postmortem_modal") -> dict:
        """The newest view the bot opened or updated with `callback_id`."""

        async def found() -> dict | None:
            views = [v for v in self.emulator.views() if v.get("callback_id") == callback_id]
            return views[-1] if views else None

        return await self.eventually(found)

    async def _after_view_update(self, act: Callable[[], Awaitable[Any]]) -> dict:
        before = len(self.emulator.calls_to("views.update"))
        await act()

        async def updated() -> bool:
            return len(self.emulator.calls_to("views.update")) > before

        await self.eventually(updated)
        return await self.latest_view()

    async def open_postmortem(self, channel: str, user: str) -> dict:
        """`/postmortem resolve` as `user`; returns the modal once the bot has filled it in."""
        return await self._after_view_update(lambda: self.driver.slash_command(channel, user, "resolve"))

    async def add_action_row(self, view: dict, user: str, edits: dict | None = None) -> dict:
        """Press "Add action item" with `edits` typed so far; returns the redrawn modal."""
        return await self._after_view_update(
            lambda: self.driver.click_view_button(view, user, "pm_add_action_item", edits=edits)
        )

    async def remove_action_row(self, view: dict, user: str, key: str) -> dict:
        return await self._after_view_update(
            lambda: self.driver.click_view_button(view, user, "pm_remove_action_item", value=key)
        )

    @staticmethod
    def row_keys(view: dict) -> list[str]:
        """Keys of the modal's action-item rows, in order."""
        ids = [b.get("block_id", "").split(".")[0] for b in view.get("blocks") or []]
        return [i[3:].rsplit("_title", 1)[0] for i in ids if i.startswith("ai_") and i.endswith("_title")]

    @staticmethod
    def row_edits(key: str, title: str, owner: str | None, due: str | None, **more: str) -> dict:
        """What a person types into one action-item row (see driver.view_state)."""
        edits = {f"ai_{key}_title": title, f"ai_{key}_owner": owner, f"ai_{key}_due": due}
        edits.update({f"ai_{key}_{part}": value for part, value in more.items()})
        return edits
