"""chat.*: posting, updating and deleting the bot's messages, and the shape of a bot message
that files.* shares."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from slack_emulator.api import JSON, Args, SlackError, api_method
from slack_emulator.limits import MAX_TEXT_CHARS, invalid, message_block_problems
from slack_emulator.methods.visibility import visible_channel, visible_message
from slack_emulator.records import Channel, is_reply

if TYPE_CHECKING:
    from slack_emulator.server import SlackEmulator

__all__ = ["bot_message", "message_content", "permalink"]


def bot_message(slack: SlackEmulator, text: str) -> JSON:
    return {
        "type": "message",
        "user": slack.bot_user_id,
        "bot_id": slack.bot_id,
        "app_id": slack.app_id,
        "text": text[:MAX_TEXT_CHARS],
        "ts": slack.new_ts(),
        "team": slack.team_id,
        "bot_profile": {
            "id": slack.bot_id,
            "app_id": slack.app_id,
            "name": "emulated-bot",
            "team_id": slack.team_id,
            "deleted": False,
            "icons": {},
        },
    }


def message_content(args: Args, slack: SlackEmulator | None = None) -> tuple[str | None, list[JSON] | None, Any]:
    """(text, blocks, attachments) of chat.* arguments; blocks validated (with `slack`, an image
    block's ``slack_file`` must name a file uploaded to it)."""
    text = args.text("text") or args.text("markdown_text")
    blocks = args.json_value("blocks", error="invalid_blocks")
    if blocks is not None:
        problems = message_block_problems(blocks)
        if slack is not None:
            problems += _image_problems(slack, blocks)
        if problems:
            raise invalid("invalid_blocks", problems)
    attachments = args.json_value("attachments")
    return text, blocks, attachments


def _image_problems(slack: SlackEmulator, blocks: list[JSON]) -> list[str]:
    """Image blocks: alt text, and one source: an ``image_url`` or an uploaded ``slack_file``."""
    problems = []
    for index, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") != "image":
            continue
        where = f"/blocks/{index}"
        if not block.get("alt_text"):
            problems.append(f"[ERROR] missing required field: alt_text [json-pointer:{where}]")
        source = block.get("slack_file")
        if isinstance(source, dict):
            file = slack._files.get(str(source.get("id")))
            if file is None or file.content is None:
                problems.append(f"[ERROR] invalid slack_file [json-pointer:{where}/slack_file]")
        elif not isinstance(block.get("image_url"), str):
            problems.append(f"[ERROR] must provide image_url or slack_file [json-pointer:{where}]")
    return problems


def _message_metadata(args: Args) -> JSON | None:
    """The ``metadata`` argument of chat.postMessage / chat.update, or None when absent.

    Slack's message metadata (docs.slack.dev, "Message metadata") is an object with a
    string ``event_type`` and an object ``event_payload``, both required; form callers
    send it as a JSON string, slack_sdk as a JSON object -- both are accepted.  Anything
    else (not JSON, not an object, a missing or empty ``event_type``, a payload that is
    not an object) answers ``invalid_metadata_format``.  Only the two fields are kept.
    """
    value = args.json_value("metadata", error="invalid_metadata_format")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SlackError("invalid_metadata_format")
    event_type, payload = value.get("event_type"), value.get("event_payload")
    if not isinstance(event_type, str) or not event_type or not isinstance(payload, dict):
        raise SlackError("invalid_metadata_format")
    return {"event_type": event_type, "event_payload": payload}


def permalink(slack: SlackEmulator, channel: Channel, message: JSON) -> str:
    link = f"https://{slack.team_domain}.slack.com/archives/{channel.id}/p{message['ts'].replace('.', '')}"
    if is_reply(message):
        link += f"?thread_ts={message['thread_ts']}&cid={channel.id}"
    return link


@api_method(
    "chat.postMessage",
    scope="chat:write",
    errors=(
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "no_text",
        "invalid_blocks",
        "invalid_metadata_format",
        "cannot_dm_bot",
    ),
)
def chat_post_message(slack: SlackEmulator, args: Args) -> JSON:
    channel_id = args.required("channel")
    if channel_id.startswith(("U", "W")):  # posting to a user id goes to their DM
        channel_id = _dm_to_post_in(slack, channel_id)
    channel = visible_channel(slack, channel_id)
    if channel.is_archived:
        raise SlackError("is_archived")
    if slack.bot_user_id not in channel.members:
        raise SlackError("not_in_channel")
    text, blocks, attachments = message_content(args, slack)
    if text is None and not blocks and not attachments:
        raise SlackError("no_text")
    metadata = _message_metadata(args)
    message = bot_message(slack, text or "")
    if blocks:
        message["blocks"] = blocks
    if attachments:
        message["attachments"] = attachments
    if metadata is not None:
        message["metadata"] = metadata
    thread_ts = args.text("thread_ts")
    if thread_ts is None:
        channel.messages[message["ts"]] = message
    else:
        parent = channel.messages.get(thread_ts)
        if parent is not None and is_reply(parent):
            thread_ts = parent["thread_ts"]  # replying to a reply: same thread
        if args.flag("reply_broadcast"):
            message["subtype"] = "thread_broadcast"
        # Slack accepts an unknown thread_ts; the reply then belongs to no visible thread.
        channel.attach_to_thread(message, thread_ts)
    return {"channel": channel.id, "ts": message["ts"], "message": copy.deepcopy(message)}


def _dm_to_post_in(slack: SlackEmulator, user_id: str) -> str:
    """The DM chat.postMessage uses when its ``channel`` is a user id.

    * an unknown user: ``channel_not_found``, as for any channel Slack cannot resolve;
    * a bot (another app's bot user, or this bot itself): ``cannot_dm_bot`` -- not in
      chat.postMessage's documented errors, but what Slack answers when a bot token
      tries to open a DM with a bot user (im.open / conversations.open);
    * a deactivated user: their DM stays, and Slack still posts into it (asked about
      "chat_postMessage succeeds to deleted user", slackapi/python-slack-sdk#1156, a
      Slack engineer answered that deactivated users' conversations still exist).  With
      no DM yet it cannot be opened (conversations.open answers ``user_disabled``);
      chat.postMessage documents nothing closer than ``channel_not_found`` ("value
      passed for channel was invalid") for that, so that is the answer here.
    """
    user = slack._users.get(user_id)
    if user is None:
        raise SlackError("channel_not_found")
    if user.is_bot:
        raise SlackError("cannot_dm_bot")
    existing = slack._existing_dm(user_id)
    if existing is not None:
        return existing.id
    if user.deleted:
        raise SlackError("channel_not_found")
    return slack.open_dm(user_id)


@api_method(
    "chat.postEphemeral",
    scope="chat:write",
    errors=("channel_not_found", "not_in_channel", "is_archived", "user_not_in_channel", "no_text", "invalid_blocks"),
)
def chat_post_ephemeral(slack: SlackEmulator, args: Args) -> JSON:
    channel = visible_channel(slack, args.required("channel"))
    user = args.required("user")
    if channel.is_archived:
        raise SlackError("is_archived")
    if slack.bot_user_id not in channel.members:
        raise SlackError("not_in_channel")
    if user not in channel.members:
        raise SlackError("user_not_in_channel")
    text, blocks, attachments = message_content(args, slack)
    if text is None and not blocks and not attachments:
        raise SlackError("no_text")
    slack._ephemerals.append(
        {"channel": channel.id, "user": user, "text": text or "", "blocks": blocks, "thread_ts": args.text("thread_ts")}
    )
    return {"message_ts": slack.new_ts()}


@api_method(
    "chat.update",
    scope="chat:write",
    errors=(
        "channel_not_found",
        "message_not_found",
        "cant_update_message",
        "no_text",
        "invalid_blocks",
        "invalid_metadata_format",
    ),
)
def chat_update(slack: SlackEmulator, args: Args) -> JSON:
    channel = visible_channel(slack, args.required("channel"))
    message = visible_message(channel, args.required("ts"), "message_not_found")
    if message.get("bot_id") != slack.bot_id:
        raise SlackError("cant_update_message")
    text, blocks, attachments = message_content(args, slack)
    if text is None and blocks is None and attachments is None:
        raise SlackError("no_text")
    metadata = _message_metadata(args)
    if text is not None:
        message["text"] = text[:MAX_TEXT_CHARS]
    if metadata is not None:  # omitted metadata is kept, as Slack does
        message["metadata"] = metadata
    # Omitted blocks/attachments are kept; an empty list removes them (Slack's rule).
    for key, value in (("blocks", blocks), ("attachments", attachments)):
        if value:
            message[key] = value
        elif value is not None:
            message.pop(key, None)
    message["edited"] = {"user": slack.bot_user_id, "ts": slack.new_ts()}
    return {"channel": channel.id, "ts": message["ts"], "text": message["text"], "message": copy.deepcopy(message)}


@api_method("chat.delete", scope="chat:write", errors=("channel_not_found", "message_not_found", "cant_delete_message"))
def chat_delete(slack: SlackEmulator, args: Args) -> JSON:
    channel = visible_channel(slack, args.required("channel"))
    message = visible_message(channel, args.required("ts"), "message_not_found")
    if message.get("bot_id") != slack.bot_id:
        raise SlackError("cant_delete_message")
    channel.remove_message(message)
    return {"channel": channel.id, "ts": message["ts"]}


@api_method("chat.getPermalink", scope=None, errors=("channel_not_found", "message_not_found"))
def chat_get_permalink(slack: SlackEmulator, args: Args) -> JSON:
    channel = visible_channel(slack, args.required("channel"))
    message = visible_message(channel, args.required("message_ts"), "message_not_found")
    return {"channel": channel.id, "permalink": permalink(slack, channel, message)}
