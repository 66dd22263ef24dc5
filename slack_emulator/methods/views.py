"""views.*: modals opened and pushed with a trigger id, updated, and App Home published."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from slack_emulator.api import JSON, Args, SlackError, api_method
from slack_emulator.limits import invalid, view_problems
from slack_emulator.records import Trigger, View

if TYPE_CHECKING:
    from slack_emulator.server import SlackEmulator


def _new_view_hash() -> str:
    return f"{int(time.time())}.{secrets.token_hex(4)}"


def _consume_trigger(slack: SlackEmulator, args: Args) -> Trigger:
    """A trigger id is good once, for :attr:`trigger_lifetime` seconds."""
    trigger = slack._triggers.get(args.required("trigger_id"))
    if trigger is None:
        raise SlackError("invalid_trigger_id")
    if trigger.used:
        raise SlackError("trigger_exchanged")
    if time.monotonic() - trigger.issued_at > slack.trigger_lifetime:
        raise SlackError("trigger_expired")
    trigger.used = True
    return trigger


def _view_arg(args: Args, allowed_types: Iterable[str]) -> JSON:
    view = args.json_value("view")
    if view is None:
        raise SlackError("invalid_arguments")
    problems = view_problems(view, allowed_types)
    if problems:
        raise invalid("invalid_arguments", problems)
    assert isinstance(view, dict)  # view_problems rejects anything else
    return view


def _store_view(slack: SlackEmulator, payload: JSON, user: str | None) -> View:
    view_id = slack._new_id("V")
    view = View(view_id, payload, user, _new_view_hash(), root_view_id=view_id)
    slack._views[view_id] = view
    return view


@api_method("views.open", scope=None, errors=("invalid_trigger_id", "trigger_exchanged", "trigger_expired"))
def views_open(slack: SlackEmulator, args: Args) -> JSON:
    payload = _view_arg(args, ["modal"])
    trigger = _consume_trigger(slack, args)
    view = _store_view(slack, payload, trigger.user)
    return {"view": slack._view_json(view)}


@api_method("views.push", scope=None, errors=("invalid_trigger_id", "trigger_exchanged", "trigger_expired"))
def views_push(slack: SlackEmulator, args: Args) -> JSON:
    payload = _view_arg(args, ["modal"])
    trigger = _consume_trigger(slack, args)
    view = _store_view(slack, payload, trigger.user)
    return {"view": slack._view_json(view)}


@api_method("views.update", scope=None, errors=("view_not_found", "hash_conflict"))
def views_update(slack: SlackEmulator, args: Args) -> JSON:
    view_id, external_id = args.text("view_id"), args.text("external_id")
    if view_id is None and external_id is None:
        raise SlackError("invalid_arguments")
    payload = _view_arg(args, ["modal", "home"])
    if view_id is not None:
        view = slack._views.get(view_id)
    else:
        view = next((v for v in slack._views.values() if v.payload.get("external_id") == external_id), None)
    if view is None:
        raise SlackError("view_not_found")
    expected_hash = args.text("hash")
    if expected_hash is not None and expected_hash != view.hash:
        raise SlackError("hash_conflict")
    view.payload = payload
    view.hash = _new_view_hash()
    return {"view": slack._view_json(view)}


@api_method("views.publish", scope=None, errors=("user_not_found", "hash_conflict"))
def views_publish(slack: SlackEmulator, args: Args) -> JSON:
    user_id = args.required("user_id")
    payload = _view_arg(args, ["home"])
    if user_id not in slack._users:
        raise SlackError("user_not_found")
    view = slack._views.get(slack._home_views.get(user_id, ""))
    if view is None:
        view = _store_view(slack, payload, user_id)
        slack._home_views[user_id] = view.id
        return {"view": slack._view_json(view)}
    expected_hash = args.text("hash")
    if expected_hash is not None and expected_hash != view.hash:
        raise SlackError("hash_conflict")
    view.payload = payload
    view.hash = _new_view_hash()
    return {"view": slack._view_json(view)}
