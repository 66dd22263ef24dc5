import re
from datetime import datetime, timezone

from bot.documents import document_data, md_cell, render_markdown
from bot.timeline import TimelineItem
from storage.models import Incident

START = datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc)


def test_md_cell_keeps_tables_intact():
    assert md_cell("a | b\nc") == "a \\| b<br>c"
    assert md_cell(None) == ""


def test_markdown_timeline_table_has_one_row_per_entry_whatever_the_text():
    incident = Incident(id=1, team_id="T1", channel_id="C1", title="Cache | stampede", severity=2, status="active",
                        commander_id="U1", started_at=START)
    items = [
        TimelineItem(occurred_at=START, kind="lifecycle", user_id="U1", text="declared"),
        TimelineItem(occurred_at=START, kind="message", user_id="U2", text="line1\nline2 | pipe", ts="1795442401.000100"),
    ]
    data = document_data(incident, items)
    assert data["timeline"][1] == {
        "ts": "1795442401.000100", "time": "2026-11-23T14:00:00Z", "kind": "message", "user": "U2",
        "text": "line1\nline2 | pipe", "thread_ts": None, "files": [], "edited": False,
    }
    markdown = render_markdown(data)
    rows = [line for line in markdown.splitlines() if line.startswith("| 2026-11-23")]
    assert len(rows) == 2
    # Five unescaped pipes: four columns, whatever the text held.
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 5 for line in rows)
    assert "line1<br>line2 \\| pipe" in rows[1]
