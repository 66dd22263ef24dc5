"""The emulated workspace: its users, conversations, messages, views and files, and the
helpers tests use to set it up, act in it as people and inspect what the bot did.

:class:`Workspace` is the state alone; :class:`slack_emulator.SlackEmulator` adds the Web
API server, Socket Mode and fault injection.  Set-up helpers raise ``ValueError`` on a
mistake in the test (an unknown user, a channel id of the wrong kind), never a Slack error:
those are for the bot's calls.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import time
from collections.abc import Iterable, Iterator
from zoneinfo import ZoneInfo

from bot.clock import Clock, SystemClock
from slack_emulator.api import JSON
from slack_emulator.records import Channel, File, Pin, Trigger, User, View, in_ts_order
from slack_emulator.scopes import manifest_bot_scopes

__all__ = ["DEFAULT_TRIGGER_LIFETIME", "Workspace"]

DEFAULT_TRIGGER_LIFETIME = 3.0  # seconds


class Workspace:
    """A Slack workspace with the bot installed: ids, people, conversations and what is in them.

    Tests set state up with :meth:`add_user` / :meth:`add_channel`, act as humans with
    :meth:`post_user_message` and friends, and inspect what the bot did with
    :meth:`messages`, :meth:`messages_in_dm`, :meth:`views`...
    """

    scopes: tuple[str, ...]
    """The bot token's scopes (default: manifest.yml's).  A test may replace them."""

    trigger_lifetime: float
    """Seconds a trigger id stays usable (Slack: 3).  Tests may shorten it."""

    announce_joins: bool
    """Post Slack's ``channel_join`` message when the bot joins a channel.  Real Slack does;
    off by default so message counts in tests see only what the bot itself posted."""

    def __init__(
        self,
        *,
        team_id: str,
        team_domain: str,
        bot_user_id: str,
        bot_id: str,
        scopes: Iterable[str] | None,
        clock: Clock | None,
    ) -> None:
        if isinstance(scopes, str):
            raise TypeError("scopes is a list of scope names, not one string")
        self.scopes = manifest_bot_scopes() if scopes is None else tuple(scopes)
        self.team_id = team_id
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = "A0EMULATOR"
        self.trigger_lifetime = DEFAULT_TRIGGER_LIFETIME
        self.announce_joins = False

        self.clock: Clock = clock or SystemClock()
        """Slack's idea of now: the ``ts`` of new messages, pin and file times.  Tests and the
        demo share one clock between the emulator and the bot, so the times of messages and
        the bot's idea of now agree, as they do in production; a test that drives the bot's
        clock ahead (``sweep --at``) moves Slack's with it."""

        self._users: dict[str, User] = {}
        self._channels: dict[str, Channel] = {}
        self._ephemerals: list[JSON] = []
        self._views: dict[str, View] = {}
        self._home_views: dict[str, str] = {}  # user id -> view id of their App Home
        self._triggers: dict[str, Trigger] = {}
        self._files: dict[str, File] = {}
        # One counter for every generated id (channels, views, files, trigger ids, sockets).
        self._ids: Iterator[int] = itertools.count(1)
        self._last_ts_us = 0

        self.add_user(bot_user_id, "emulated-bot", is_bot=True, real_name="Emulated Bot")
        self._users[bot_user_id].bot_id = bot_id

    # ----------------------------------------------------------------- state setup

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        tz: str = "UTC",
        is_bot: bool = False,
        deleted: bool = False,
        real_name: str | None = None,
        email: str | None = None,
    ) -> JSON:
        """Create a workspace member; returns the user object users.info would give.

        A person has an email (default ``<name>@example.com``), a bot none; users.info
        shows it only to a token with ``users:read.email``.
        """
        if user_id in self._users:
            raise ValueError(f"user {user_id} already exists")
        if user_id[:1] not in ("U", "W"):
            raise ValueError(f"user ids start with U or W, got {user_id!r}")
        ZoneInfo(tz)  # fail here, not in users.info, on a misspelt time zone
        if email is None and not is_bot:
            email = f"{name}@example.com"
        self._users[user_id] = User(
            user_id,
            name,
            real_name if real_name is not None else name,
            tz,
            is_bot,
            deleted,
            email,
            updated=self.unix_now(),
        )
        return self._user_json(self._users[user_id])

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        is_private: bool = False,
        members: Iterable[str] = (),
        is_archived: bool = False,
    ) -> JSON:
        """Create a conversation; returns the object conversations.info would give.

        ``C`` ids are channels (public unless ``is_private``), ``G`` ids private channels,
        ``D`` ids DMs between the bot and the one human in ``members``.  The bot is a
        member only when ``members`` lists :attr:`bot_user_id`.
        """
        if channel_id in self._channels:
            raise ValueError(f"channel {channel_id} already exists")
        members = list(dict.fromkeys(members))
        for member in members:
            self._require_user(member)
        prefix = channel_id[:1]
        if prefix == "D":
            humans = [m for m in members if m != self.bot_user_id]
            if len(humans) != 1:
                raise ValueError("a D channel needs exactly one member besides the bot")
            channel = Channel(
                channel_id,
                name,
                is_private=True,
                is_im=True,
                im_user=humans[0],
                members=[self.bot_user_id, humans[0]],
            )
        elif prefix in ("C", "G"):
            if prefix == "G" and not is_private:
                raise ValueError(f"G ids are private channels; pass is_private=True ({channel_id})")
            channel = Channel(channel_id, name, is_private=is_private, is_archived=is_archived, members=members)
        else:
            raise ValueError(f"channel ids start with C, G or D, got {channel_id!r}")
        channel.created = self.unix_now()
        self._channels[channel_id] = channel
        return self._conversation_json(channel)

    def deactivate_user(self, user_id: str) -> JSON:
        """Deactivate a member, as a workspace admin does; returns their users.info object.

        Like ``add_user(..., deleted=True)`` but for someone who already exists (and may
        already have a DM with the bot): users.info then says ``deleted: true``,
        conversations.open answers ``user_disabled``, chat.postMessage to their user id
        works only into an existing DM (see the chat.postMessage handler).
        """
        user = self._require_user(user_id)
        if user_id == self.bot_user_id:
            raise ValueError("the emulated bot cannot be deactivated")
        user.deleted = True
        user.updated = self.unix_now()
        return self._user_json(user)

    # Changes to the workspace that Slack announces with an event (the driver sends it).

    def change_profile(
        self, user_id: str, *, name: str | None = None, real_name: str | None = None, tz: str | None = None
    ) -> JSON:
        """A member edits their profile; returns the users.info object a ``user_change`` carries.

        The emulator keeps one ``name`` for handle and display name, so ``name`` changes both.
        """
        user = self._require_user(user_id)
        if tz is not None:
            ZoneInfo(tz)
            user.tz = tz
        user.name = user.name if name is None else name
        user.real_name = user.real_name if real_name is None else real_name
        user.updated = max(user.updated + 1, self.unix_now())  # Slack's `updated` only grows
        return self._user_json(user)

    def erase_user(self, user_id: str) -> None:
        """The member is gone as far as the bot can see (an erased account, a Slack Connect
        member whose organisation left): users.info answers ``user_not_found`` from now on."""
        self._require_user(user_id).erased = True

    def rename_channel(self, channel_id: str, name: str) -> JSON:
        """Rename a channel, as a member does; returns its conversations.info object."""
        channel = self._require_channel(channel_id)
        if channel.is_im:
            raise ValueError("a DM has no name to change")
        channel.name = name
        return self._conversation_json(channel)

    def open_dm(self, user: str) -> str:
        """Id of the bot's DM with ``user``, creating it if needed (as conversations.open).

        A set-up helper: unlike the Web API it opens DMs with deactivated users and bots too.
        """
        self._require_user(user)
        existing = self._existing_dm(user)
        if existing is not None:
            return existing.id
        channel_id = self._new_id("D")
        self._channels[channel_id] = Channel(
            channel_id,
            channel_id,
            is_private=True,
            is_im=True,
            im_user=user,
            members=[self.bot_user_id, user],
            created=self.unix_now(),
        )
        return channel_id

    def issue_trigger_id(self, *, user: str | None = None) -> str:
        """A trigger id views.open/push accept once, within :attr:`trigger_lifetime`.

        ``user`` (optional) is recorded as the user of the views it opens.
        """
        trigger_id = f"{int(time.time())}.{next(self._ids)}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = Trigger(time.monotonic(), user)
        return trigger_id

    # ----------------------------------------------------------------- acting as humans

    def unix_now(self) -> int:
        """Whole seconds since the epoch on :attr:`clock`, as Slack gives ``created`` times."""
        return int(self.clock.now().timestamp())

    def new_ts(self) -> str:
        """A fresh message ts from :attr:`clock`, strictly greater than every earlier one."""
        now = self.clock.now()
        now_us = int(now.timestamp()) * 1_000_000 + now.microsecond
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        seconds, micros = divmod(self._last_ts_us, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def post_user_message(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        files: list[JSON] | None = None,
        subtype: str | None = None,
    ) -> JSON:
        """A human posts (joining the channel if needed); returns the stored message.

        A reply (``thread_ts``) updates the parent's reply_count, reply_users and
        latest_reply, as Slack does; a ts of a reply threads under that reply's parent.
        """
        conv = self._require_channel(channel)
        self._require_user(user)
        if conv.is_archived:
            raise ValueError(f"channel {channel} is archived")
        if user not in conv.members:
            if not conv.is_public:
                raise ValueError(f"{user} is not a member of private conversation {channel}")
            conv.members.append(user)
        message: JSON = {"type": "message", "user": user, "text": text, "ts": self.new_ts(), "team": self.team_id}
        if subtype is not None:
            message["subtype"] = subtype
        if files:
            message["files"] = copy.deepcopy(files)
        if thread_ts is not None:
            parent = conv.messages.get(thread_ts)
            if parent is None:
                raise ValueError(f"no message {thread_ts} in {channel} to reply to")
            conv.attach_to_thread(message, parent.get("thread_ts", thread_ts))
        else:
            conv.messages[message["ts"]] = message
        return copy.deepcopy(message)

    def edit_user_message(self, channel: str, ts: str, text: str) -> tuple[JSON, JSON]:
        """Edit a message's text; returns (new message with ``edited``, previous message)."""
        message = self._require_message(channel, ts)
        previous = copy.deepcopy(message)
        message["text"] = text
        message["edited"] = {"user": message.get("user"), "ts": self.new_ts()}
        return copy.deepcopy(message), previous

    def delete_message(self, channel: str, ts: str) -> JSON:
        """Delete a message as its author would; returns the message as it was."""
        message = self._require_message(channel, ts)
        previous = copy.deepcopy(message)
        self._channels[channel].remove_message(message)
        return previous

    def add_reaction(self, channel: str, ts: str, user: str, name: str) -> None:
        """``user`` reacts with ``:name:``; reacting twice with the same name is a no-op."""
        message = self._require_message(channel, ts)
        self._require_user(user)
        reactions: list[JSON] = message.setdefault("reactions", [])
        reaction = next((r for r in reactions if r["name"] == name), None)
        if reaction is None:
            reaction = {"name": name, "users": [], "count": 0}
            reactions.append(reaction)
        if user not in reaction["users"]:
            reaction["users"].append(user)
            reaction["count"] = len(reaction["users"])

    def remove_reaction(self, channel: str, ts: str, user: str, name: str) -> None:
        """Undo :meth:`add_reaction`; a reaction nobody holds any more disappears."""
        message = self._require_message(channel, ts)
        reactions: list[JSON] = message.get("reactions", [])
        for reaction in reactions:
            if reaction["name"] == name and user in reaction["users"]:
                reaction["users"].remove(user)
                reaction["count"] = len(reaction["users"])
        message["reactions"] = [r for r in reactions if r["count"] > 0]
        if not message["reactions"]:
            del message["reactions"]

    def pin_message(self, channel: str, ts: str, user: str) -> None:
        """``user`` pins a message by hand (no event is sent; the bot does not subscribe)."""
        conv = self._require_channel(channel)
        message = self._require_message(channel, ts)
        self._require_user(user)
        if ts not in conv.pins:
            conv.pins[ts] = Pin(self.unix_now(), user)
            message["pinned_to"] = [channel]

    # ----------------------------------------------------------------- inspection

    def messages(self, channel: str) -> list[JSON]:
        """Every message of ``channel``, top-level and replies, in ts order (copies)."""
        conv = self._require_channel(channel)
        return [copy.deepcopy(m) for m in in_ts_order(conv.messages.values())]

    def messages_in_dm(self, user_id: str) -> list[JSON]:
        """Every message of the bot's DM with ``user_id`` -- the bot's and theirs, thread
        replies included -- in ts order, as stored (blocks, metadata...; copies).

        Empty when there is no such DM yet; unlike ``messages(open_dm(user))`` this never
        opens one.
        """
        self._require_user(user_id)
        dm = self._existing_dm(user_id)
        return [] if dm is None else self.messages(dm.id)

    def message(self, channel: str, ts: str) -> JSON | None:
        conv = self._require_channel(channel)
        message = conv.messages.get(ts)
        return copy.deepcopy(message) if message is not None else None

    def pins(self, channel: str) -> list[str]:
        """Timestamps of the messages pinned in ``channel``, in pinning order."""
        return list(self._require_channel(channel).pins)

    def ephemerals(self, channel: str | None = None) -> list[JSON]:
        """chat.postEphemeral calls that succeeded: channel, user, text, blocks."""
        return [copy.deepcopy(e) for e in self._ephemerals if channel is None or e["channel"] == channel]

    def views(self) -> list[JSON]:
        """Every view opened, pushed or published, latest state, in creation order.

        Each item is the view object as views.* returned it (id, type, title, blocks,
        hash...) plus ``user`` (None for views.open/push: the trigger's user is unknown
        unless given to :meth:`issue_trigger_id`) and ``view`` (the same object, nested,
        for callers who prefer ``item["view"]["blocks"]``).
        """
        result = []
        for view in self._views.values():
            rendered = self._view_json(view)
            result.append({**rendered, "user": view.user, "view": copy.deepcopy(rendered)})
        return result

    def home_view(self, user_id: str) -> JSON | None:
        """The App Home view last published for ``user_id`` (as views.publish returned it), or None."""
        view = self._views.get(self._home_views.get(user_id, ""))
        return self._view_json(view) if view is not None else None

    @property
    def channels(self) -> dict[str, JSON]:
        """Snapshot of every conversation: id -> its conversations.info object plus
        ``members`` (user ids, in joining order)."""
        return {c.id: {**self._conversation_json(c), "members": list(c.members)} for c in self._channels.values()}

    @property
    def users(self) -> dict[str, JSON]:
        """Snapshot of every user, the bot included: id -> its users.info object."""
        return {u.id: self._user_json(u) for u in self._users.values()}

    def uploaded_files(self) -> list[JSON]:
        """Files whose bytes were uploaded: id, filename, title, content, channel."""
        return [
            {
                "id": f.id,
                "filename": f.filename,
                "title": f.title,
                "content": f.content,
                "channel": f.channels[0] if f.channels else None,
            }
            for f in self._files.values()
            if f.content is not None
        ]

    # ----------------------------------------------------------------- internal helpers

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}EMU{next(self._ids):06d}"

    def _require_user(self, user: str) -> User:
        if user not in self._users:
            raise ValueError(f"unknown user {user}; call add_user first")
        return self._users[user]

    def _require_channel(self, channel: str) -> Channel:
        if channel not in self._channels:
            raise ValueError(f"unknown channel {channel}; call add_channel first")
        return self._channels[channel]

    def _require_message(self, channel: str, ts: str) -> JSON:
        message = self._require_channel(channel).messages.get(ts)
        if message is None:
            raise ValueError(f"no message {ts} in {channel}")
        return message

    def _existing_dm(self, user: str) -> Channel | None:
        """The bot's DM with ``user`` if it was ever opened."""
        return next((c for c in self._channels.values() if c.is_im and c.im_user == user), None)

    def _conversation_json(self, channel: Channel) -> JSON:
        if channel.is_im:
            user = self._users[channel.im_user or ""]
            return {
                "id": channel.id,
                "created": channel.created,
                "is_im": True,
                "is_org_shared": False,
                "user": user.id,
                "is_user_deleted": user.deleted,
                "priority": 0,
                "is_open": True,
            }
        empty_text = {"value": "", "creator": "", "last_set": 0}
        return {
            "id": channel.id,
            "name": channel.name,
            "name_normalized": channel.name,
            "is_channel": channel.id.startswith("C"),
            "is_group": channel.id.startswith("G") and not channel.is_mpim,
            "is_im": False,
            "is_mpim": channel.is_mpim,
            "is_private": channel.is_private,
            "is_archived": channel.is_archived,
            "is_general": False,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "is_member": self.bot_user_id in channel.members,
            "created": channel.created,
            "creator": channel.members[0] if channel.members else "",
            "unlinked": 0,
            "context_team_id": self.team_id,
            "topic": dict(empty_text),
            "purpose": dict(empty_text),
            "previous_names": [],
        }

    def _user_json(self, user: User) -> JSON:
        now = self.clock.now().astimezone(ZoneInfo(user.tz))
        offset = now.utcoffset()
        profile: JSON = {
            "real_name": user.real_name,
            "real_name_normalized": user.real_name,
            "display_name": user.name,
            "display_name_normalized": user.name,
            "status_text": "",
            "status_emoji": "",
            "team": self.team_id,
        }
        if user.bot_id:
            profile["bot_id"] = user.bot_id
        if user.email is not None and "users:read.email" in self.scopes:
            profile["email"] = user.email
        return {
            "id": user.id,
            "team_id": self.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "real_name": user.real_name,
            "tz": user.tz,
            "tz_label": now.tzname(),
            "tz_offset": int(offset.total_seconds()) if offset is not None else 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "updated": user.updated,
        }

    def _view_json(self, view: View) -> JSON:
        payload = view.payload
        return {
            "id": view.id,
            "team_id": self.team_id,
            "type": payload.get("type"),
            "title": payload.get("title"),
            "submit": payload.get("submit"),
            "close": payload.get("close"),
            "blocks": copy.deepcopy(payload.get("blocks", [])),
            "private_metadata": payload.get("private_metadata", ""),
            "callback_id": payload.get("callback_id", ""),
            "external_id": payload.get("external_id", ""),
            "state": {"values": {}},
            "hash": view.hash,
            "clear_on_close": bool(payload.get("clear_on_close", False)),
            "notify_on_close": bool(payload.get("notify_on_close", False)),
            "root_view_id": view.root_view_id,
            "previous_view_id": view.previous_view_id,
            "app_id": self.app_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
