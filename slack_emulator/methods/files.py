"""files.*: the two-step upload (files.getUploadURLExternal, the upload URL served by the
emulator, files.completeUploadExternal) that slack_sdk's files_upload_v2 makes."""

from __future__ import annotations

import mimetypes
from typing import TYPE_CHECKING

from slack_emulator.api import JSON, Args, SlackError, api_method
from slack_emulator.methods.chat import bot_message
from slack_emulator.methods.visibility import member_channel
from slack_emulator.records import File

if TYPE_CHECKING:
    from slack_emulator.server import SlackEmulator


@api_method("files.getUploadURLExternal", scope="files:write")
def files_get_upload_url_external(slack: SlackEmulator, args: Args) -> JSON:
    filename = args.required("filename")
    length = args.integer("length", -1)
    if length < 0:
        raise SlackError("invalid_arguments")
    file = File(slack._new_id("F"), filename, length, slack.unix_now())
    slack._files[file.id] = file
    return {"upload_url": f"{slack.base_url}/_upload/{file.id}", "file_id": file.id}


@api_method(
    "files.completeUploadExternal",
    scope="files:write",
    errors=("file_not_found", "channel_not_found", "not_in_channel", "is_archived"),
)
def files_complete_upload_external(slack: SlackEmulator, args: Args) -> JSON:
    entries = args.json_value("files")
    if not isinstance(entries, list) or not entries:
        raise SlackError("invalid_arguments")
    files: list[File] = []
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("id"):
            raise SlackError("invalid_arguments")
        file = slack._files.get(entry["id"])
        if file is None or file.content is None:
            raise SlackError("file_not_found")
        file.title = entry.get("title") or file.filename
        files.append(file)
    channel_ids = [c for c in (args.text("channels") or "").split(",") if c]
    if args.text("channel_id"):
        channel_ids.insert(0, args.required("channel_id"))
    channels = [member_channel(slack, c) for c in dict.fromkeys(channel_ids)]
    for channel in channels:
        if channel.is_archived:
            raise SlackError("is_archived")
    thread_ts = args.text("thread_ts")
    for channel in channels:
        for file in files:
            file.channels.append(channel.id)
        message = bot_message(slack, args.text("initial_comment") or "")
        message.update(files=[_file_json(slack, f) for f in files], upload=True, display_as_bot=False)
        if thread_ts is None:
            channel.messages[message["ts"]] = message
        else:
            channel.attach_to_thread(message, thread_ts)
    return {"files": [_file_json(slack, f) for f in files]}


def _file_json(slack: SlackEmulator, file: File) -> JSON:
    mimetype = mimetypes.guess_type(file.filename)[0] or "text/plain"
    url = f"{slack.base_url}/_files/{file.id}/{file.filename}"
    return {
        "id": file.id,
        "created": file.created,
        "timestamp": file.created,
        "name": file.filename,
        "title": file.title or file.filename,
        "mimetype": mimetype,
        "filetype": file.filename.rpartition(".")[2] or "text",
        "size": len(file.content or b""),
        "user": slack.bot_user_id,
        "url_private": url,
        "url_private_download": url,
        "permalink": f"https://{slack.team_domain}.slack.com/files/{slack.bot_user_id}/{file.id}",
        "channels": list(file.channels),
    }
