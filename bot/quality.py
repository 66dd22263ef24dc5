"""Blameless-writing checks for a post-mortem, from the form or from a file (`postmortem-bot lint`).

`review(content, people)` reads a PostmortemContent and returns warnings the author sees
and may accept; nothing here rewrites the text. Every warning names its field, a code, the
exact words it is about (`quote`) and a message pointing to a blameless or specific
rewrite. The checks are pure: no Slack, no database, no network, so the modal can run them
on every submit and CI can run them on a file.

What the checks look for comes from common blameless post-mortem practice:

* Google SRE book, ch. 15 "Postmortem Culture: Learning from Failure": a post-mortem
  names contributing causes "without indicting any individual or team"; it is written
  about systems and processes, not people.
* Etsy's "Debriefing Facilitation Guide" (Allspaw, Evans, Schauenberg, 2016): "human
  error" is where an inquiry starts, not where it ends; counterfactuals ("should have",
  "failed to") and hindsight judge people instead of explaining why their actions made
  sense at the time.
* Google SRE workbook, ch. 10 "Postmortem Culture" (and its example post-mortem): action
  items start with a verb, are specific and bounded, and have an outcome you can check;
  a handful that matter beat a long list nobody finishes.

Blame is found one sentence at a time by bot/blame.py; action items are judged by
bot/action_checks.py. How well both do is measured on tests/quality_corpus/ (bench/quality.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.action_checks import judge_title
from bot.blame import Blame, People, find_blame, sentence_spans
from bot.postmortem_content import ActionItemDraft, PostmortemContent

__all__ = ["QualityWarning", "review", "CODES", "MAX_ACTION_ITEMS", "MIN_ACTION_ITEMS"]

CODES = (
    "blame.person",  # a named person, a mention or a pronoun judged
    "blame.role",  # a role judged: "the intern", "the on-call engineer", "the DBA"
    "blame.hunt",  # looking for a culprit: "who broke it?"
    "blame.human_error",  # "human error" given as an explanation
    "root_cause.human_error",  # the root cause (or its category) is human error
    "whys.stop_at_person",  # the last why ends at a person
    "action.vague",  # an action item nobody can finish
    "action.no_verb",  # an action item that is not phrased as a task
    "action.too_few",
    "action.too_many",
)

# SRE workbook: a few action items that get done beat many that don't.
MIN_ACTION_ITEMS = 1
MAX_ACTION_ITEMS = 5


@dataclass(frozen=True)
class QualityWarning:
    code: str  # one of CODES
    field: str  # a content field ("root_cause", "whys", "impact.duration", ...), "action_items" or "action_item:<key>"
    message: str  # one sentence: what we noticed, quoting the words, and a blameless or specific rewrite
    quote: str = ""  # the exact words the warning is about, as written ("" for a count of items)


# --- Free-text fields, in the order the document shows them ---------------------------------

# (field id, label used in messages). Whys are one field; action items are handled per row.
TEXT_FIELDS: tuple[tuple[str, str], ...] = (
    ("title", "The title"),
    ("summary", "The summary"),
    ("impact.users_affected", "Users affected"),
    ("impact.duration", "Impact duration"),
    ("impact.revenue", "Revenue impact"),
    ("impact.support_tickets", "Support tickets"),
    ("detection_how", "How it was detected"),
    ("detection_time", "Time to detect"),
    ("root_cause", "The root cause"),
    ("whys", "The 5 whys"),
    ("factors_technical", "Technical factors"),
    ("factors_process", "Process factors"),
    ("factors_human", "Human factors"),
    ("went_well", "What went well"),
    ("went_wrong", "What went wrong"),
    ("lucky", "Where we got lucky"),
    ("lessons", "Lessons"),
)
_FIELD_RANK = {name: i for i, (name, _label) in enumerate(TEXT_FIELDS)}
_FIELD_RANK["action_items"] = len(TEXT_FIELDS)
_CODE_RANK = {code: i for i, code in enumerate(CODES)}


# --- "Human error" as the root cause ----------------------------------------------------

# Etsy guide / SRE book: "human error" is a label, not a cause; the question is what made
# the error possible or likely.
_HUMAN_ERROR = re.compile(
    r"\b(?:human|operator|user|engineer|developer|manual|personnel)\s+(?:error|mistake|slip|oversight)s?\b",
    re.IGNORECASE,
)
# "Bob's mistake", "oversight by the on-call engineer": counts when a person or role is named.
_PLAIN_MISTAKE = re.compile(r"\b(?:mistake|oversight|carelessness|negligence|slip-up)s?\b", re.IGNORECASE)
# Words that add nothing to "human error": "It was simply human error by the on-call engineer."
_HUMAN_ERROR_FILLER = frozenset(
    """
    a an the it it's its was is this that just simply simple plain pure purely classic basic
    basically mostly again our their his her my one s by from of on part caused due to root
    cause made and an someone somebody person engineer operator developer on-call oncall
    member team staff individual
    """.split()
)
# More than this many other words and the root cause explains something beyond the label.
_HUMAN_ERROR_MAX_EXTRA_WORDS = 4
_WORD = re.compile(r"[a-z0-9][a-z0-9'’\-_./]*", re.IGNORECASE)


# --- Whys that stop at a person ----------------------------------------------------------

# Etsy guide: a chain of whys that ends at a person ends the learning there.
_WHY_ALWAYS = re.compile(r"\b(?:(?:human|operator|user)\s+error|they\s+forgot|(?:he|she)\s+forgot)\b", re.IGNORECASE)
_WHY_ROLE = re.compile(
    r"\b(?:someone|somebody|engineers?|operators?|developers?|devs?|on-?call(?:\s+person)?)\b", re.IGNORECASE
)
# A why that says what *let* the person act ("the CLI lets any engineer push to prod",
# "nothing stopped someone from...") already points at the system.
_WHY_ENABLING = re.compile(
    r"\b(?:allow(?:s|ed|ing)?|let(?:s|ting)?|permit(?:s|ted)?|without|no|nothing|lack(?:s|ed|ing)?|"
    r"missing|absent|unclear|ambiguous|confusing|undocumented)\b",
    re.IGNORECASE,
)


# --- Messages ----------------------------------------------------------------------------

_QUOTE_LIMIT = 80
# Slack special tokens would render (and <!here> would ping) inside a Slack message; quote
# them as plain text instead.
_SLACK_TOKEN = re.compile(r"<([@#!])([^>|]*)(?:\|([^>]*))?>")


def _plain(match: re.Match[str]) -> str:
    sigil, target, label = match.group(1), match.group(2), match.group(3)
    if sigil == "#":
        return "#" + (label or target)
    return "@" + (label or target)


def _quote(text: str, limit: int = _QUOTE_LIMIT) -> str:
    """The words, on one line, shortened, in curly quotes."""
    text = " ".join(_SLACK_TOKEN.sub(_plain, text).split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return f"“{text}”"


# What to write instead, by the kind of judgement (bot/blame.py's categories).
_BLAME_REWRITES = {
    "omission": "describe what made the step easy to miss, e.g. “The alert did not link to the logs”",
    "counterfactual": (
        "say what happened and what was known at the time, not what should have been done, "
        "e.g. “The dashboard showed the spike only after 14:10”"
    ),
    "manner": (
        "describe what made the slip easy to make, e.g. “The tool accepted the production host without a confirmation”"
    ),
    "verdict": "name the conditions that made it possible instead of a person, e.g. “The deploy had no canary stage”",
}


def _blame_message(label: str, blame: Blame, sentence: str) -> str:
    quoted = _quote(sentence)
    if blame.kind == "hunt":
        return (
            f"{label}: {quoted} looks for a culprit (“{blame.phrase}”); ask what allowed it instead, "
            "e.g. “What let the change reach every region at once?”"
        )
    if blame.kind == "human_error":
        return (
            f"{label}: {quoted} explains with “{blame.phrase}”, where the inquiry should start; name what made the "
            "error possible or likely (a missing guardrail, confusing tooling, an unclear process)."
        )
    who = _quote(blame.who, 40)
    return (
        f"{label}: {quoted} judges {who} (“{blame.phrase}”); {_BLAME_REWRITES[blame.category]}, "
        "and keep names for what people did, not for what went wrong."
    )


def _blame_code(blame: Blame) -> str:
    return f"blame.{blame.kind}"


# --- The checks --------------------------------------------------------------------------


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _field_texts(content: PostmortemContent) -> list[tuple[str, str, list[str]]]:
    impact = content.impact
    values: dict[str, list[str]] = {
        "title": [_str(content.title)],
        "summary": [_str(content.summary)],
        "impact.users_affected": [_str(getattr(impact, "users_affected", ""))],
        "impact.duration": [_str(getattr(impact, "duration", ""))],
        "impact.revenue": [_str(getattr(impact, "revenue", ""))],
        "impact.support_tickets": [_str(getattr(impact, "support_tickets", ""))],
        "detection_how": [_str(content.detection_how)],
        "detection_time": [_str(content.detection_time)],
        "root_cause": [_str(content.root_cause)],
        "whys": [_str(why) for why in (content.whys or [])],
        "factors_technical": [_str(content.factors_technical)],
        "factors_process": [_str(content.factors_process)],
        "factors_human": [_str(content.factors_human)],
        "went_well": [_str(content.went_well)],
        "went_wrong": [_str(content.went_wrong)],
        "lucky": [_str(content.lucky)],
        "lessons": [_str(content.lessons)],
    }
    return [(name, label, values[name]) for name, label in TEXT_FIELDS]


def _blames(text: str, people: People) -> list[tuple[Blame, str]]:
    """Each blaming sentence of `text` (the sentence as written) with what it does."""
    found = []
    for start, end in sentence_spans(text):
        sentence = text[start:end]
        blame = find_blame(sentence, people)
        if blame is not None:
            found.append((blame, sentence))
    return found


def _blame_warnings(content: PostmortemContent, people: People) -> list[QualityWarning]:
    warnings = []
    for name, label, texts in _field_texts(content):
        seen: set[tuple[str, str]] = set()
        for text in texts:
            for blame, sentence in _blames(text, people):
                if name == "root_cause" and blame.kind == "human_error":
                    continue  # the root-cause check says it, more precisely
                key = (_blame_code(blame), sentence)
                if key in seen:
                    continue
                seen.add(key)
                warnings.append(QualityWarning(key[0], name, _blame_message(label, blame, sentence), sentence))
    return warnings


def _is_essentially_human_error(text: str, people: People) -> bool:
    if _HUMAN_ERROR.search(text):
        rest = _HUMAN_ERROR.sub(" ", text)
    elif _PLAIN_MISTAKE.search(text) and (people.named_in(text) or _WHY_ROLE.search(text)):
        rest = _PLAIN_MISTAKE.sub(" ", text)
    else:
        return False
    rest = people.remove(rest).lower().replace("’", "'")
    words = [w.split("'")[0].strip(".-/_") for w in _WORD.findall(rest)]
    extra = [w for w in words if w and w not in _HUMAN_ERROR_FILLER]
    return len(extra) <= _HUMAN_ERROR_MAX_EXTRA_WORDS


def _human_error_warning(content: PostmortemContent, people: People) -> QualityWarning | None:
    root_cause = _str(content.root_cause).strip()
    if root_cause and _is_essentially_human_error(root_cause, people):
        noticed, quote = f"The root cause reads as human error ({_quote(root_cause)})", root_cause
    elif content.cause_category == "human_error":
        noticed, quote = "The cause category is “Human error”", "Human error"
    else:
        return None
    return QualityWarning(
        "root_cause.human_error",
        "root_cause",
        f"{noticed}; human error is where the inquiry starts, so ask what made the error possible "
        "or likely (a missing guardrail, confusing tooling, an unclear process) and name that as the cause.",
        quote,
    )


def _why_warning(content: PostmortemContent, people: People) -> QualityWarning | None:
    last = next((why for why in reversed([_str(w) for w in content.whys or []]) if why.strip()), None)
    if last is None:
        return None
    stops = (
        people.named_in(last) or _WHY_ALWAYS.search(last) or (_WHY_ROLE.search(last) and not _WHY_ENABLING.search(last))
    )
    if not stops:
        return None
    return QualityWarning(
        "whys.stop_at_person",
        "whys",
        f"The last why stops at a person ({_quote(last)}); ask one more why: what in the system, "
        "tooling or process made that action possible or likely?",
        last.strip(),
    )


_ACTION_REWRITES = {
    "exhortation": (
        "asks people to try harder, which changes no system; name a guardrail instead, "
        "e.g. “Add a confirmation prompt before dropping a production table”"
    ),
    "recurrence": (
        "wishes the incident away without naming a change; say what will change, "
        "e.g. “Alert when a certificate expires within 14 days”"
    ),
    "noncommittal": (
        "promises to think, not to change something; say what it delivers and by when, "
        "e.g. “Find why the pool saturates and report by 2026-12-01”"
    ),
    "generic": (
        "is too vague to finish; name the specific change and how you'll know it's done, "
        "e.g. “Add a p99 latency alert on checkout at 800 ms for 5 min”"
    ),
    "no_verb": ("is not phrased as a task; start with what someone will do, e.g. “Add …”, “Migrate …”, “Document …”"),
}


def _row_warning(row: ActionItemDraft, people: People) -> QualityWarning | None:
    field = f"action_item:{row.key}"
    title = _str(row.title).strip()
    if not title:
        return QualityWarning(
            "action.vague",
            field,
            "An action item has an owner, due date or ticket but no title; say what will change and "
            "how you'll know it's done (e.g. “Add a p99 latency alert on checkout at 800 ms”).",
            "",
        )
    quoted = _quote(title)
    blames = _blames(title, people)
    if blames:
        blame, _sentence = blames[0]
        return QualityWarning(
            _blame_code(blame),
            field,
            f"Action item {quoted} reads as blame (“{blame.phrase}”); make it about the change to the "
            "system or process, and put the person in the owner field instead.",
            title,
        )
    verdict = judge_title(title)
    if verdict is None:
        return None
    return QualityWarning(verdict.code, field, f"Action item {quoted} {_ACTION_REWRITES[verdict.why]}.", title)


def _action_warnings(content: PostmortemContent, people: People) -> list[QualityWarning]:
    rows = [row for row in content.action_items or [] if not row.is_blank()]
    warnings: list[QualityWarning] = []
    if len(rows) < MIN_ACTION_ITEMS:
        warnings.append(
            QualityWarning(
                "action.too_few",
                "action_items",
                "There are no action items yet; add at least one specific change that makes this incident "
                "less likely or less harmful next time.",
            )
        )
    elif len(rows) > MAX_ACTION_ITEMS:
        warnings.append(
            QualityWarning(
                "action.too_many",
                "action_items",
                f"There are {len(rows)} action items; keep the {MAX_ACTION_ITEMS} or fewer that matter most "
                "here and move the rest to the team backlog, so these actually get done.",
            )
        )
    for row in rows:
        warning = _row_warning(row, people)
        if warning is not None:
            warnings.append(warning)
    return warnings


def review(content: PostmortemContent, people: Iterable[str] = ()) -> list[QualityWarning]:
    """Warnings about blame, "human error" and weak action items, in document order.

    `people` are display names and real names of workspace members ("alice", "Bob Smith");
    Slack mentions (<@U123>, <@U123|bob>), typed "@handles", common given names, roles
    ("the intern") and he/she count as people too.
    """
    who = People(people)
    warnings = _blame_warnings(content, who)
    why = _why_warning(content, who)
    if why is not None:
        # The last why's own warning says it better than a blame warning on the same words.
        warnings = [w for w in warnings if not (w.field == "whys" and w.quote in why.quote)]
    for warning in (_human_error_warning(content, who), why):
        if warning is not None:
            warnings.append(warning)
    warnings.extend(_action_warnings(content, who))

    row_rank = {f"action_item:{row.key}": i for i, row in enumerate(content.action_items or [])}
    after_fields = len(_FIELD_RANK)

    def order(warning: QualityWarning) -> tuple[int, int, int]:
        if warning.field in _FIELD_RANK:
            # Blame warnings in the order of their sentences (the sort is stable), then the field's own.
            blame = warning.code.startswith("blame.")
            return (_FIELD_RANK[warning.field], 0 if blame else 1 + _CODE_RANK[warning.code], 0)
        return (after_fields, row_rank.get(warning.field, len(row_rank)), _CODE_RANK[warning.code])

    return sorted(warnings, key=order)
