"""`postmortem-bot lint`, run as a real process on files the bot exports and files written by hand."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot.lint import LintInputError, parse
from bot.postmortem_content import ActionItemDraft, Impact, PostmortemContent
from bot.postmortem_document import document_data, render
from bot.views import ActionItemView, IncidentView
from storage.db import create_engine, create_session_factory, migrate
from storage.directory import remember_person
from tests.test_cli import SCRIPT, env

GUARD_S = 60
START = datetime(2026, 3, 10, 14, 4, tzinfo=UTC)


async def lint(*args: str, stdin: bytes | None = None, environ: dict[str, str] | None = None, cwd: Path | None = None):
    process = await asyncio.create_subprocess_exec(
        SCRIPT,
        "lint",
        *args,
        env=environ or env(),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), GUARD_S)
    return process.returncode, out.decode(), err.decode()


def exported(content: PostmortemContent, fmt: str, items: list[ActionItemView]) -> str:
    """The document as `postmortem-bot export` prints it (same data, same renderer)."""
    incident = IncidentView(
        id=1,
        team_id="T1",
        channel_id="C1",
        title="Checkout failing",
        severity=2,
        status="resolved",
        commander_id="UALICE0001",
        started_at=START,
        resolved_at=START.replace(hour=15),
    )
    data = document_data(incident, [], content=content, action_items=items, postmortem_status="draft")
    return render(data, fmt)


def item(title: str, n: int) -> ActionItemView:
    return ActionItemView(
        id=n,
        title=title,
        owner_id="UBOB000001",
        due=date(2026, 4, 1),
        priority="P2",
        type="prevent",
        status="open",
        ticket_url="",
    )


BLAMING = PostmortemContent(
    title="Checkout failing | cache",
    summary="At 14:02 the cache TTL dropped to 3 s.\nJohn deployed bad code; Alice paged the database team.",
    impact=Impact(users_affected="18,000 shoppers"),
    root_cause="Human error.",
    whys=["The database saturated.", "Keys expired together.", "The on-call engineer missed the alert."],
    factors_human="*The* DBA dropped the wrong table by mistake.",
    went_well="Bob rolled back the deploy at 14:32.",
)
ITEMS = [item("Improve monitoring", 1), item("Create cert inventory", 2), item("Be more careful", 3)]
EXPECTED = [
    ("summary", "blame.person", "John deployed bad code"),
    ("root_cause", "root_cause.human_error", "Human error."),
    ("whys", "whys.stop_at_person", "The on-call engineer missed the alert."),
    ("contributing_factors.human", "blame.role", "*The* DBA dropped the wrong table by mistake."),
    ("action_items[0]", "action.vague", "Improve monitoring"),
    ("action_items[2]", "action.vague", "Be more careful"),
]


@pytest.mark.parametrize("fmt", ["json", "md"])
async def test_lint_reads_what_export_prints(fmt, tmp_path):
    path = tmp_path / f"postmortem.{fmt}"
    path.write_text(exported(BLAMING, fmt, ITEMS))
    code, out, err = await lint("--format", "json", str(path), environ=env(), cwd=tmp_path)
    assert code == 1, err
    warnings = json.loads(out)
    assert [(w["field"], w["code"], w["quote"]) for w in warnings] == EXPECTED
    for warning in warnings:
        assert set(warning) == {"field", "code", "message", "quote"}
        assert warning["quote"] and warning["message"].strip()
    assert list(tmp_path.iterdir()) == [path], "no database was created"


async def test_a_clean_export_exits_0_and_says_so(tmp_path):
    clean = PostmortemContent(
        summary="At 14:02 a config deploy lowered the cache TTL; Alice rolled it back at 14:25.",
        root_cause="The config template assumed minutes; the field is in seconds and nothing validated it.",
        whys=["Why did checkout slow down? The database saturated."],
    )
    path = tmp_path / "clean.md"
    path.write_text(exported(clean, "md", [item("Add schema validation for the cache config", 1)]))
    code, out, err = await lint(str(path), cwd=tmp_path)
    assert (code, out, err) == (0, f"{path}: no warnings\n", "")


async def test_text_output_is_one_line_per_warning_and_a_count(tmp_path):
    code, out, _ = await lint("-", stdin=json.dumps({"went_wrong": "Sarah didn't check the logs."}).encode())
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("stdin: went_wrong: ") and "“Sarah didn't check the logs.”" in lines[0]
    assert lines[0].endswith("[blame.person]") and lines[-1] == "2 warnings in stdin"  # and no action items
    assert "action.too_few" in lines[1]


async def test_people_from_the_option_or_from_the_database(database_url, tmp_path):
    """A name that is neither a given name nor capitalised counts once someone says it is a person:
    --people, else the people the bot's database knows, with no Slack anywhere."""
    engine = create_engine(database_url)
    await migrate(engine)
    async with create_session_factory(engine).begin() as session:
        await remember_person(
            session,
            {"user_id": "UZ1", "display_name": "zorblax", "real_name": "Zed Orblax", "handle": "zed", "is_bot": False},
        )
        await remember_person(session, {"user_id": "UB1", "display_name": "deploybot", "is_bot": True})
    await engine.dispose()
    document = {
        "went_wrong": "zorblax failed to escalate. deploybot failed to post.",
        "action_items": [{"title": "Add an alert on queue depth above 1,000", "owner": "UZ1", "due": "2026-04-01"}],
    }
    stdin = json.dumps(document).encode()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    no_database = env()  # no DATABASE_URL, no ./postmortem.db: nobody known, nothing created
    assert await lint("-", stdin=stdin, environ=no_database, cwd=elsewhere) == (0, "stdin: no warnings\n", "")
    assert list(elsewhere.iterdir()) == []

    code, out, err = await lint("--format", "json", "-", stdin=stdin, environ=env(DATABASE_URL=database_url))
    assert code == 1, err
    assert [(w["code"], w["quote"]) for w in json.loads(out)] == [("blame.person", "zorblax failed to escalate.")]

    code, out, _ = await lint(
        "--format", "json", "--people", "deploybot, Someone Else", "-", stdin=stdin, environ=env(DATABASE_URL="bad://")
    )
    assert code == 1, "--people is used instead of the database, which is never opened"
    assert [(w["code"], w["quote"]) for w in json.loads(out)] == [("blame.person", "deploybot failed to post.")]


@pytest.mark.parametrize(
    "setup, says",
    [
        (lambda tmp: tmp / "missing.json", "No such file or directory"),
        (lambda tmp: tmp, "Is a directory"),
        (lambda tmp: _write(tmp / "bad.json", b'{"title": "x",'), "invalid JSON"),
        (lambda tmp: _write(tmp / "list.json", b"[1, 2]"), "expected a JSON object"),
        (lambda tmp: _write(tmp / "latin1.md", "## Summary\nCaf\xe9".encode("latin-1")), "not UTF-8"),
        (lambda tmp: _write(tmp / "empty.md", b"  \n"), "empty"),
        (lambda tmp: _write(tmp / "notes.txt", b"just some notes\n"), "not a post-mortem"),
        (lambda tmp: _write(tmp / "types.json", b'{"whys": 3}'), "`whys` must be a list"),
    ],
)
async def test_unreadable_input_exits_2_with_one_line(setup, says, tmp_path):
    path = setup(tmp_path)
    code, out, err = await lint(str(path), cwd=tmp_path)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"postmortem-bot: cannot read {path}: "), err
    assert says in lines[0] and "Traceback" not in err


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def test_help_lists_the_options_and_environment():
    code, out, _ = await lint("--help")
    assert code == 0
    for words in ("--format {text,json}", "--people", "FILE", "DATABASE_URL", "Exit 0 when clean, 1 with warnings, 2"):
        assert words in out, words
    code, out, _ = await asyncio.wait_for(_top_help(), GUARD_S)
    assert "lint" in out and "check a post-mortem file" in out


async def _top_help() -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(SCRIPT, "--help", stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode(), ""


# --- Reading, in process --------------------------------------------------------------------


def test_markdown_escapes_are_undone_and_empty_sections_are_empty():
    content = PostmortemContent(
        summary="# not a heading\n| pipes | and [links](x) \\ stay text",
        whys=["First.", "Second\nspans two lines."],
        action_items=[],
    )
    lintable = parse(exported(content, "md", [item("Fix | the [thing]", 1)]))
    assert lintable.content.summary == content.summary
    assert lintable.content.whys == content.whys
    assert lintable.content.root_cause == "" and lintable.content.went_well == ""
    assert [row.title for row in lintable.content.action_items] == ["Fix | the [thing]"]


def test_json_in_the_issues_shape_with_plain_factors_and_missing_keys():
    lintable = parse(
        json.dumps(
            {
                "title": "Cert expiry",
                "factors": ["The renewal was manual.", "Carla neglected to update the DNS record."],
                "action_items": [{"title": "Document renewal process", "owner": "carla", "due": "soon"}],
            }
        )
    )
    assert lintable.content.summary == "" and lintable.content.whys == []
    assert lintable.content.action_items == [ActionItemDraft(key="a0", title="Document renewal process", owner="carla")]
    from bot.lint import lint as lint_in_process

    assert [(w["field"], w["code"]) for w in lint_in_process(lintable, [])] == [("factors", "blame.person")]


def test_bad_types_are_reasons_not_tracebacks():
    for document, says in [
        ({"summary": {"a": 1}}, "`summary` must be text"),
        ({"action_items": "Improve monitoring"}, "`action_items` must be a list"),
        ({"action_items": [3]}, "`action_items[0]` must be an object"),
    ]:
        with pytest.raises(LintInputError, match=re.escape(says)):
            parse(json.dumps(document))
