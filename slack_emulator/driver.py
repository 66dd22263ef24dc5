"""A driver that acts as Slack towards the bot: it signs and sends events, slash commands and
interactivity payloads to the bot's real HTTP endpoint, keeping the emulator's state in step
(a message "posted" by a person exists in the emulator before its event reaches the bot).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from slack_emulator.server import SlackEmulator

API_APP_ID = "A0EMULATOR"


@dataclass
class Delivery:
    """What the bot answered to one request."""

    status: int
    text: str
    event_id: str | None = None

    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


def signature(secret: str, timestamp: str, body: str) -> str:
    """Slack's request signature: v0= hex HMAC-SHA256 of "v0:{timestamp}:{body}"."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackDriver:
    def __init__(self, emulator: SlackEmulator, bot_url: str, signing_secret: str) -> None:
        self.emulator = emulator
        self.events_url = bot_url.rstrip("/") + "/slack/events"
        self.signing_secret = signing_secret
        self._session: aiohttp.ClientSession | None = None
        self._event_seq = itertools.count(1)

    async def __aenter__(self) -> SlackDriver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def team_id(self) -> str:
        return self.emulator.team_id

    # --- raw sending -------------------------------------------------------------------------

    async def send(
        self,
        body: str,
        content_type: str,
        *,
        headers: dict[str, str] | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> Delivery:
        """POST `body` signed with `secret` (default: the right one) at `timestamp` (default: now)."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        all_headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature(self.signing_secret if secret is None else secret, ts, body),
        }
        all_headers.update(headers or {})
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(self.events_url, data=body.encode(), headers=all_headers) as response:
            return Delivery(status=response.status, text=await response.text())

    async def send_event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        **send_options: Any,
    ) -> Delivery:
        """Deliver `event` in an Events API envelope; the same `event_id` with `retry_num` is a redelivery."""
        event_id = event_id or f"Ev{next(self._event_seq):08d}{uuid.uuid4().hex[:6].upper()}"
        envelope = {
            "token": "unused-verification-token",
            "team_id": self.team_id,
            "api_app_id": API_APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": _event_time(event.get("event_ts")),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.emulator.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{uuid.uuid4().hex}",
        }
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        delivery = await self.send(json.dumps(envelope), "application/json", headers=headers, **send_options)
        delivery.event_id = event_id
        return delivery

    # --- people acting in Slack ---------------------------------------------------------------

    # --- building events without sending them (replays, storms, ordering tests) ---------------

    def posted_event(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> tuple[dict, dict]:
        """Post as a person in the emulator; returns (message, the event Slack would send)."""
        message = self.emulator.post_user_message(channel, user, text, thread_ts=thread_ts)
        event = dict(message, channel=channel, event_ts=message["ts"], channel_type=self._channel_type(channel))
        event.setdefault("client_msg_id", str(uuid.uuid4()))
        return message, event

    def edited_event(self, channel: str, ts: str, text: str) -> dict:
        new, previous = self.emulator.edit_user_message(channel, ts, text)
        event_ts = self.emulator.new_ts()
        return {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "channel": channel,
            "channel_type": self._channel_type(channel),
            "ts": event_ts,
            "event_ts": event_ts,
            "message": new,
            "previous_message": previous,
        }

    def deleted_event(self, channel: str, ts: str) -> dict:
        previous = self.emulator.delete_message(channel, ts)
        event_ts = self.emulator.new_ts()
        return {
            "type": "message",
            "subtype": "message_deleted",
            "hidden": True,
            "channel": channel,
            "channel_type": self._channel_type(channel),
            "ts": event_ts,
            "event_ts": event_ts,
            "deleted_ts": ts,
            "previous_message": previous,
        }

    def reacted_event(self, channel: str, ts: str, user: str, name: str, *, added: bool) -> dict:
        (self.emulator.add_reaction if added else self.emulator.remove_reaction)(channel, ts, user, name)
        return self.reaction_event("reaction_added" if added else "reaction_removed", channel, ts, user, name)

    async def post_message(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        files: list[dict] | None = None,
        subtype: str | None = None,
    ) -> tuple[dict, Delivery]:
        message = self.emulator.post_user_message(
            channel, user, text, thread_ts=thread_ts, files=files, subtype=subtype
        )
        event = dict(message, channel=channel, event_ts=message["ts"], channel_type=self._channel_type(channel))
        event.setdefault("client_msg_id", str(uuid.uuid4()))
        return message, await self.send_event(event)

    async def send_bot_message(
        self, channel: str, bot_user: str, text: str, bot_id: str = "B0OTHERAPP"
    ) -> tuple[dict, Delivery]:
        """Another app (an alerting bot, say) posts in the channel."""
        message = self.emulator.post_user_message(channel, bot_user, text)
        event = dict(
            message, channel=channel, event_ts=message["ts"], bot_id=bot_id, channel_type=self._channel_type(channel)
        )
        return message, await self.send_event(event)

    async def edit_message(self, channel: str, ts: str, text: str) -> Delivery:
        new, previous = self.emulator.edit_user_message(channel, ts, text)
        event_ts = self.emulator.new_ts()
        event = {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "channel": channel,
            "channel_type": self._channel_type(channel),
            "ts": event_ts,
            "event_ts": event_ts,
            "message": new,
            "previous_message": previous,
        }
        return await self.send_event(event)

    async def delete_message(self, channel: str, ts: str) -> Delivery:
        previous = self.emulator.delete_message(channel, ts)
        event_ts = self.emulator.new_ts()
        event = {
            "type": "message",
            "subtype": "message_deleted",
            "hidden": True,
            "channel": channel,
            "channel_type": self._channel_type(channel),
            "ts": event_ts,
            "event_ts": event_ts,
            "deleted_ts": ts,
            "previous_message": previous,
        }
        return await self.send_event(event)

    async def react(self, channel: str, ts: str, user: str, name: str = "pushpin") -> Delivery:
        self.emulator.add_reaction(channel, ts, user, name)
        return await self.send_event(self.reaction_event("reaction_added", channel, ts, user, name))

    async def unreact(self, channel: str, ts: str, user: str, name: str = "pushpin") -> Delivery:
        self.emulator.remove_reaction(channel, ts, user, name)
        return await self.send_event(self.reaction_event("reaction_removed", channel, ts, user, name))

    def reaction_event(self, kind: str, channel: str, ts: str, user: str, name: str) -> dict[str, Any]:
        """A reaction event without changing emulator state (for ordering and replay tests)."""
        message = self.emulator.message(channel, ts) or {}
        return {
            "type": kind,
            "user": user,
            "item": {"type": "message", "channel": channel, "ts": ts},
            "reaction": name,
            "item_user": message.get("user"),
            "event_ts": self.emulator.new_ts(),
        }

    # --- the workspace changing: the emulator's state, then the event Slack sends about it ----

    async def change_profile(self, user: str, **changes: str) -> Delivery:
        """`user` edits their profile (name, real_name, tz); Slack sends `user_change`."""
        return await self._user_changed(self.emulator.change_profile(user, **changes))

    async def deactivate_user(self, user: str) -> Delivery:
        """An admin deactivates `user`; Slack sends `user_change` with `deleted: true`."""
        return await self._user_changed(self.emulator.deactivate_user(user))

    async def _user_changed(self, user: dict[str, Any]) -> Delivery:
        event = {"type": "user_change", "user": user, "cache_ts": int(time.time()), "event_ts": self.emulator.new_ts()}
        return await self.send_event(event)

    async def rename_channel(self, channel: str, name: str) -> Delivery:
        """Rename `channel`; Slack sends `channel_rename` (`group_rename` for a private one)."""
        info = self.emulator.rename_channel(channel, name)
        kind = "group_rename" if info.get("is_private") else "channel_rename"
        renamed = {key: info[key] for key in ("id", "name", "name_normalized", "created", "is_channel", "is_mpim")}
        return await self.send_event({"type": kind, "channel": renamed, "event_ts": self.emulator.new_ts()})

    async def slash_command(self, channel: str, user: str, text: str, *, command: str = "/postmortem") -> Delivery:
        """Type `/postmortem text` in `channel`; answers via response_url land in emulator.responses()."""
        form = {
            "token": "unused-verification-token",
            "team_id": self.team_id,
            "team_domain": self.emulator.team_domain,
            "channel_id": channel,
            "channel_name": self._channel_name(channel),
            "user_id": user,
            "user_name": self._user_name(user),
            "command": command,
            "text": text,
            "api_app_id": API_APP_ID,
            "is_enterprise_install": "false",
            "response_url": self.emulator.new_response_url(),
            "trigger_id": self.emulator.issue_trigger_id(),
        }
        return await self.send(urlencode(form), "application/x-www-form-urlencoded")

    async def message_shortcut(
        self, channel: str, ts: str, user: str, callback_id: str = "add_to_timeline"
    ) -> Delivery:
        message = self.emulator.message(channel, ts)
        if message is None:
            raise KeyError(f"no message {ts} in {channel}")
        payload = {
            "type": "message_action",
            "token": "unused-verification-token",
            "action_ts": self.emulator.new_ts(),
            "team": {"id": self.team_id, "domain": self.emulator.team_domain},
            "user": {
                "id": user,
                "username": self._user_name(user),
                "team_id": self.team_id,
                "name": self._user_name(user),
            },
            "channel": {"id": channel, "name": self._channel_name(channel)},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": self.emulator.issue_trigger_id(),
            "response_url": self.emulator.new_response_url(),
            "message_ts": ts,
            "message": message,
        }
        return await self.send(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")

    async def open_home(self, user: str, tab: str = "home") -> Delivery:
        """`user` opens the app's Home tab (or its Messages tab): the `app_home_opened` event."""
        home = self.emulator.home_view(user)
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user,
            "channel": self.emulator.open_dm(user),
            "tab": tab,
            "event_ts": f"{self.emulator.unix_now()}.{next(self._event_seq):06d}",
        }
        if home is not None:
            event["view"] = home
        return await self.send_event(event)

    # --- interactivity ----------------------------------------------------------------------

    def _actor(self, user: str) -> dict[str, Any]:
        return {"id": user, "username": self._user_name(user), "name": self._user_name(user), "team_id": self.team_id}

    async def _interact(self, payload: dict[str, Any]) -> Delivery:
        payload.setdefault("team", {"id": self.team_id, "domain": self.emulator.team_domain})
        payload.setdefault("api_app_id", API_APP_ID)
        payload.setdefault("token", "unused-verification-token")
        payload.setdefault("is_enterprise_install", False)
        return await self.send(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")

    async def click_message_button(self, channel: str, message_ts: str, user: str, action_id: str) -> Delivery:
        """Press the button `action_id` on a message (the incident card, a summary)."""
        return await self._message_action(channel, message_ts, user, action_id)

    async def choose_in_message(
        self, channel: str, message_ts: str, user: str, action_id: str, option: str
    ) -> Delivery:
        """Pick `option` (its value) in a message's static select, e.g. Snooze."""
        return await self._message_action(channel, message_ts, user, action_id, option)

    async def _message_action(
        self, channel: str, message_ts: str, user: str, action_id: str, option: str | None = None
    ) -> Delivery:
        message = self.emulator.message(channel, message_ts)
        if message is None:
            raise KeyError(f"no message {message_ts} in {channel}")
        block, element = _find_element(message.get("blocks") or [], action_id)
        action = _action_payload(block, element)
        if option is not None:
            action["selected_option"] = next(o for o in element.get("options") or [] if o["value"] == option)
        return await self._interact(
            {
                "type": "block_actions",
                "user": self._actor(user),
                "container": {
                    "type": "message",
                    "message_ts": message_ts,
                    "channel_id": channel,
                    "is_ephemeral": False,
                },
                "trigger_id": self.emulator.issue_trigger_id(user=user),
                "channel": {"id": channel, "name": self._channel_name(channel)},
                "message": message,
                "response_url": self.emulator.new_response_url(),
                "actions": [action],
            }
        )

    async def click_view_button(
        self,
        view: dict[str, Any],
        user: str,
        action_id: str,
        value: str | None = None,
        edits: dict[str, Any] | None = None,
    ) -> Delivery:
        """Press a button inside an open modal; the view's state carries what is typed."""
        block, element = _find_element(view.get("blocks") or [], action_id, value)
        return await self._interact(
            {
                "type": "block_actions",
                "user": self._actor(user),
                "container": {"type": "view", "view_id": view["id"]},
                "trigger_id": self.emulator.issue_trigger_id(user=user),
                "view": dict(view, state={"values": view_state(view, edits)}),
                "actions": [_action_payload(block, element)],
            }
        )

    async def submit_view(self, view: dict[str, Any], user: str, edits: dict[str, Any] | None = None) -> Delivery:
        """Press the modal's submit button with `edits` typed in (see view_state)."""
        return await self._interact(
            {
                "type": "view_submission",
                "user": self._actor(user),
                "trigger_id": self.emulator.issue_trigger_id(user=user),
                "view": dict(view, state={"values": view_state(view, edits)}),
                "response_urls": [],
            }
        )

    async def close_view(self, view: dict[str, Any], user: str, edits: dict[str, Any] | None = None) -> Delivery:
        """Press the modal's close button (Slack sends view_closed when notify_on_close is set)."""
        return await self._interact(
            {
                "type": "view_closed",
                "user": self._actor(user),
                "view": dict(view, state={"values": view_state(view, edits)}),
                "is_cleared": False,
            }
        )

    # --- helpers -------------------------------------------------------------------------

    def _channel_type(self, channel: str) -> str:
        info = self.emulator.channels.get(channel, {})
        if channel.startswith("D"):
            return "im"
        return "group" if info.get("is_private") else "channel"

    def _channel_name(self, channel: str) -> str:
        return str(self.emulator.channels.get(channel, {}).get("name", channel))

    def _user_name(self, user: str) -> str:
        return str(self.emulator.users.get(user, {}).get("name", user))


def _find_element(blocks: list[dict[str, Any]], action_id: str, value: str | None = None) -> tuple[dict, dict]:
    for block in blocks:
        for element in block.get("elements") or ([block["accessory"]] if block.get("accessory") else []):
            if element.get("action_id") == action_id and (value is None or element.get("value") == value):
                return block, element
    raise KeyError(f"no element {action_id!r} (value {value!r}) in these blocks")


def _action_payload(block: dict[str, Any], element: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": element.get("type"),
        "action_id": element["action_id"],
        "block_id": block.get("block_id"),
        "text": element.get("text"),
        "value": element.get("value"),
        "action_ts": f"{time.time():.6f}",
    }


def base_block_id(block_id: str) -> str:
    """A block id without the bot's render-revision suffix ("pm_title.r3" -> "pm_title")."""
    return block_id.split(".", 1)[0]


def view_state(view: dict[str, Any], edits: dict[str, Any] | None = None) -> dict[str, Any]:
    """What Slack reports in view.state.values: every input's current value.

    Inputs keep their initial values unless `edits` (keyed by block id, with or without the
    revision suffix) says otherwise. An edit's value is what a person would pick: text for
    text inputs, an option value for selects and radio buttons, a user id, an ISO date, or
    None to clear the input.
    """
    edits = edits or {}
    values: dict[str, Any] = {}
    for block in view.get("blocks") or []:
        if block.get("type") != "input":
            continue
        block_id = block["block_id"]
        element = block["element"]
        key = block_id if block_id in edits else base_block_id(block_id)
        state = (
            _element_state(element, edits[key], edited=True)
            if key in edits
            else _element_state(element, None, edited=False)
        )
        values[block_id] = {element["action_id"]: state}
    return values


def _element_state(element: dict[str, Any], value: Any, *, edited: bool) -> dict[str, Any]:
    kind = element["type"]
    if kind in ("plain_text_input", "url_text_input", "email_text_input", "number_input"):
        return {"type": kind, "value": value if edited else element.get("initial_value")}
    if kind in ("static_select", "radio_buttons", "external_select"):
        if not edited:
            return {"type": kind, "selected_option": element.get("initial_option")}
        options = element.get("options") or [o for g in element.get("option_groups") or [] for o in g["options"]]
        chosen = next((o for o in options if o["value"] == value), None)
        if value is not None and chosen is None:
            raise KeyError(f"no option {value!r} in {element['action_id']}")
        return {"type": kind, "selected_option": chosen}
    if kind == "users_select":
        return {"type": kind, "selected_user": value if edited else element.get("initial_user")}
    if kind == "datepicker":
        return {"type": kind, "selected_date": value if edited else element.get("initial_date")}
    if kind == "timepicker":
        return {"type": kind, "selected_time": value if edited else element.get("initial_time")}
    if kind == "multi_users_select":
        return {
            "type": kind,
            "selected_users": list(value or []) if edited else list(element.get("initial_users") or []),
        }
    if kind == "checkboxes":
        selected = (
            element.get("initial_options") or []
            if not edited
            else [o for o in element["options"] if o["value"] in (value or [])]
        )
        return {"type": kind, "selected_options": selected}
    raise KeyError(f"view_state does not know {kind} inputs yet")


def _event_time(event_ts: Any) -> int:
    """The envelope's event_time: the event's own ts when it is one (fuzzed events may lie)."""
    try:
        return int(float(event_ts))
    except (TypeError, ValueError):
        return int(time.time())
