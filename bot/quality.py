"""Blameless-writing checks for a post-mortem draft.

`review(content, people)` reads a PostmortemContent and returns warnings the author sees
and may accept; nothing here rewrites the text. The checks are pure: no Slack, no
database, no network, so the modal can run them on every submit.

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

The word lists below are short on purpose: each warning costs a tired engineer a moment,
so a phrase is here only if it usually means what we warn about.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from bot.postmortem_content import ActionItemDraft, PostmortemContent

__all__ = ["QualityWarning", "review", "CODES", "MAX_ACTION_ITEMS", "MIN_ACTION_ITEMS"]

CODES = (
    "blame",
    "vague_action",
    "no_verb",
    "not_measurable",
    "too_few_actions",
    "too_many_actions",
    "why_stops_at_person",
    "human_error_root_cause",
)

# SRE workbook: a few action items that get done beat many that don't.
MIN_ACTION_ITEMS = 1
MAX_ACTION_ITEMS = 5


@dataclass(frozen=True)
class QualityWarning:
    code: str  # one of CODES
    field: str  # a content field ("root_cause", "whys", "impact.duration", ...), "action_items" or "action_item:<key>"
    message: str  # one sentence: what we noticed, quoting the words, and a blameless rewrite hint


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
_CODE_RANK = {code: i for i, code in enumerate(sorted(CODES))}


# --- People -----------------------------------------------------------------------------

# Slack user mentions as they appear in message text: <@U123ABC> and <@U123ABC|bob>.
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>", re.IGNORECASE)
# In a modal's plain_text_input "@bob" stays literal text, so a typed handle names a person
# too. Broadcasts are not people; an e-mail address (bob@example.com) is not a handle.
_HANDLE = re.compile(r"(?<![\w@])@(?!(?:here|channel|everyone)\b)[a-z0-9][\w.\-]*", re.IGNORECASE)


@lru_cache(maxsize=64)
def _people_regex(people: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex matching any of `people` as whole words, case-insensitively."""
    alternatives = set()
    for person in people:
        parts = person.split()
        if len("".join(parts)) < 2:  # "" or "a": would match everywhere
            continue
        alternatives.add(r"\s+".join(re.escape(part) for part in parts))
    if not alternatives:
        return None
    # Longest first, so "Bob Smith" wins over "Bob".
    ordered = sorted(alternatives, key=lambda alt: (-len(alt), alt))
    return re.compile(r"(?<!\w)(?:" + "|".join(ordered) + r")(?!\w)", re.IGNORECASE)


class _People:
    def __init__(self, people: Iterable[str]):
        names = tuple(sorted({p for p in people if isinstance(p, str)}))
        self._names = _people_regex(names)

    def named_in(self, text: str) -> bool:
        return bool(
            _MENTION.search(text) or _HANDLE.search(text) or (self._names is not None and self._names.search(text))
        )

    def remove(self, text: str) -> str:
        text = _MENTION.sub(" ", text)
        text = _HANDLE.sub(" ", text)
        return self._names.sub(" ", text) if self._names is not None else text


# --- 1. Blaming language ----------------------------------------------------------------

# Counterfactuals and judgement words that, next to a person's name, turn a sentence into
# blame. Counterfactuals ("should have", "failed to") are what Etsy's Debriefing
# Facilitation Guide asks facilitators to steer away from; the rest are the everyday forms
# of "it was X's fault" that the SRE book's "without indicting any individual" rules out.
# (label shown to the author, pattern)
BLAME_PHRASES: tuple[tuple[str, str], ...] = (
    ("failed to", r"failed\s+to"),
    ("should have", r"should(?:'ve|\s+have)"),
    ("shouldn't have", r"(?:shouldn't|should\s+not)\s+have"),
    ("forgot", r"forgot(?:ten)?"),
    ("didn't bother", r"(?:didn't|did\s+not)\s+bother"),
    ("careless", r"careless(?:ly|ness)?"),
    ("negligent", r"negligen(?:t|tly|ce)"),
    ("mistake by", r"mistake\s+(?:made\s+)?by|(?:'s|his|her|their)\s+mistake"),
    # Not "fault-tolerant", "fault injection" and friends.
    ("fault", r"fault(?![\s-]*(?:toleran|injection|isolation|domain|line|handl|inject))"),
    # Not "git blame"; "blameless" is excluded by the word boundary.
    ("blame", r"(?<!git\s)blame[ds]?"),
    ("who broke", r"who\s+broke"),
    ("broke the", r"broke\s+the"),
    ("screwed up", r"screwed\s+up"),
    ("messed up", r"messed\s+up"),
)
_BLAME = tuple((label, re.compile(r"\b(?:" + pattern + r")\b", re.IGNORECASE)) for label, pattern in BLAME_PHRASES)
# "Who broke it?" hunts for a culprit even when nobody is named.
_BLAME_WITHOUT_NAME = frozenset({"who broke"})

# A sentence ends at . ! ? followed by space, at a newline, or at a semicolon.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+|;")


# --- 2. "Human error" as the root cause ---------------------------------------------------

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


# --- 3. Whys that stop at a person ------------------------------------------------------

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


# --- 4. Action items ---------------------------------------------------------------------

# Imperative verbs that open engineering action items (SRE workbook: "start each action
# item with a verb"), collected from public post-mortem templates and examples.
IMPERATIVE_VERBS = frozenset(
    """
    add adjust adopt alert align allow analyse analyze annotate announce apply archive ask
    assign audit automate autoscale back backfill backport benchmark block bound build bump
    cache cap capture change check clamp clarify clean coalesce collect communicate configure
    confirm consolidate convert create debounce decide decommission decouple dedupe
    deduplicate define delay delete deny deploy deprecate design detect disable discuss
    document downgrade drain drop educate emit enable encrypt enforce ensure enroll escalate
    establish estimate evaluate expand expire explore export expose extend extract fix flag
    forbid freeze gate generate grant handle harden hold implement import improve increase
    index instrument integrate introduce investigate isolate keep label limit link lint list
    load-test lock log look lower make map mark measure merge migrate mitigate mock monitor
    move notify page pair partition patch pause pin plan populate practice practise pre-warm
    prevent prewarm prioritise prioritize profile protect provision prune publish purge put
    quarantine queue raise rate rate-limit rebalance rebuild record reduce refactor rehearse
    reject release remove rename reorder replace replicate report require research reserve
    reset resize restart restore restrict retire retry revert review revisit rewrite roll
    rollback rotate route run scale schedule scope secure separate set shard share shorten
    simplify snapshot split standardise standardize start stop store stream streamline
    switch sync tag teach test throttle tighten timebox track train trigger tune turn unify
    update upgrade use validate verify version warm warn watch write hire onboard
    do don't stop
    """.split()
)

# Bullets, numbering, tags and ticket ids people put before the title: "- ", "1. ",
# "[P1] ", "OPS-123: ", "TODO: ".
_TITLE_LEADER = re.compile(
    r"^(?:\s*(?:[-*•·–—>]+|\d+[.)]|\[[^\]\n]*\]|\([^)\n]*\)|[A-Z][A-Z0-9]+-\d+:?|(?i:todo|ai|action|follow-?up):))+\s*"
)
_WORD = re.compile(r"[a-z0-9][a-z0-9'’\-_./]*", re.IGNORECASE)
_PUNCTUATION = string.punctuation + "“”‘’…"

# Asking people to be more vigilant changes no system (the SRE book and the Etsy guide both
# look past individual care to the conditions around it): always vague.
_EXHORTATION = re.compile(
    r"\b(?:be\s+(?:more\s+|extra\s+)?(?:careful|vigilant|diligent|mindful|attentive)|"
    r"pay\s+(?:more\s+|closer\s+)?attention|(?:double|triple)[\s-]check|remember\s+to|"
    r"try\s+(?:harder|to)|don'?t\s+forget|do\s+better|take\s+(?:more\s+)?care|"
    r"more\s+careful(?:ly)?|communicate\s+better)\b",
    re.IGNORECASE,
)
# Items that promise to think rather than to change something: vague unless they carry a
# concrete outcome (a number, a date, "for all", a URL...).
_NONCOMMITTAL = re.compile(
    r"\b(?:investigate|investigation|look(?:ing)?\s+(?:into|at)|figure\s+out|explore|research|"
    r"discuss|consider|think\s+about|revisit|follow[\s-]up\s+on|dig\s+into)\b",
    re.IGNORECASE,
)
# "Improve X", "better X", "more X", "fix it": vague unless X is specific (two or more
# specific words) or there is a concrete outcome.
_GENERIC = re.compile(
    r"\b(?:improve[ds]?|improving|improvements?|better|enhance[ds]?|more|increase[ds]?|fix(?:es|ed)?|"
    r"review|address|clean\s*up|harden|strengthen|tighten|work\s+on)\b",
    re.IGNORECASE,
)
# Words that do not make an action item specific: the usual objects of "improve X"
# ("improve monitoring", "better testing", "more alerts") and grammar.
_NOT_SPECIFIC = frozenset(
    """
    monitoring observability alerting alert alerts testing tests test coverage process
    processes procedure procedures communication comms documentation docs doc runbook
    runbooks visibility reliability resilience resiliency stability quality performance
    security tooling tools handling logging logs metrics dashboard dashboards things thing
    stuff issue issues problem problems bug bugs incident incidents system systems code
    infra infrastructure config configuration deploys deploy deployment deployments response
    practices practice on-call oncall checks safeguards guardrails everything overall general
    generally further it this that these those our the a an to of for in on and with around
    we should need needs will can could be is are some any etc also all root cause why what
    how happened again so make sure way ways
    """.split()
)
_SPECIFIC_WORDS_NEEDED = 2

# A measurable outcome (SRE workbook: "it is clear when the item is done"). A strong
# outcome also rescues an otherwise vague-sounding item.
_STRONG_OUTCOME = re.compile(
    r"\d|https?://|\bwww\.|"
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|twenty|thirty|"
    r"sixty|hundred|thousand|twice|zero|half)\b|"
    r"\b(?:at\s+(?:most|least)|within|less\s+than|more\s+than|fewer\s+than|no\s+more\s+than|"
    r"per|every|each|daily|weekly|hourly|monthly|quarterly)\b|"
    r"\b(?:for\s+all|in\s+ci|before\s+(?:every\s+|each\s+|any\s+)?(?:deploy|deploys|deploying|deployment|"
    r"merge|merging|release|rollout))\b",
    re.IGNORECASE,
)
# Concrete artefacts: when the item exists, you can point at it.
_ARTEFACT = re.compile(
    r"\b(?:alerts?|alarms?|dashboards?|runbooks?|playbooks?|tests?|checks?|health[\s-]?checks?|"
    r"limits?|rate[\s-]limit(?:s|ing|er)?|timeouts?|slos?|slis?|slas?|error\s+budgets?|"
    r"canar(?:y|ies)|feature\s+flags?|kill\s+switch(?:es)?|circuit\s+breakers?|quotas?|"
    r"lint(?:er)?s?|pre-commit\s+hooks?|probes?|monitors?|checklists?|templates?|"
    r"validations?|confirmation\s+prompts?|approvals?|backoff|retries|pages?)\b",
    re.IGNORECASE,
)


# --- Messages ----------------------------------------------------------------------------

_QUOTE_LIMIT = 60
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


def _join(labels: list[str]) -> str:
    quoted = [f"“{label}”" for label in labels]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


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


def _find_blame(texts: list[str], people: _People) -> tuple[list[str], str]:
    """Blame phrases found (in order, once each) and the first blaming sentence."""
    found: list[str] = []
    first = ""
    for text in texts:
        text = text.replace("’", "'").replace("‘", "'")
        for sentence in _SENTENCE_BREAK.split(text):
            if not sentence.strip():
                continue
            named = None  # computed only if a phrase matches
            for label, pattern in _BLAME:
                if not pattern.search(sentence):
                    continue
                if label not in _BLAME_WITHOUT_NAME:
                    if named is None:
                        named = people.named_in(sentence)
                    if not named:
                        continue
                if label not in found:
                    found.append(label)
                first = first or sentence.strip()
    return found, first


def _blame_message(label: str, phrases: list[str], sentence: str) -> str:
    return (
        f"{label} reads as blame ({_join(phrases)} in {_quote(sentence)}); describe what the system "
        "or process allowed instead (e.g. “the deploy script did not check the target”) and leave "
        "names out."
    )


def _blame_warnings(content: PostmortemContent, people: _People) -> list[QualityWarning]:
    warnings = []
    for name, label, texts in _field_texts(content):
        phrases, sentence = _find_blame(texts, people)
        if phrases:
            warnings.append(QualityWarning("blame", name, _blame_message(label, phrases, sentence)))
    return warnings


def _is_essentially_human_error(text: str, people: _People) -> bool:
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


def _human_error_warning(content: PostmortemContent, people: _People) -> QualityWarning | None:
    root_cause = _str(content.root_cause)
    if root_cause.strip() and _is_essentially_human_error(root_cause, people):
        noticed = f"The root cause reads as human error ({_quote(root_cause)})"
    elif content.cause_category == "human_error":
        noticed = "The cause category is “Human error”"
    else:
        return None
    return QualityWarning(
        "human_error_root_cause",
        "root_cause",
        f"{noticed}; human error is where the inquiry starts, so ask what made the error possible "
        "or likely (a missing guardrail, confusing tooling, an unclear process) and name that as the cause.",
    )


def _why_warning(content: PostmortemContent, people: _People) -> QualityWarning | None:
    last = next((why for why in reversed([_str(w) for w in content.whys or []]) if why.strip()), None)
    if last is None:
        return None
    stops = (
        people.named_in(last) or _WHY_ALWAYS.search(last) or (_WHY_ROLE.search(last) and not _WHY_ENABLING.search(last))
    )
    if not stops:
        return None
    return QualityWarning(
        "why_stops_at_person",
        "whys",
        f"The last why stops at a person ({_quote(last)}); ask one more why: what in the system, "
        "tooling or process made that action possible or likely?",
    )


def _first_word(title: str) -> str:
    """The title's first word, lower-cased, without bullets, tags or surrounding punctuation."""
    words = _TITLE_LEADER.sub("", title).split()
    if not words:
        return ""
    return words[0].lower().replace("’", "'").strip(_PUNCTUATION)


def _starts_with_verb(title: str) -> bool:
    word = _first_word(title)
    if word in IMPERATIVE_VERBS:
        return True
    # "re-run", "re-enable", "pre-warm", "auto-scale", "add/update"
    for prefix in ("re-", "pre-", "auto-", "re", "un"):
        if word.startswith(prefix) and word[len(prefix) :] in IMPERATIVE_VERBS:
            return True
    return "/" in word and word.split("/")[0] in IMPERATIVE_VERBS


def _specific_words(title: str) -> list[str]:
    """Words of the title that could make it specific: not the leading verb, not "improve",
    "better" and the like, not "monitoring", "testing" and the like."""
    body = _TITLE_LEADER.sub("", title)
    verb = _first_word(body) if _starts_with_verb(body) else None
    words = [w.lower().replace("’", "'").strip(_PUNCTUATION) for w in _WORD.findall(_GENERIC.sub(" ", body))]
    words = [w for w in words if w]
    if verb and words and words[0] == verb:
        words = words[1:]
    return [w for w in words if w not in _NOT_SPECIFIC]


def _is_vague(title: str) -> bool:
    if _EXHORTATION.search(title):
        return True
    if _STRONG_OUTCOME.search(title):
        return False
    if _NONCOMMITTAL.search(title):
        return True
    if _GENERIC.search(title):
        return len(_specific_words(title)) < _SPECIFIC_WORDS_NEEDED
    # "Add monitoring", "Update docs": a verb and nothing to point at.
    return not _specific_words(title)


def _is_measurable(title: str) -> bool:
    return bool(_STRONG_OUTCOME.search(title) or _ARTEFACT.search(title))


def _row_warning(row: ActionItemDraft, people: _People) -> QualityWarning | None:
    field = f"action_item:{row.key}"
    title = _str(row.title).strip()
    if not title:
        return QualityWarning(
            "vague_action",
            field,
            "An action item has an owner, due date or ticket but no title; say what will change and "
            "how you'll know it's done (e.g. “Add a p99 latency alert on checkout at 800 ms”).",
        )
    quoted = _quote(title)
    phrases, _sentence = _find_blame([title], people)
    if phrases:
        return QualityWarning(
            "blame",
            field,
            f"Action item {quoted} reads as blame ({_join(phrases)}); make it about the change to the "
            "system or process, and put the person in the owner field instead.",
        )
    if _is_vague(title):
        return QualityWarning(
            "vague_action",
            field,
            f"Action item {quoted} is too vague to finish; name the specific change and how you'll know "
            "it's done (e.g. “Add a p99 latency alert on checkout at 800 ms for 5 min”).",
        )
    if not _starts_with_verb(title):
        return QualityWarning(
            "no_verb",
            field,
            f"Action item {quoted} doesn't start with an imperative verb; phrase it as a task someone "
            "can pick up, e.g. “Add …”, “Migrate …”, “Document …”.",
        )
    if not _is_measurable(title):
        return QualityWarning(
            "not_measurable",
            field,
            f"Action item {quoted} has no measurable outcome; add a number, threshold or concrete artefact "
            "(an alert, runbook, test, limit) so everyone can tell when it's done.",
        )
    return None


def _action_warnings(content: PostmortemContent, people: _People) -> list[QualityWarning]:
    rows = [row for row in content.action_items or [] if not row.is_blank()]
    warnings: list[QualityWarning] = []
    if len(rows) < MIN_ACTION_ITEMS:
        warnings.append(
            QualityWarning(
                "too_few_actions",
                "action_items",
                "There are no action items yet; add at least one specific change that makes this incident "
                "less likely or less harmful next time.",
            )
        )
    elif len(rows) > MAX_ACTION_ITEMS:
        warnings.append(
            QualityWarning(
                "too_many_actions",
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
    Slack mentions (<@U123>, <@U123|bob>) and typed "@handles" count as people too.
    """
    who = _People(people)
    warnings = _blame_warnings(content, who)
    for warning in (_human_error_warning(content, who), _why_warning(content, who)):
        if warning is not None:
            warnings.append(warning)
    warnings.extend(_action_warnings(content, who))

    row_rank = {f"action_item:{row.key}": i for i, row in enumerate(content.action_items or [])}
    after_fields = len(_FIELD_RANK)

    def order(warning: QualityWarning) -> tuple[int, int, int]:
        if warning.field in _FIELD_RANK:
            return (_FIELD_RANK[warning.field], 0, _CODE_RANK[warning.code])
        return (after_fields, row_rank.get(warning.field, len(row_rank)), _CODE_RANK[warning.code])

    return sorted(warnings, key=order)
