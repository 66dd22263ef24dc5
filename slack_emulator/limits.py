"""Slack's limits on messages, blocks and views, and the problems its schema check reports.

chat.* and views.* answer ``invalid_blocks`` / ``invalid_arguments`` with Slack's own
``[ERROR] ... [json-pointer:...]`` lines when a payload breaks a limit, so the bot's Block Kit
builders are held to the real limits by the end-to-end tests, not only by their unit tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from slack_emulator.api import JSON, SlackError

__all__ = [
    "MAX_CONVERSATION_USERS",
    "MAX_TEXT_CHARS",
    "invalid",
    "message_block_problems",
    "view_problems",
]

# Limits Slack enforces (docs.slack.dev, "Reference: blocks / views / chat.postMessage").
MAX_TEXT_CHARS = 40_000  # longer message text is truncated, not refused
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_VIEW_BUTTON_CHARS = 24  # title, submit, close
MAX_PRIVATE_METADATA_CHARS = 3_000
MAX_CALLBACK_ID_CHARS = 255
MAX_SECTION_TEXT_CHARS = 3_000
MAX_SECTION_FIELDS = 10
MAX_SECTION_FIELD_CHARS = 2_000
MAX_HEADER_TEXT_CHARS = 150
MAX_INPUT_LABEL_CHARS = 2_000
MAX_PLAIN_TEXT_INPUT_LENGTH = 3_000
MAX_SELECT_OPTIONS = 100
MAX_CONVERSATION_USERS = 8


def _text_of(obj: Any) -> str | None:
    """The ``text`` of a text object (``{"type": "plain_text", "text": ...}``), if any."""
    text = obj.get("text") if isinstance(obj, dict) else None
    return text if isinstance(text, str) else None


def _too_long(limit: int, pointer: str) -> str:
    return f"[ERROR] must be less than {limit + 1} characters [json-pointer:{pointer}]"


def _block_problems(blocks: list[Any], pointer: str) -> list[str]:
    """Structural and length problems of a block list, as Slack's ``[ERROR] ...`` lines."""
    problems: list[str] = []
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"{pointer}/{index}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(f"[ERROR] missing required field: type [json-pointer:{where}]")
            continue
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in block_ids:
                problems.append(f"[ERROR] duplicate block_id [json-pointer:{where}/block_id]")
            block_ids.add(block_id)
        kind = block["type"]
        text = _text_of(block.get("text"))
        if kind == "section":
            if text is not None and len(text) > MAX_SECTION_TEXT_CHARS:
                problems.append(_too_long(MAX_SECTION_TEXT_CHARS, f"{where}/text/text"))
            fields = block.get("fields") or []
            if len(fields) > MAX_SECTION_FIELDS:
                problems.append(
                    f"[ERROR] no more than {MAX_SECTION_FIELDS} items allowed [json-pointer:{where}/fields]"
                )
            for i, item in enumerate(fields):
                item_text = _text_of(item)
                if item_text is not None and len(item_text) > MAX_SECTION_FIELD_CHARS:
                    problems.append(_too_long(MAX_SECTION_FIELD_CHARS, f"{where}/fields/{i}/text"))
        elif kind == "header":
            if text is not None and len(text) > MAX_HEADER_TEXT_CHARS:
                problems.append(_too_long(MAX_HEADER_TEXT_CHARS, f"{where}/text/text"))
        elif kind == "input":
            problems.extend(_input_block_problems(block, where))
    return problems


def _input_block_problems(block: JSON, where: str) -> list[str]:
    problems: list[str] = []
    for part in ("label", "hint"):
        text = _text_of(block.get(part))
        if text is not None and len(text) > MAX_INPUT_LABEL_CHARS:
            problems.append(_too_long(MAX_INPUT_LABEL_CHARS, f"{where}/{part}/text"))
    element = block.get("element")
    if not isinstance(element, dict):
        problems.append(f"[ERROR] missing required field: element [json-pointer:{where}]")
        return problems
    max_length = element.get("max_length")
    if isinstance(max_length, int) and max_length > MAX_PLAIN_TEXT_INPUT_LENGTH:
        problems.append(
            f"[ERROR] must be at most {MAX_PLAIN_TEXT_INPUT_LENGTH} [json-pointer:{where}/element/max_length]"
        )
    options = element.get("options")
    if isinstance(options, list) and len(options) > MAX_SELECT_OPTIONS:
        problems.append(
            f"[ERROR] no more than {MAX_SELECT_OPTIONS} items allowed [json-pointer:{where}/element/options]"
        )
    return problems


def message_block_problems(blocks: Any) -> list[str]:
    if not isinstance(blocks, list):
        return ["[ERROR] must be an array [json-pointer:/blocks]"]
    problems = []
    if len(blocks) > MAX_MESSAGE_BLOCKS:
        problems.append(f"[ERROR] no more than {MAX_MESSAGE_BLOCKS} items allowed [json-pointer:/blocks]")
    return problems + _block_problems(blocks, "/blocks")


def view_problems(view: Any, allowed_types: Iterable[str]) -> list[str]:
    """What Slack's view schema check would object to, as ``[ERROR] ...`` lines."""
    if not isinstance(view, dict):
        return ["[ERROR] failed to match all allowed schemas [json-pointer:/view]"]
    problems: list[str] = []
    allowed = sorted(allowed_types)
    view_type = view.get("type")
    if view_type not in allowed:
        problems.append(f"[ERROR] must be one of {allowed} [json-pointer:/view/type]")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        problems.append("[ERROR] missing required field: blocks [json-pointer:/view]")
        blocks = []
    elif len(blocks) > MAX_VIEW_BLOCKS:
        problems.append(f"[ERROR] no more than {MAX_VIEW_BLOCKS} items allowed [json-pointer:/view/blocks]")
    problems.extend(_block_problems(blocks, "/view/blocks"))
    if view_type == "modal":
        if view.get("title") is None:
            problems.append("[ERROR] missing required field: title [json-pointer:/view]")
        for part in ("title", "submit", "close"):
            if view.get(part) is None:
                continue
            text = _text_of(view[part])
            if text is None or view[part].get("type") != "plain_text":
                problems.append(f"[ERROR] must be a plain_text text object [json-pointer:/view/{part}]")
            elif len(text) > MAX_VIEW_BUTTON_CHARS:
                problems.append(_too_long(MAX_VIEW_BUTTON_CHARS, f"/view/{part}/text"))
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and view.get("submit") is None:
            problems.append("[ERROR] must provide a submit property when using input blocks [json-pointer:/view]")
    metadata = view.get("private_metadata")
    if isinstance(metadata, str) and len(metadata) > MAX_PRIVATE_METADATA_CHARS:
        problems.append(_too_long(MAX_PRIVATE_METADATA_CHARS, "/view/private_metadata"))
    callback_id = view.get("callback_id")
    if isinstance(callback_id, str) and len(callback_id) > MAX_CALLBACK_ID_CHARS:
        problems.append(_too_long(MAX_CALLBACK_ID_CHARS, "/view/callback_id"))
    return problems


def invalid(error: str, problems: list[str]) -> SlackError:
    """A validation error with Slack's ``response_metadata.messages`` explanation."""
    return SlackError(error, {"response_metadata": {"messages": problems}})
