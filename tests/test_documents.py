import json
import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.postmortem_content import ActionItemDraft, Impact, PostmortemContent
from bot.postmortem_document import (
    document_data,
    duration_text,
    http_url,
    md_cell,
    md_text,
    render,
    render_html,
    render_markdown,
    template_environment,
)
from bot.views import ActionItemView, IncidentView, TimelineItem

START = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)

SECTIONS = [
    "Summary",
    "Impact",
    "Detection",
    "Timeline",
    "Root cause",
    "Five whys",
    "Contributing factors",
    "Technical",
    "Process",
    "Human",
    "Cause category",
    "What went well",
    "What went wrong",
    "Where we got lucky",
    "Lessons learned",
    "Action items",
]
# Sections that say "not written yet" when empty (the timeline has its own wording).
WRITTEN_SECTIONS = 12
PLACEHOLDER_MD = "_Not written yet._"
PLACEHOLDER_HTML = '<p class="missing" title="Not written yet">—</p>'


def incident(**overrides) -> IncidentView:
    fields = dict(
        id=1,
        team_id="T1",
        channel_id="C1",
        title="Cache stampede",
        severity=2,
        status="resolved",
        commander_id="U1",
        started_at=START,
        resolved_at=START + timedelta(hours=1, minutes=47, seconds=30),
    )
    fields.update(overrides)
    return IncidentView(**fields)


def timeline(text: str = "rolled back") -> list[TimelineItem]:
    return [
        TimelineItem(occurred_at=START, kind="lifecycle", user_id="U1", text="declared"),
        TimelineItem(
            occurred_at=START + timedelta(minutes=5),
            kind="message",
            user_id="U2",
            text=text,
            ts="1795442701.000100",
            file_names=("graph.png",),
            edited=True,
        ),
        TimelineItem(occurred_at=START + timedelta(minutes=9), kind="note", user_id="U3", text="paged db team"),
    ]


def content(text: str | None = None) -> PostmortemContent:
    """Every field written; `text` (if given) is put in every free-text field."""

    def t(default: str) -> str:
        return default if text is None else text

    return PostmortemContent(
        title=t("Checkout cache stampede"),
        severity=1,
        summary=t("The cache expired at once."),
        impact=Impact(
            users_affected=t("40% of checkouts"),
            duration=t("1 h 40 min"),
            revenue=t("about $12k"),
            sla_breached=True,
            support_tickets=t("37"),
        ),
        detection_how=t("p99 alert"),
        detection_time=t("6 minutes"),
        root_cause=t("A TTL set to the same value everywhere."),
        whys=[t("Why one"), "", "   ", t("Why two")],
        factors_technical=t("No jitter"),
        factors_process=t("No review of TTL changes"),
        factors_human=t("Alert fatigue"),
        cause_category="configuration",
        went_well=t("Rollback was quick"),
        went_wrong=t("Paging was slow"),
        lucky=t("It was not Black Friday"),
        lessons=t("Add jitter to TTLs"),
        action_items=[ActionItemDraft(title="draft row, not a stored item")],
    )


def action_items(
    text: str = "Add TTL jitter", ticket: str = "https://tracker.example/OPS-1?a=1&b=2"
) -> list[ActionItemView]:
    return [
        ActionItemView(
            id=1,
            title=text,
            owner_id="U2",
            due=date(2026, 12, 1),
            priority="P1",
            type="prevent",
            status="open",
            ticket_url=ticket,
        ),
        ActionItemView(
            id=2,
            title="Runbook",
            owner_id="U9",
            due=None,
            priority="P3",
            type="process",
            status="in_progress",
            ticket_url="",
        ),
    ]


def full_data(
    text: str | None = None,
    *,
    ticket: str = "https://tracker.example/OPS-1?a=1&b=2",
    names: dict | None = None,
    timeline_text: str = "rolled back",
) -> dict:
    return document_data(
        incident(),
        timeline(timeline_text),
        content=content(text),
        action_items=action_items(text or "Add TTL jitter", ticket),
        postmortem_status="in_review",
        authors=["U1", "U3"],
        user_names={"U1": "Alice", "U2": "Bob"} if names is None else names,
    )


class Page(HTMLParser):
    """What a browser would build: elements with their attributes, headings' text."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.headings: list[str] = []
        self._heading: list[str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag in ("h1", "h2", "h3"):
            self._heading = []

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append("".join(self._heading))
            self._heading = None

    def handle_data(self, data):
        if self._heading is not None:
            self._heading.append(data)

    def tags(self) -> set[str]:
        return {tag for tag, _ in self.elements}

    def attributes(self) -> list[tuple[str, str, str | None]]:
        return [(tag, name, value) for tag, attrs in self.elements for name, value in attrs.items()]


def md_headings(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("#")]


def unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


# --- Markdown cells and prose -----------------------------------------------------------------


def test_md_cell_keeps_tables_intact():
    assert md_cell("a | b\nc") == "a \\| b<br>c"
    assert md_cell(None) == ""
    # A lone carriage return is a line ending too; left in a cell it would end the row.
    assert md_cell("a\rb\r\nc") == "a<br>b<br>c"
    assert md_cell("<b>x</b>") == "\\<b>x\\</b>"


def test_md_text_keeps_lines_and_paragraphs_but_no_block_syntax():
    typed = "# not a heading\n---\nplain\n\n\n- not a list\n1. nor this\n```\n    indented\n> quote\n<!-- open"
    assert md_text(typed) == (
        "\\# not a heading  \n\\---  \nplain\n\n"
        "\\- not a list  \n1\\. nor this  \n\\```  \nindented  \n\\> quote  \n\\<!-- open"
    )
    # Continuation lines of a list item are indented to stay in it.
    assert md_text("a\nb\n\nc", indent=3) == "a  \n   b\n\n   c"
    assert md_text("a \\ b\\") == "a \\\\ b\\\\"


_BLOCK_LINE = re.compile(r"^(?:[#>\-+*_=`~|:<]|\d{1,9}[.)]| {4})")


@given(st.text(alphabet=st.sampled_from(list("#>-+*_=`~|:<!\\ \t\n\r1.)ab")), max_size=60))
def test_md_text_never_starts_a_block(typed):
    for line in md_text(typed).split("\n"):
        assert not _BLOCK_LINE.match(line), (typed, line)


def test_http_url_links_only_web_addresses():
    assert http_url("https://tracker.example/OPS-1") == "https://tracker.example/OPS-1"
    assert http_url(" HTTP://tracker.example/x ") == "HTTP://tracker.example/x"
    for bad in [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,x",
        "/relative",
        "//evil.example",
        'https://x.example/"><img src=x>',
        "OPS-1",
        "",
        None,
        "http://",
    ]:
        assert http_url(bad) is None, bad


# --- document data ----------------------------------------------------------------------------


def test_document_data_holds_what_people_wrote():
    data = full_data()
    assert json.loads(json.dumps(data)) == data
    assert (data["title"], data["severity"]) == ("Checkout cache stampede", 1)  # corrected in the modal
    assert data["status"] == "resolved" and data["postmortem_status"] == "in_review"
    assert (data["team"], data["channel"], data["commander"]) == ("T1", "C1", "U1")
    assert data["started_at"] == "2026-11-23T14:00:00Z" and data["resolved_at"] == "2026-11-23T15:47:30Z"
    assert (data["duration"], data["duration_seconds"]) == ("1 h 47 min", 6450)
    assert data["authors"] == ["U1", "U3"] and data["user_names"] == {"U1": "Alice", "U2": "Bob"}
    assert data["summary"] == "The cache expired at once."
    assert data["impact"] == {
        "users_affected": "40% of checkouts",
        "duration": "1 h 40 min",
        "revenue": "about $12k",
        "sla_breached": True,
        "support_tickets": "37",
    }
    assert data["detection"] == {"how": "p99 alert", "time_to_detect": "6 minutes"}
    assert data["whys"] == ["Why one", "Why two"]
    assert data["contributing_factors"] == {
        "technical": "No jitter",
        "process": "No review of TTL changes",
        "human": "Alert fatigue",
    }
    assert (data["cause_category"], data["cause_category_label"]) == ("configuration", "Configuration")
    assert (data["went_well"], data["went_wrong"], data["lucky"], data["lessons"]) == (
        "Rollback was quick",
        "Paging was slow",
        "It was not Black Friday",
        "Add jitter to TTLs",
    )
    # Stored items, not the modal's draft rows.
    assert data["action_items"] == [
        {
            "title": "Add TTL jitter",
            "owner": "U2",
            "due": "2026-12-01",
            "priority": "P1",
            "type": "prevent",
            "status": "open",
            "ticket": {"key": None, "url": "https://tracker.example/OPS-1?a=1&b=2"},
        },
        {
            "title": "Runbook",
            "owner": "U9",
            "due": None,
            "priority": "P3",
            "type": "process",
            "status": "in_progress",
            "ticket": None,
        },
    ]
    assert [entry["kind"] for entry in data["timeline"]] == ["lifecycle", "message", "note"]


def test_document_data_before_anyone_wrote_anything():
    data = document_data(incident(status="active", resolved_at=None), [])
    assert (data["title"], data["severity"], data["status"]) == ("Cache stampede", 2, "active")
    assert data["postmortem_status"] is None
    assert data["duration"] is None and data["duration_seconds"] is None and data["resolved_at"] is None
    assert data["authors"] == [] and data["user_names"] == {}
    assert data["impact"]["sla_breached"] is None and data["whys"] == [] and data["action_items"] == []
    assert data["cause_category"] is None and data["cause_category_label"] is None
    assert all(data[key] == "" for key in ("summary", "root_cause", "went_well", "went_wrong", "lucky", "lessons"))
    # A blank title in a draft does not blank the document's.
    assert document_data(incident(), [], content=PostmortemContent(title=" ", severity=4))["title"] == "Cache stampede"


def test_document_data_refuses_an_unknown_postmortem_status():
    with pytest.raises(ValueError):
        document_data(incident(), [], postmortem_status="done")


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0 s"),
        (59, "59 s"),
        (60, "1 min"),
        (6450, "1 h 47 min"),
        (7200, "2 h"),
        (26 * 3600 + 5 * 60, "1 d 2 h 5 min"),
        (3 * 86400, "3 d"),
        (None, None),
        (-5, None),
    ],
)
def test_duration_text(seconds, text):
    assert duration_text(seconds) == text


# --- Markdown ---------------------------------------------------------------------------------


def test_markdown_timeline_table_has_one_row_per_entry_whatever_the_text():
    incident = IncidentView(
        id=1,
        team_id="T1",
        channel_id="C1",
        title="Cache | stampede",
        severity=2,
        status="active",
        commander_id="U1",
        started_at=START,
    )
    items = [
        TimelineItem(occurred_at=START, kind="lifecycle", user_id="U1", text="declared"),
        TimelineItem(
            occurred_at=START, kind="message", user_id="U2", text="line1\nline2 | pipe", ts="1795442401.000100"
        ),
    ]
    data = document_data(incident, items)
    assert data["timeline"][1] == {
        "ts": "1795442401.000100",
        "time": "2026-11-23T14:00:00Z",
        "kind": "message",
        "user": "U2",
        "text": "line1\nline2 | pipe",
        "thread_ts": None,
        "files": [],
        "edited": False,
    }
    markdown = render_markdown(data)
    assert markdown.startswith("# Post-mortem: Cache | stampede\n")
    rows = [line for line in markdown.splitlines() if line.startswith("| 2026-11-23")]
    assert len(rows) == 2
    # Five unescaped pipes: four columns, whatever the text held.
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 5 for line in rows)
    assert "line1<br>line2 \\| pipe" in rows[1]


def test_markdown_has_every_section_in_order():
    markdown = render_markdown(full_data())
    headings = md_headings(markdown)
    assert headings[0] == "# Post-mortem: Checkout cache stampede"
    assert [h.lstrip("#").strip() for h in headings[1:]] == SECTIONS
    assert "| Date | 2026-11-23 |" in markdown
    assert "| Severity | SEV1 |" in markdown
    assert "| Post-mortem status | In review |" in markdown
    assert "| Duration | 1 h 47 min |" in markdown
    assert "| Started (UTC) | 2026-11-23 14:00:00 UTC |" in markdown
    assert "| Resolved (UTC) | 2026-11-23 15:47:30 UTC |" in markdown
    assert "| Commander | Alice |" in markdown
    assert "| Authors | Alice, U3 |" in markdown
    assert "| Channel | C1 |" in markdown
    assert "| SLA breached | Yes |" in markdown
    assert "| 2026-11-23 14:05:00 UTC | Bob | rolled back (files: graph.png) _(edited)_ | message |" in markdown
    assert "1. Why one\n2. Why two\n" in markdown
    assert "## Cause category\n\nConfiguration\n" in markdown
    assert (
        "| Add TTL jitter | Bob | 2026-12-01 | P1 (urgent) | Prevent | Open | <https://tracker.example/OPS-1?a=1&b=2> |"
    ) in markdown
    assert "| Runbook | U9 | — | P3 (later) | Process | In progress | — |" in markdown
    assert PLACEHOLDER_MD not in markdown


HOSTILE_MD = "# Owned\n---\nsetext\n===\n| a | b |\nh | h\n:-- | --:\n```\n<!-- hide the rest\n- list\n1. item\n    code\n> quote | pipe"


def test_markdown_user_text_cannot_change_the_document_structure():
    clean = render_markdown(full_data("plain words"))
    hostile = render_markdown(
        full_data(
            HOSTILE_MD,
            names={"U1": "# Alice\n|", "U2": "---"},
            timeline_text=HOSTILE_MD,
            ticket="[x](javascript:alert(1)) | y",
        )
    )
    # The only headings are the template's own.
    assert len(md_headings(hostile)) == len(md_headings(clean))
    assert md_headings(hostile)[1:] == md_headings(clean)[1:]
    # Every table keeps its column count, row by row.
    assert [unescaped_pipes(row) for row in table_rows(hostile)] == [unescaped_pipes(row) for row in table_rows(clean)]
    # No rule, setext underline, fence, block quote, list, code block or raw HTML starts a line;
    # the only numbered lines are the two whys.
    for line in hostile.splitlines():
        assert not re.match(r"^(?:-{3,}|={3,}|```|~~~|>|<|[-+*] | {4})", line), line
    assert [line[:3] for line in hostile.splitlines() if re.match(r"^\d+[.)]", line)] == ["1. ", "2. "]
    # What people typed is still all there, line by line.
    assert (
        "\\# Owned  \n\\---  \nsetext  \n\\===  \n\\| a | b |  \nh | h  \n\\:-- | --:  \n\\```  \n\\<!-- hide the rest"
        in hostile
    )
    assert "[x](javascript" not in hostile


def test_markdown_shows_what_is_missing():
    markdown = render_markdown(document_data(incident(status="active", resolved_at=None), []))
    assert markdown.count(PLACEHOLDER_MD) == WRITTEN_SECTIONS
    assert "_No timeline entries yet._" in markdown
    assert "| Post-mortem status | Not started |" in markdown
    assert "| Duration | ongoing |" in markdown and "| Resolved (UTC) | not yet |" in markdown
    assert [h.lstrip("#").strip() for h in md_headings(markdown)[1:]] == [
        s for s in SECTIONS if s not in ("Technical", "Process", "Human")
    ]


def test_markdown_whys_keep_their_numbering_across_lines():
    data = document_data(incident(), [], content=PostmortemContent(whys=["first\nstill first", "second"]))
    assert "1. first  \n   still first\n2. second\n" in render_markdown(data)


# --- HTML -------------------------------------------------------------------------------------


def test_html_templates_are_autoescaped_and_markdown_ones_are_not():
    env = template_environment()
    assert env.autoescape("postmortem.html.j2") is True
    assert env.autoescape("postmortem.html") is True
    assert env.autoescape("postmortem.md.j2") is False


def test_html_is_a_standalone_page_with_every_section_in_order():
    html = render_html(full_data())
    assert html.startswith("<!DOCTYPE html>\n") and html.rstrip().endswith("</html>")
    page = Page(html)
    assert {"html", "head", "meta", "title", "style", "body"} <= page.tags()
    assert page.headings == ["Post-mortem: Checkout cache stampede", *SECTIONS]
    for shown in [
        '<th scope="row">Post-mortem status</th><td>In review</td>',
        "<td>1 h 47 min</td>",
        "<td>2026-11-23 15:47:30 UTC</td>",
        "<td>Alice, U3</td>",
        "<p>Configuration</p>",
        '<li class="prose">Why two</li>',
        "(edited)",
        "(files: graph.png)",
        '<a href="https://tracker.example/OPS-1?a=1&amp;b=2"',
    ]:
        assert shown in html, shown
    assert PLACEHOLDER_HTML not in html


def test_html_shows_what_is_missing():
    html = render_html(document_data(incident(status="active", resolved_at=None), []))
    assert html.count(PLACEHOLDER_HTML) == WRITTEN_SECTIONS
    assert Page(html).headings[1:] == [s for s in SECTIONS if s not in ("Technical", "Process", "Human")]


HOSTILE_HTML = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>'><svg onload=alert(3)>"


@pytest.mark.parametrize(
    "ticket",
    [
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "java\nscript:alert(1)",
        'https://x.example/"><img src=x onerror=1>',
        "data:text/html,<script>alert(1)</script>",
        HOSTILE_HTML,
    ],
)
def test_html_user_text_is_inert(ticket):
    data = full_data(
        HOSTILE_HTML,
        names={"U1": HOSTILE_HTML, "U2": '" onmouseover="alert(1)'},
        timeline_text=HOSTILE_HTML,
        ticket=ticket,
    )
    data["timeline"][1]["files"] = [HOSTILE_HTML]
    html = render_html(data)
    page = Page(html)
    assert not page.tags() & {"script", "img", "svg", "iframe", "object"}
    for tag, name, value in page.attributes():
        assert not name.startswith("on"), (tag, name, value)
        if name == "href":
            assert value is not None and value.startswith(("http://", "https://")), value
    assert [attrs for tag, attrs in page.elements if tag == "a"] == []
    # Shown, as text.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in html


# --- formats and overrides --------------------------------------------------------------------


def test_render_json_round_trips():
    data = full_data("Ünïcode — “quotes” 🔥")
    text = render(data, "json")
    assert text.endswith("}\n") and "🔥" in text
    assert json.loads(text) == data


def test_render_dispatches_on_format():
    data = full_data()
    assert render(data, "md") == render_markdown(data)
    assert render(data, "html") == render_html(data)
    with pytest.raises(ValueError):
        render(data, "pdf")


def test_postmortem_templates_override_is_searched_first(tmp_path, monkeypatch):
    (tmp_path / "postmortem.md.j2").write_text(
        "Our format: {{ doc.title }} by {{ doc.commander | person }}\n{{ doc.summary | md_text }}\n"
    )
    monkeypatch.setenv("POSTMORTEM_TEMPLATES", str(tmp_path))
    data = full_data("# typed")
    assert render_markdown(data) == "Our format: # typed by Alice\n\\# typed\n"
    # Templates not overridden still come from the repository.
    assert render_html(data).startswith("<!DOCTYPE html>")
    monkeypatch.delenv("POSTMORTEM_TEMPLATES")
    assert render_markdown(data).startswith("# Post-mortem: ")


# --- link and image syntax from user text, field by field ------------------------------------

# Every place of the document a person's words reach; each gets its own marker, so a failure
# names the field that let a link through.
DOCUMENT_FIELDS = [
    "title",
    "summary",
    "impact.users_affected",
    "impact.duration",
    "impact.revenue",
    "impact.support_tickets",
    "detection_how",
    "detection_time",
    "root_cause",
    "why",
    "factors_technical",
    "factors_process",
    "factors_human",
    "went_well",
    "went_wrong",
    "lucky",
    "lessons",
    "action_item_title",
    "action_item_ticket",
    "timeline_text",
    "file_name",
    "person_name",
]
LINKS = (
    "[click](https://evil.example/{m}) ![img](https://evil.example/{m}.png) [ref]: https://evil.example/{m}\n"
    '[also][ref] <https://evil.example/{m}> <a href="https://evil.example/{m}">a</a> | c'
)
# A Markdown link or image not preceded by a backslash, an autolink to the typed address, or
# raw HTML. (The ticket column's own autolink is the bot's, to a checked http(s) address.)
LIVE_MD = re.compile(r"(?<!\\)(?:!?\[[^\]\n]*(?<!\\)\]\s*[(:\[]|<https?://evil|<a\b|<img\b)")


def _hostile_document(field: str) -> dict:
    text = LINKS.format(m=field)
    written = content()
    names = {"U1": "Alice", "U2": "Bob"}
    timeline_text, items, files = "rolled back", action_items(), ["graph.png"]
    if field.startswith("impact."):
        setattr(written.impact, field.split(".")[1], text)
    elif field == "why":
        written.whys = ["first", text]
    elif field == "action_item_title":
        items = action_items(text)
    elif field == "action_item_ticket":
        items = action_items(ticket=text)
    elif field == "timeline_text":
        timeline_text = text
    elif field == "file_name":
        files = [text]
    elif field == "person_name":
        names = {"U1": text, "U2": text}
    else:
        setattr(written, field, text)
    data = document_data(
        incident(),
        timeline(timeline_text),
        content=written,
        action_items=items,
        postmortem_status="in_review",
        authors=["U1"],
        user_names=names,
    )
    data["timeline"][1]["files"] = files
    return data


@pytest.mark.parametrize("field", DOCUMENT_FIELDS)
def test_no_field_can_put_a_live_link_or_image_in_either_document(field):
    data = _hostile_document(field)
    markdown = render_markdown(data)
    assert f"evil.example/{field}" in markdown, "the text is shown"
    for line in markdown.splitlines():
        if "evil.example" in line:
            assert not LIVE_MD.search(line), (field, line)
    page = Page(render_html(data))
    assert not page.tags() & {"script", "img", "svg", "iframe", "object"}
    assert not [href for tag, name, href in page.attributes() if name == "href" and "evil" in (href or "")], field
    assert not [name for _tag, name, _value in page.attributes() if name.startswith("on")], field
