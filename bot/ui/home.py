"""App Home: what a person owes (their open action items, with the DM's answers), the incidents
they command that still owe something (each with the button that does it), and the team's block.

One page of items at a time, so the view stays within Block Kit's 100 blocks whatever the
count: each item takes two blocks (its line, its buttons), a page ITEMS_PER_PAGE items.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    DividerBlock,
    HeaderBlock,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.ui.card import CONTINUE_POSTMORTEM, PUBLISH_POSTMORTEM, RESOLVE, SCHEDULE_MEETING
from bot.ui.item_messages import incident_line, item_buttons, item_title, ticket_link
from bot.ui.text import (
    MAX_MODAL_BLOCKS,
    MAX_TITLE_INLINE,
    channel_link,
    context,
    date_label,
    escape_line,
    field,
    metadata_id,
    plain,
    private_metadata,
    relative_day,
    section,
    severity_label,
)
from bot.views import ActionItemView, HomeView, OwedIncident

HOME_PAGE = "home_page"  # the pager's buttons; value: the page to show (0-based)
HOME_CALLBACK = "postmortem_home"
ITEMS_PER_PAGE = 20
MAX_OWED_SHOWN = 10

# What an incident owes, and the button that does it (the card's own action ids and listeners).
OWED_BUTTONS: dict[str, tuple[str, str]] = {
    "resolution": ("Resolve", RESOLVE),
    "post-mortem": ("Write post-mortem", CONTINUE_POSTMORTEM),
    "review meeting": ("Schedule meeting", SCHEDULE_MEETING),
    "publication": ("Publish", PUBLISH_POSTMORTEM),
}


def read_page(metadata: Any) -> int:
    """The page a published Home view shows, from its private_metadata; 0 when unreadable."""
    return metadata_id(metadata, "page") or 0


def _item_line(item: ActionItemView, home: HomeView) -> str:
    overdue = item.due is not None and item.due < home.today
    flag = ":warning: *Overdue* · " if overdue else ""
    when = relative_day(item.due, home.today)
    details = [incident_line(item), f"due {date_label(item.due)}" + (f" ({when})" if when else "")]
    if item.status == "in_progress":
        details.append("in progress")
    ticket = ticket_link(item.ticket_url, item.ticket_key)
    if ticket:
        details.append(ticket)
    return f"{flag}*{item_title(item, 200)}*\n" + " · ".join(details)


def _owed_block(owed: OwedIncident) -> SectionBlock:
    incident = owed.incident
    label, action_id = OWED_BUTTONS[owed.owes]
    if owed.owes == "post-mortem" and owed.postmortem_status == "draft":
        label = "Continue post-mortem"
    text = (
        f"*{escape_line(incident.title, MAX_TITLE_INLINE)}* {channel_link(incident.channel_id)} · "
        f"{severity_label(incident.severity)}\nOwes its {owed.owes}"
    )
    button = ButtonElement(text=plain(label), action_id=action_id, value=str(incident.id))
    return SectionBlock(block_id=f"home_incident_{incident.id}", text=section(text).text, accessory=button)


def _pager(home: HomeView) -> ActionsBlock | None:
    if home.pages <= 1:
        return None
    buttons = []
    if home.page > 0:
        buttons.append(ButtonElement(text=plain("Previous"), action_id=f"{HOME_PAGE}_prev", value=str(home.page - 1)))
    if home.page < home.pages - 1:
        buttons.append(ButtonElement(text=plain("Next"), action_id=f"{HOME_PAGE}_next", value=str(home.page + 1)))
    return ActionsBlock(block_id="home_pager", elements=buttons)


def home_view(home: HomeView) -> dict[str, Any]:
    """views.publish `view` of `home`."""
    blocks: list[Block] = [HeaderBlock(text=plain("Post-mortem follow-through"))]
    if home.items_total:
        first = home.page * ITEMS_PER_PAGE + 1
        shown = f"; {first}-{first + len(home.items) - 1} shown" if home.pages > 1 else ""
        blocks.append(section(f"*Your open action items* ({home.items_total}{shown}), soonest due first"))
        for item in home.items:
            blocks.append(section(_item_line(item, home)))
            blocks.append(item_buttons(item, block_id=f"home_item_{item.id}"))
        pager = _pager(home)
        if pager is not None:
            blocks.append(pager)
    else:
        blocks.append(section("*Your open action items*\nNone: nothing is waiting on you. :tada:"))
    blocks.append(DividerBlock())
    if home.owed:
        blocks.append(section("*Incidents you command that still owe something*"))
        blocks += [_owed_block(o) for o in home.owed[:MAX_OWED_SHOWN]]
        if home.owed_total > MAX_OWED_SHOWN:
            blocks.append(context(f"…and {home.owed_total - MAX_OWED_SHOWN} more."))
    else:
        blocks.append(section("*Incidents you command*\nNone owes anything."))
    blocks.append(DividerBlock())
    quarter = home.quarter
    by_severity = ", ".join(f"{severity_label(s)} {n}" for s, n in quarter.by_severity.items()) or "none"
    blocks.append(section("*The team*"))
    blocks.append(
        SectionBlock(
            fields=[
                field("Open action items", str(home.team_open)),
                field("Past their due date", str(home.team_overdue)),
                field(f"Incidents in {quarter.period}", f"{quarter.incidents} ({by_severity})"),
            ]
        )
    )
    blocks.append(context("`/postmortem review` for the quarter's review, `/postmortem stats` for the numbers."))
    assert len(blocks) <= MAX_MODAL_BLOCKS, "App Home's page size keeps it within Slack's 100 blocks"
    view = View(
        type="home",
        callback_id=HOME_CALLBACK,
        private_metadata=private_metadata({"page": home.page}),
        blocks=blocks,
    )
    return view.to_dict()
