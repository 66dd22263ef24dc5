"""The post-mortem modal: Slack's limits, a lossless round trip through view.state, errors."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.views import View

from bot.postmortem_content import (
    ACTION_TYPES,
    CAUSE_CATEGORIES,
    MAX_TEXT,
    MAX_WHYS,
    PRIORITIES,
    ActionItemDraft,
    Impact,
    PostmortemContent,
    mark_edits,
    with_stored_items,
)
from bot.ui.postmortem_modal import (
    ADD_ACTION_ITEM,
    CALLBACK_ID,
    FIELD_LABELS,
    FIXED_BLOCKS,
    MAX_ACTION_ROWS,
    REMOVE_ACTION_ITEM,
    ROW_BLOCKS,
    ROW_PARTS,
    WARNINGS_CALLBACK_ID,
    block_id,
    parse_block_id,
    postmortem_modal,
    revision_of,
    row_block_id,
    visible_rows,
    warnings_view,
)
from bot.ui.postmortem_state import (
    DUE_IN_PAST,
    ROOT_CAUSE_REQUIRED,
    TICKET_TOO_LONG,
    field_errors,
    field_label,
    parse_state,
    with_row_added,
    with_row_removed,
)
from bot.ui.text import MAX_MODAL_BLOCKS

TODAY = date(2026, 11, 24)
CONTEXT = "*Started* <!date^1795442400^{date_short_pretty} {time}|2026-11-23 14:00 UTC> · *Duration* 42 min"


def filled(rows: int = 2) -> PostmortemContent:
    return PostmortemContent(
        title="Checkout errors after the payments config change",
        severity=2,
        summary="Checkout failed for EU users for 42 minutes.\nA config push removed the payments endpoint.",
        impact=Impact(
            users_affected="~12% of EU checkout users",
            duration="42 minutes",
            revenue="~$8k",
            sla_breached=True,
            support_tickets="37",
        ),
        detection_how="Error-rate alert on checkout",
        detection_time="6 minutes",
        root_cause="The config loader accepted an empty endpoint list.",
        whys=["Checkout returned 500s", "", "The loader accepted an empty list"],
        factors_technical="No schema validation",
        factors_process="Config changes skip canary",
        factors_human="The diff was 3,000 lines long",
        cause_category="configuration",
        went_well="Rollback took 4 minutes",
        went_wrong="Alert went to the wrong rotation",
        lucky="It happened at low traffic",
        lessons="Validate config at load time",
        action_items=[
            ActionItemDraft(
                key=f"i{10 + n}" if n % 2 == 0 else f"n{n:08x}",
                title=f"Validate endpoints {n}",
                owner=f"UOWNER{n:04d}",
                due=date(2026, 12, 1 + n),
                priority=list(PRIORITIES)[n % len(PRIORITIES)],
                type=list(ACTION_TYPES)[n % len(ACTION_TYPES)],
                ticket_url=f"https://tracker.example.com/PAY-{n}",
            )
            for n in range(rows)
        ],
    )


def maximal() -> PostmortemContent:
    """Every text longer than any limit, every row, every selection made."""
    long = "<!channel> & " + "x" * (MAX_TEXT + 500)
    content = filled(MAX_ACTION_ROWS)
    for name in (
        "title",
        "summary",
        "detection_how",
        "detection_time",
        "root_cause",
        "factors_technical",
        "factors_process",
        "factors_human",
        "went_well",
        "went_wrong",
        "lucky",
        "lessons",
    ):
        setattr(content, name, long)
    content.impact = Impact(users_affected=long, duration=long, revenue=long, sla_breached=False, support_tickets=long)
    content.whys = [long] * MAX_WHYS
    for row in content.action_items:
        row.title = long
        row.ticket_url = "https://example.com/" + "a" * MAX_TEXT
    return content


def render(content: PostmortemContent, revision: int = 0, **kwargs) -> dict:
    return postmortem_modal(content, incident_id=42, context_line=CONTEXT, revision=revision, **kwargs)


def inputs(view: dict) -> list[dict]:
    return [b for b in view["blocks"] if b["type"] == "input"]


def simulate_state(view: dict) -> dict:
    """view.state.values as Slack sends it when the user changed nothing: initial values, or null."""
    values: dict = {}
    for block in inputs(view):
        element = block["element"]
        kind = element["type"]
        if kind in ("plain_text_input", "url_text_input"):
            state = {"value": element.get("initial_value")}
        elif kind in ("static_select", "radio_buttons"):
            state = {"selected_option": element.get("initial_option")}
        elif kind == "users_select":
            state = {"selected_user": element.get("initial_user")}
        elif kind == "datepicker":
            state = {"selected_date": element.get("initial_date")}
        else:  # pragma: no cover - the modal uses no other element
            raise AssertionError(f"unexpected element {kind}")
        values[block["block_id"]] = {element["action_id"]: {"type": kind, **state}}
    return values


def all_text_objects(node):
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn") and "text" in node:
            yield node
        for value in node.values():
            yield from all_text_objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from all_text_objects(value)


def assert_within_slack_limits(view: dict) -> None:
    assert View(**view).to_dict() == view  # slack_sdk's validators, every nested object included
    assert 1 <= len(view["blocks"]) <= MAX_MODAL_BLOCKS
    for key in ("title", "submit", "close"):
        assert len(view[key]["text"]) <= 24
    assert len(view["private_metadata"]) < 100
    ids = [b["block_id"] for b in view["blocks"] if "block_id" in b]
    assert len(ids) == len(set(ids))
    assert all(len(i) <= 255 for i in ids)
    for block in view["blocks"]:
        if block["type"] == "input":
            assert block["optional"] is True
            assert len(block["label"]["text"]) <= 2000
            assert len(block.get("hint", {}).get("text", "")) <= 2000
            element = block["element"]
            assert len(element.get("placeholder", {}).get("text", "")) <= 150
            if element["type"] == "plain_text_input":
                assert 0 < element["max_length"] <= 3000
                assert len(element.get("initial_value", "")) <= element["max_length"]
            if element["type"] == "url_text_input":
                assert len(element.get("initial_value", "")) <= 3000
            if element["type"] == "static_select":
                assert 0 < len(element["options"]) <= 100
            for empty_key in ("initial_value", "initial_option", "initial_user", "initial_date"):
                assert element.get(empty_key, "present") not in ("", None, {})
            if "initial_option" in element:
                assert element["initial_option"] in element["options"]
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
    for text in all_text_objects(view["blocks"]):
        assert text["text"], "Slack rejects empty text objects"


# --- rendering ------------------------------------------------------------------------


def test_empty_content_renders_every_section_and_the_add_button():
    view = render(PostmortemContent())
    assert_within_slack_limits(view)
    assert view["type"] == "modal" and view["callback_id"] == CALLBACK_ID and view["notify_on_close"] is True
    assert (view["title"]["text"], view["submit"]["text"], view["close"]["text"]) == (
        "Post-mortem",
        "Submit",
        "Save draft",
    )
    assert json.loads(view["private_metadata"]) == {"incident_id": 42}
    assert view["blocks"][0] == {"type": "context", "elements": [{"type": "mrkdwn", "text": CONTEXT}]}
    headers = [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]
    assert headers == [
        "Summary",
        "Impact",
        "Detection",
        "Root cause",
        "Contributing factors",
        "Looking back",
        "Action items",
    ]
    fields = [parse_block_id(b["block_id"])[0] for b in inputs(view)]
    assert fields == list(FIELD_LABELS)  # every field, in the SRE template's order
    labels = [b["label"]["text"] for b in inputs(view)]
    assert labels[fields.index("pm_why_1") : fields.index("pm_why_5") + 1] == [
        "Why 1",
        "Why 2",
        "Why 3",
        "Why 4",
        "Why 5",
    ]
    # Nothing pre-filled except the default severity (SEV3).
    assert [
        b["element"].get("initial_option", {}).get("value") for b in inputs(view) if "initial_option" in b["element"]
    ] == ["SEV3"]
    last = view["blocks"][-1]
    assert last["type"] == "actions" and last["elements"][0]["action_id"] == ADD_ACTION_ITEM
    assert len(view["blocks"]) == FIXED_BLOCKS


def test_filled_content_prefills_every_input():
    content = filled(2)
    view = render(content, revision=3, notice="Draft saved by <@UALICE0001>")
    assert_within_slack_limits(view)
    assert [e["text"] for e in view["blocks"][0]["elements"]] == [CONTEXT, "Draft saved by <@UALICE0001>"]
    by_field = {parse_block_id(b["block_id"])[0]: b["element"] for b in inputs(view)}
    assert by_field["pm_title"]["initial_value"] == content.title
    assert by_field["pm_title"]["max_length"] == 200
    assert by_field["pm_summary"]["multiline"] is True
    assert by_field["pm_severity"]["initial_option"]["value"] == "SEV2"
    assert by_field["pm_sla_breached"]["initial_option"]["value"] == "yes"
    assert by_field["pm_cause_category"]["initial_option"]["value"] == "configuration"
    assert [o["value"] for o in by_field["pm_cause_category"]["options"]] == list(CAUSE_CATEGORIES)
    assert "initial_value" not in by_field["pm_why_2"]  # the empty why in the middle
    assert by_field["pm_why_3"]["initial_value"] == content.whys[2]
    assert "initial_value" not in by_field["pm_why_4"]
    row = content.action_items[1]
    assert by_field[f"ai_{row.key}_owner"] == {
        "type": "users_select",
        "action_id": "owner",
        "initial_user": row.owner,
        "placeholder": {"type": "plain_text", "text": "One person", "emoji": True},
    }
    assert by_field[f"ai_{row.key}_due"]["initial_date"] == row.due.isoformat()
    assert by_field[f"ai_{row.key}_ticket"]["type"] == "url_text_input"
    removes = [
        b for b in view["blocks"] if b["type"] == "actions" and b["elements"][0]["action_id"] == REMOVE_ACTION_ITEM
    ]
    assert [b["elements"][0]["value"] for b in removes] == [r.key for r in content.action_items]
    assert removes[0]["elements"][0]["text"]["text"] == "Remove"
    assert len(view["blocks"]) == FIXED_BLOCKS + 2 * ROW_BLOCKS


def test_sla_not_said_and_odd_selections_are_omitted_not_sent_empty():
    content = filled(1)
    content.impact.sla_breached = None
    content.severity = 9
    content.cause_category = "cosmic_rays"
    content.action_items[0].priority = "P0"
    view = render(content)
    assert_within_slack_limits(view)  # no initial_option that is not among the options
    by_field = {parse_block_id(b["block_id"])[0]: b["element"] for b in inputs(view)}
    for field in ("pm_sla_breached", "pm_severity", "pm_cause_category", f"ai_{content.action_items[0].key}_priority"):
        assert "initial_option" not in by_field[field]


def test_worst_case_fits_in_a_modal_and_texts_are_truncated_to_max_length():
    assert FIXED_BLOCKS + ROW_BLOCKS * MAX_ACTION_ROWS <= MAX_MODAL_BLOCKS  # 34 + 7 * 8 = 90
    view = render(maximal(), notice="n" * 5000)
    assert_within_slack_limits(view)
    assert len(view["blocks"]) == FIXED_BLOCKS + ROW_BLOCKS * MAX_ACTION_ROWS <= MAX_MODAL_BLOCKS
    assert len(view["private_metadata"]) < 100
    # At the cap the add button gives way to a line that says why.
    last = view["blocks"][-1]
    assert last["type"] == "context" and f"up to {MAX_ACTION_ROWS} action items" in last["elements"][0]["text"]
    assert not any(b["type"] == "actions" and b["elements"][0]["action_id"] == ADD_ACTION_ITEM for b in view["blocks"])
    texts = [b["element"] for b in inputs(view) if b["element"]["type"] == "plain_text_input"]
    assert all(len(e["initial_value"]) == e["max_length"] and e["initial_value"].endswith("…") for e in texts)


def test_private_metadata_stays_tiny_whatever_the_content():
    small = render(PostmortemContent())["private_metadata"]
    big = render(maximal())["private_metadata"]
    assert small == big == '{"incident_id":42}'


def test_more_rows_than_the_form_holds_are_kept_not_lost():
    content = filled(MAX_ACTION_ROWS + 3)
    view = render(content)
    assert_within_slack_limits(view)
    assert len(view["blocks"]) == FIXED_BLOCKS + ROW_BLOCKS * MAX_ACTION_ROWS
    assert "3 more action items are kept" in view["blocks"][-1]["elements"][0]["text"]
    parsed = parse_state(simulate_state(view), content)
    assert parsed == content
    assert with_row_added(content) == content


def test_rows_with_unusable_or_duplicate_keys_are_kept_but_not_rendered():
    content = filled(3)
    content.action_items[1].key = "bad key!"
    content.action_items.append(ActionItemDraft(key=content.action_items[0].key, title="duplicate"))
    view = render(content)
    assert_within_slack_limits(view)
    assert [r.key for r in visible_rows(content)] == [content.action_items[0].key, content.action_items[2].key]
    parsed = parse_state(simulate_state(view), content)
    assert [r.key for r in parsed.action_items] == [content.action_items[i].key for i in (0, 2, 1)]


def test_revision_changes_every_input_block_id_only():
    content = filled(3)
    a, b = render(content, revision=1), render(content, revision=2)
    ids_a = [x["block_id"] for x in inputs(a)]
    ids_b = [x["block_id"] for x in inputs(b)]
    assert all(i.endswith(".r1") for i in ids_a) and all(i.endswith(".r2") for i in ids_b)
    assert not set(ids_a) & set(ids_b)
    assert [parse_block_id(i)[0] for i in ids_a] == [parse_block_id(i)[0] for i in ids_b]
    others = lambda v: [x.get("block_id") for x in v["blocks"] if x["type"] != "input"]  # noqa: E731
    assert others(a) == others(b)


def test_block_id_round_trip():
    assert block_id("pm_title", 3) == "pm_title.r3"
    assert parse_block_id("pm_title.r3") == ("pm_title", 3)
    assert parse_block_id("ai_n0a1b2c3d_due.r12") == ("ai_n0a1b2c3d_due", 12)
    assert parse_block_id("pm_title") == ("pm_title", None)
    assert parse_block_id("pm_title.r" + "9" * 5000) == ("pm_title.r" + "9" * 5000, None)
    assert row_block_id("i7", "owner", 0) == "ai_i7_owner.r0"


# --- reading the state back -----------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [PostmortemContent(), filled(0), filled(3), filled(MAX_ACTION_ROWS)],
    ids=["empty", "no-rows", "3-rows", "max-rows"],
)
@pytest.mark.parametrize("revision", [0, 7])
def test_round_trip_through_slack_state(content, revision):
    view = render(content, revision=revision)
    # From the state alone: `previous` contributes nothing when every block is present.
    assert parse_state(simulate_state(view), PostmortemContent(severity=4)) == content
    assert parse_state(simulate_state(view), content) == content


def test_round_trip_of_maximal_content_gives_the_truncated_texts():
    view = render(maximal())
    parsed = parse_state(simulate_state(view), PostmortemContent())
    assert len(parsed.summary) == MAX_TEXT and len(parsed.title) == 200
    assert parse_state(simulate_state(render(parsed)), PostmortemContent()) == parsed  # stable from then on


def test_parse_reads_user_edits_and_empties():
    content = filled(2)
    view = render(content, revision=4)
    values = simulate_state(view)
    first, second = content.action_items
    values[block_id("pm_title", 4)]["title"]["value"] = "New title"
    values[block_id("pm_severity", 4)]["severity"]["selected_option"] = {
        "text": {"type": "plain_text", "text": "SEV1"},
        "value": "SEV1",
    }
    values[block_id("pm_sla_breached", 4)]["sla_breached"]["selected_option"] = {"value": "unknown"}
    values[block_id("pm_cause_category", 4)]["cause_category"]["selected_option"] = None
    values[block_id("pm_summary", 4)]["summary"]["value"] = None
    values[block_id("pm_why_3", 4)]["why_3"]["value"] = None  # now whys 2..5 are empty: dropped
    values[row_block_id(first.key, "owner", 4)]["owner"]["selected_user"] = None
    values[row_block_id(first.key, "due", 4)]["due"]["selected_date"] = None
    values[row_block_id(second.key, "ticket", 4)]["ticket"]["value"] = None
    parsed = parse_state(values, content)
    assert parsed.title == "New title" and parsed.severity == 1
    assert parsed.impact.sla_breached is None and parsed.cause_category is None and parsed.summary == ""
    assert parsed.whys == ["Checkout returned 500s"]
    assert parsed.action_items[0].owner is None and parsed.action_items[0].due is None
    assert parsed.action_items[1].ticket_url == ""
    assert [r.key for r in parsed.action_items] == [first.key, second.key]


def test_whys_keep_their_position():
    content = PostmortemContent(whys=["", "b", "", "d"])
    assert parse_state(simulate_state(render(content)), PostmortemContent()).whys == ["", "b", "", "d"]


def test_parse_follows_the_view_rows_whatever_their_revision_and_ignores_unknown_blocks():
    content = filled(3)
    view = render(content, revision=2)
    values = simulate_state(view)
    removed = content.action_items[1].key
    values = {k: v for k, v in values.items() if not k.startswith(f"ai_{removed}_")}
    new_key = "n0badcafe"
    values[row_block_id(new_key, "title", 9)] = {"title": {"type": "plain_text_input", "value": "Added elsewhere"}}
    values["something_else.r2"] = {"x": {"type": "plain_text_input", "value": "ignored"}}
    values["ai_zzz_colour.r2"] = {"x": {"type": "plain_text_input", "value": "ignored"}}
    parsed = parse_state(values, content)
    assert [r.key for r in parsed.action_items] == [content.action_items[0].key, content.action_items[2].key, new_key]
    assert parsed.action_items[2] == ActionItemDraft(key=new_key, title="Added elsewhere")


def test_state_in_a_different_dict_order_keeps_the_view_order():
    content = filled(4)
    values = simulate_state(render(content))
    shuffled = dict(reversed(list(values.items())))
    assert parse_state(shuffled, content) == content


def test_missing_blocks_keep_the_previous_values():
    content = filled(2)
    assert parse_state({}, content) == PostmortemContent(**{**content.__dict__, "action_items": []})
    only_title = {block_id("pm_title", 0): {"title": {"type": "plain_text_input", "value": "T"}}}
    parsed = parse_state(only_title, content)
    assert parsed.title == "T" and parsed.root_cause == content.root_cause and parsed.whys == content.whys


@pytest.mark.parametrize(
    "values",
    [
        None,
        [],
        "x",
        3,
        {"pm_title.r0": None},
        {"pm_title.r0": {"title": "v"}},
        {"pm_severity.r0": {"s": {"selected_option": "SEV1"}}},
        {"pm_severity.r0": {"s": {"selected_option": {"value": 2}}}},
        {"ai_n1_due.r0": {"d": {"selected_date": "2026-02-30"}}},
        {"ai_n1_due.r0": {"d": {"selected_date": ["2026-02-03"]}}},
        {("tuple",): {}},
        {"pm_why_1.r0": {"a": {"value": {"nested": 1}}}},
    ],
)
def test_parse_state_of_malformed_values_does_not_raise(values):
    parse_state(values, filled(1))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
FIELD_NAMES = list(FIELD_LABELS) + [f"ai_{k}_{p}" for k in ("i1", "n00aa11bb", "x") for p in ROW_PARTS]
BLOCK_IDS = st.one_of(
    st.text(max_size=30),
    st.builds(lambda f, r: f"{f}.r{r}", st.sampled_from(FIELD_NAMES), st.integers(0, 10**12)),
    st.sampled_from(FIELD_NAMES),
)
ELEMENT_STATE = st.fixed_dictionaries(
    {},
    optional={
        "type": JSON,
        "value": st.none() | st.text(max_size=50) | JSON,
        "selected_option": st.none()
        | JSON
        | st.fixed_dictionaries(
            {
                "value": st.sampled_from(
                    ["SEV1", "SEV4", "SEV9", "yes", "no", "unknown", "P1", "P9", "mitigate", "configuration", ""]
                )
                | JSON
            }
        ),
        "selected_user": st.none() | st.text(max_size=12) | JSON,
        "selected_date": st.none() | st.text(max_size=12) | st.dates().map(date.isoformat) | JSON,
    },
)
STATE_VALUES = st.dictionaries(
    BLOCK_IDS,
    st.one_of(JSON, st.dictionaries(st.text(max_size=10), st.one_of(ELEMENT_STATE, JSON), max_size=3)),
    max_size=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.one_of(STATE_VALUES, JSON))
def test_parse_state_never_raises_and_always_renders(values):
    for previous in (PostmortemContent(), filled(3)):
        parsed = parse_state(values, previous)
        assert isinstance(parsed, PostmortemContent)
        assert parsed.severity in (1, 2, 3, 4) and parsed.cause_category in (None, *CAUSE_CATEGORIES)
        assert all(r.priority in PRIORITIES and r.type in ACTION_TYPES for r in parsed.action_items)
        assert len(parsed.whys) <= MAX_WHYS and (not parsed.whys or parsed.whys[-1].strip())
        assert_within_slack_limits(render(parsed, revision=1))  # whatever came in, the next view is valid
        field_errors(parsed, today=TODAY, severity=1, not_people={}, revision=1)


# --- rows -----------------------------------------------------------------------------


def test_rows_added_up_to_the_cap_and_removed_by_key():
    content = PostmortemContent()
    for _ in range(MAX_ACTION_ROWS + 2):
        content = with_row_added(content)
    assert len(content.action_items) == MAX_ACTION_ROWS
    assert len({r.key for r in content.action_items}) == MAX_ACTION_ROWS
    assert all(r.is_blank() for r in content.action_items)
    key = content.action_items[3].key
    fewer = with_row_removed(content, key)
    assert len(fewer.action_items) == MAX_ACTION_ROWS - 1 and key not in {r.key for r in fewer.action_items}
    assert len(content.action_items) == MAX_ACTION_ROWS  # the original is untouched
    assert with_row_removed(fewer, "nope") == fewer


def test_adding_a_row_after_typing_keeps_what_was_typed():
    """The service's flow: parse the stale view, add, re-render with revision + 1."""
    stored = filled(1)
    view = render(stored, revision=5)
    values = simulate_state(view)
    values[block_id("pm_root_cause", 5)]["root_cause"]["value"] = "typed before clicking Add"
    updated = with_row_added(parse_state(values, stored))
    new_view = render(updated, revision=6)
    by_id = {b["block_id"]: b["element"] for b in inputs(new_view)}
    assert by_id[block_id("pm_root_cause", 6)]["initial_value"] == "typed before clicking Add"
    assert len(updated.action_items) == 2
    assert parse_state(simulate_state(new_view), updated) == updated


def test_rows_the_form_cannot_show_are_named_below_it():
    content = filled(MAX_ACTION_ROWS + 2)
    content.action_items[-2].title = "Page <!channel> & *everyone*"
    content.action_items[-1].owner = "U1> <!here"
    text = render(content)["blocks"][-1]["elements"][0]["text"]
    assert "2 more action items are kept as saved but not shown here" in text
    assert "*Page &lt;!channel&gt; &amp; *everyone**" in text and f"<@{content.action_items[-2].owner}>" in text
    assert "<!here" not in text and "U1&gt;" not in text, "an owner that is not a user id is not rendered"
    assert f"due {content.action_items[-1].due.isoformat()}" in text


def test_a_stored_title_fits_its_input_whole():
    title = "Add " + "a" * 296  # as long as action_items.title holds
    view = render(PostmortemContent(action_items=[ActionItemDraft(key="i1", title=title)]))
    (element,) = [b["element"] for b in inputs(view) if b["block_id"].startswith("ai_i1_title")]
    assert element["initial_value"] == title and element["max_length"] >= len(title)


def test_stored_items_join_the_draft_as_stored_except_what_the_draft_edited():
    stored = [
        ActionItemDraft(key="i1", title="Add an alert on pool use above 80%", owner="UBOB", due=date(2026, 12, 15)),
        ActionItemDraft(key="i2", title="Cap pool size", owner="UCAROL", due=date(2026, 12, 20), priority="P1"),
        ActionItemDraft(key="i3", title="Removed in the form", owner="UBOB", due=date(2026, 12, 20)),
    ]
    typed = ActionItemDraft(key="n0000beef", title="New row", owner="UALICE", due=date(2026, 12, 9))
    # The form shows item 2 with a changed title, moved to the top, and a new row.
    form = PostmortemContent(
        action_items=[
            ActionItemDraft(
                key="i2", title="Cap the pool size at 80", owner="UCAROL", due=date(2026, 12, 20), priority="P1"
            ),
            typed,
            ActionItemDraft(key="i9", title="An item someone else deleted", owner="UBOB", due=date(2026, 12, 9)),
        ]
    )
    draft = mark_edits(form, stored)
    assert [r.edited for r in draft.action_items] == [["title"], [], []]
    assert PostmortemContent.from_json(draft.to_json()) == draft

    # Later, item 2's owner moves its due date from a DM: the form shows that, and the edit.
    stored[1] = replace(stored[1], due=date(2027, 1, 5))
    shown = with_stored_items(draft, stored, removed=[3])
    assert [(r.key, r.title, r.due) for r in shown.action_items] == [
        ("i2", "Cap the pool size at 80", date(2027, 1, 5)),
        (typed.key, "New row", date(2026, 12, 9)),
        ("i9", "An item someone else deleted", date(2026, 12, 9)),
        ("i1", "Add an alert on pool use above 80%", date(2026, 12, 15)),
    ]
    assert shown.action_items[0].priority == "P1" and shown.action_items[0].edited == ["title"]
    assert with_stored_items(PostmortemContent(), stored).action_items == stored, "an empty draft shows every item"


# --- field errors ---------------------------------------------------------------------


def errors_for(content, severity=3, not_people=None, revision=2):
    return field_errors(content, today=TODAY, severity=severity, not_people=not_people or {}, revision=revision)


def test_a_clean_post_mortem_has_no_errors():
    assert errors_for(filled(3), severity=1) == {}
    assert errors_for(PostmortemContent()) == {}


@pytest.mark.parametrize("severity,expected", [(1, True), (2, True), (3, False), (4, False)])
def test_root_cause_required_for_sev1_and_sev2(severity, expected):
    content = filled(0)
    content.root_cause = "   "
    errors = errors_for(content, severity=severity)
    assert (errors == {"pm_root_cause.r2": ROOT_CAUSE_REQUIRED}) is expected
    if not expected:
        assert errors == {}


def test_action_row_errors_point_at_the_right_input():
    content = filled(2)
    row, other = content.action_items
    row.title, row.owner, row.due, row.ticket_url = " ", None, None, "tracker/PAY-1"
    other.due = date(2026, 11, 23)
    other.ticket_url = "javascript:alert(1)"
    content.action_items.append(ActionItemDraft())  # blank rows are ignored
    errors = errors_for(content)
    assert set(errors) == {
        f"ai_{row.key}_title.r2",
        f"ai_{row.key}_owner.r2",
        f"ai_{row.key}_due.r2",
        f"ai_{row.key}_ticket.r2",
        f"ai_{other.key}_due.r2",
        f"ai_{other.key}_ticket.r2",
    }
    assert errors[f"ai_{other.key}_due.r2"] == DUE_IN_PAST
    assert all(e.endswith(".") and len(e) < 150 for e in errors.values())
    # The error keys are block ids of the view rendered at that revision.
    view_ids = {b["block_id"] for b in inputs(render(content, revision=2))}
    assert set(errors) <= view_ids


def test_due_today_is_fine_and_owner_must_be_a_person():
    content = filled(1)
    row = content.action_items[0]
    row.due = TODAY
    assert errors_for(content) == {}
    errors = errors_for(content, not_people={row.owner: "is a bot"})
    assert errors == {f"ai_{row.key}_owner.r2": "Pick a person: this user is a bot. Action items need one human owner."}


def test_ticket_urls():
    content = filled(1)
    row = content.action_items[0]
    for url in ("http://x.example/1", "HTTPS://x.example/1", ""):
        row.ticket_url = url
        assert errors_for(content) == {}
    for url in ("https://", "ftp://x.example/1", "x.example/1", "http://[::1"):
        row.ticket_url = url
        assert set(errors_for(content)) == {f"ai_{row.key}_ticket.r2"}


def test_rows_not_shown_get_no_errors():
    content = filled(MAX_ACTION_ROWS + 1)
    content.action_items[-1].owner = None
    assert errors_for(content) == {}


# --- warnings -------------------------------------------------------------------------


def test_warnings_view():
    view = warnings_view([("Root cause", "Names a person: <@U1> & co. Describe the system instead.")], incident_id=7)
    assert_within_slack_limits(view)
    assert view["callback_id"] == WARNINGS_CALLBACK_ID
    assert (view["title"]["text"], view["submit"]["text"], view["close"]["text"]) == (
        "Check before submit",
        "Submit anyway",
        "Back to edit",
    )
    assert json.loads(view["private_metadata"]) == {"incident_id": 7}
    intro = view["blocks"][0]["text"]["text"]
    assert "blameless" in intro and "Submit anyway" in intro
    assert view["blocks"][1]["text"] == {
        "type": "mrkdwn",
        "text": "*Root cause*\nNames a person: &lt;@U1&gt; &amp; co. Describe the system instead.",
    }


@pytest.mark.parametrize("count", [0, 98, 99, 100, 500])
def test_many_warnings_stay_within_100_blocks(count):
    warnings = [(f"Field {i} <x>", "m" * 5000) for i in range(count)]
    view = warnings_view(warnings, incident_id=7)
    assert_within_slack_limits(view)
    sections = [b for b in view["blocks"] if b["type"] == "section"][1:]
    if count <= 99:
        assert len(sections) == count and len(view["blocks"]) == count + 1
    else:
        assert len(view["blocks"]) == 100
        assert view["blocks"][-1]["elements"][0]["text"].startswith(f"…and {count - 98} more")


# --- helpers for the listeners ----------------------------------------------------------


def test_revision_of_a_rendered_or_submitted_view():
    view = render(filled(1), revision=6)
    assert revision_of(view) == 6
    submitted = {"id": "V1", "blocks": view["blocks"], "state": {"values": simulate_state(view)}}
    assert revision_of(submitted) == 6
    assert revision_of({"state": {"values": simulate_state(view)}}) == 6
    for junk in (
        None,
        {},
        {"blocks": "x"},
        {"blocks": [None, {"type": "input", "block_id": 3}]},
        {"state": {"values": []}},
    ):
        assert revision_of(junk) == 0


def test_field_labels_for_quality_warnings():
    content = filled(2)
    first = content.action_items[0]
    assert field_label("root_cause", content) == "Root cause"
    assert field_label("impact.duration", content) == "Duration of impact"
    assert field_label("lucky", content) == "Where we got lucky"
    assert field_label("whys", content) == "The 5 whys"
    assert field_label("action_items", content) == "Action items"
    assert field_label("cause_category", content) == "Cause category"
    assert field_label(f"action_item:{first.key}", content) == f"Action item 1 ({first.title})"
    assert field_label("action_item:gone", content) == "An action item"
    assert field_label("something_new", content) == "Something new"


def test_a_ticket_link_longer_than_the_database_holds_is_a_field_error():
    """action_items.ticket_url holds 500 characters and Slack's url input has no max_length:
    a longer link must come back on its field, not fail the write after Slack was answered."""
    content = filled(1)
    (row,) = content.action_items
    row.ticket_url = "https://tracker.example.com/browse/OPS-1?" + "q" * 470
    assert len(row.ticket_url) == 511
    assert errors_for(content) == {f"ai_{row.key}_ticket.r2": TICKET_TOO_LONG}
    row.ticket_url = row.ticket_url[:500]
    assert errors_for(content) == {}
