"""Benchmark: rendering a post-mortem with 5,000 timeline entries and 50 action items.

    .venv/bin/python bench/render.py [--entries 5000] [--items 50] [--repeat 5]

Prints the best of `--repeat` runs for Markdown and HTML (the document data is built once;
rendering is what is timed), and the output sizes.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, date, datetime, timedelta

from bot.postmortem_content import ActionItemDraft, PostmortemContent
from bot.postmortem_document import document_data, render_html, render_markdown
from bot.views import ActionItemView, IncidentView, TimelineItem

START = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def build(entries: int, items: int) -> dict:
    incident = IncidentView(
        id=1,
        team_id="T1",
        channel_id="C1",
        title="Checkout failing",
        severity=1,
        status="resolved",
        commander_id="U1",
        started_at=START,
        resolved_at=START + timedelta(hours=2),
    )
    timeline = [
        TimelineItem(
            occurred_at=START + timedelta(seconds=i),
            kind="message",
            user_id=f"U{i % 40}",
            text=f"Entry {i}: error rate {i % 100}% | p99 {i % 900} ms <see dashboard> & notes\nsecond line",
            ts=f"{1795442400 + i}.000100",
        )
        for i in range(entries)
    ]
    content = PostmortemContent(
        title="Checkout failing",
        severity=1,
        summary="Summary " * 50,
        root_cause="Root cause " * 40,
        whys=[f"Why {n}" * 10 for n in range(5)],
    )
    actions = [
        ActionItemView(
            id=n,
            title=f"Add alert {n} at 800 ms",
            owner_id=f"U{n % 40}",
            due=date(2026, 12, 1) + timedelta(days=n),
            priority="P2",
            type="prevent",
            status="open",
            ticket_url=f"https://tracker.example.com/OPS-{n}",
        )
        for n in range(items)
    ]
    content.action_items = [ActionItemDraft(key=f"i{n}", title=a.title) for n, a in enumerate(actions)]
    return document_data(
        incident,
        timeline,
        content=content,
        action_items=actions,
        postmortem_status="in_review",
        authors=["U1"],
        user_names={f"U{n}": f"person{n}" for n in range(40)},
    )


def best(fn, data: dict, repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        size = len(fn(data))
        times.append(time.perf_counter() - started)
    return min(times), size


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data = build(args.entries, args.items)
    for name, fn in (("markdown", render_markdown), ("html", render_html)):
        seconds, size = best(fn, data, args.repeat)
        print(
            f"{name}: {seconds * 1000:.0f} ms for {args.entries} entries and {args.items} action items ({size / 1024:.0f} KiB)"
        )
