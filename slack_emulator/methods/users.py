"""users.info."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_emulator.api import JSON, Args, SlackError, api_method

if TYPE_CHECKING:
    from slack_emulator.server import SlackEmulator


@api_method("users.info", scope="users:read", errors=("user_not_found",))
def users_info(slack: SlackEmulator, args: Args) -> JSON:
    user = slack._users.get(args.required("user"))
    if user is None or user.erased:
        raise SlackError("user_not_found")
    return {"user": slack._user_json(user)}


@api_method("users.lookupByEmail", scope="users:read.email", errors=("users_not_found",))
def users_lookup_by_email(slack: SlackEmulator, args: Args) -> JSON:
    email = args.required("email").lower()
    for user in slack._users.values():
        if not user.erased and (user.email or "").lower() == email:
            return {"user": slack._user_json(user)}
    raise SlackError("users_not_found")
