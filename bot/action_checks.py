"""Is an action item specific enough to finish? The action-item check of bot/quality.py.

An item is vague when it asks people to try harder ("be more careful"), promises to think
rather than to change something ("look into the cache"), only wishes the incident away
("make sure this doesn't happen again"), or improves a generic thing without saying which
("improve monitoring", "more alerts", "fix the issue"). A name for the thing to change is
enough to be specific: "Create cert inventory", "Document renewal process" and "Set up cert
expiry monitoring" are items you can finish and point at (SRE workbook ch. 10: start with
a verb, be specific and bounded). Pure: no Slack, no database.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

__all__ = ["ActionVerdict", "IMPERATIVE_VERBS", "judge_title"]

# Imperative verbs that open engineering action items (SRE workbook: "start each action
# item with a verb"), collected from public post-mortem templates and examples.
IMPERATIVE_VERBS = frozenset(
    """
    add adjust adopt alert align allow analyse analyze annotate announce apply archive ask
    assign audit automate autoscale back backfill backport benchmark block bound build bump
    cache cap capture change check clamp clarify clean coalesce collect communicate configure
    confirm consolidate containerise containerize convert create debounce decide decommission
    decouple dedupe deduplicate define delay delete deny deploy deprecate design detect disable
    discuss document downgrade drain drop educate emit enable encrypt enforce ensure enroll
    escalate establish estimate evaluate expand expire explore export expose extend extract fix
    flag forbid freeze gate generate grant handle harden hold implement import improve increase
    index instrument integrate introduce investigate isolate keep label limit link lint list
    load-test lock log look lower make map mark measure merge migrate mitigate mock monitor
    move notify page pair partition patch pause pin plan populate practice practise pre-warm
    prevent prewarm prioritise prioritize profile protect provide provision prune publish purge
    put quarantine queue raise rate rate-limit rebalance rebuild record reduce refactor rehearse
    reject release remove rename reorder replace replicate report require research reserve
    reset resize restart restore restrict retire retry revert review revisit rewrite roll
    rollback rotate route run scale schedule scope secure separate set shard share shorten
    simplify snapshot split stage standardise standardize start stop store stream streamline
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
# Wishing the incident away names no change.
_RECURRENCE = re.compile(
    r"\b(?:(?:make\s+sure|ensure|prevent|avoid|stop)\b.{0,40}\b(?:this|it|that|the\s+(?:issue|problem|incident|"
    r"outage|same))\b.{0,30}\b(?:again|recurr\w*|happening|in\s+the\s+future|future|repeat\w*)|"
    r"prevent\s+(?:a\s+)?recurrence|(?:avoid|prevent)\s+(?:this|it)\b)",
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
# ("improve monitoring", "better testing", "more alerts"), particles and grammar.
_NOT_SPECIFIC = frozenset(
    """
    monitoring observability alerting alert alerts testing tests test coverage process
    processes procedure procedures communication comms documentation docs doc runbook
    runbooks visibility reliability resilience resiliency stability quality performance
    security tooling tools handling logging logs metrics dashboard dashboards things thing
    stuff issue issues problem problems bug bugs incident incidents outage system systems code
    infra infrastructure config configuration deploys deploy deployment deployments response
    practices practice on-call oncall checks safeguards guardrails everything overall general
    generally further it this that these those our the a an to of for in on and with around
    we should need needs will can could be is are some any etc also all root cause why what
    how happened again so make sure way ways up out off down over back
    """.split()
)
_SPECIFIC_WORDS_NEEDED = 2

# A measurable outcome (SRE workbook: "it is clear when the item is done") rescues an
# otherwise vague-sounding item: "Investigate p99 regression and report by 2026-12-01".
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
# First words that show the title is a noun phrase or a wish, not a task.
_NOT_A_TASK_START = frozenset(
    "the a an our this that we someone somebody people engineers team need needs should more better no".split()
)
_NOMINAL_ENDINGS = ("ing", "tion", "sion", "ment", "ness", "ity", "ance", "ence")


@dataclass(frozen=True)
class ActionVerdict:
    code: str  # "action.vague" or "action.no_verb"
    why: str  # "exhortation", "recurrence", "noncommittal", "generic", "no_verb"


def _first_word(title: str) -> str:
    """The title's first word, lower-cased, without bullets, tags or surrounding punctuation."""
    words = _TITLE_LEADER.sub("", title).split()
    if not words:
        return ""
    return words[0].lower().replace("’", "'").strip(_PUNCTUATION)


def starts_with_verb(title: str) -> bool:
    word = _first_word(title)
    if word in IMPERATIVE_VERBS:
        return True
    # "re-run", "re-enable", "pre-warm", "auto-scale", "add/update"
    for prefix in ("re-", "pre-", "auto-", "re", "un"):
        if word.startswith(prefix) and word[len(prefix) :] in IMPERATIVE_VERBS:
            return True
    return "/" in word and word.split("/")[0] in IMPERATIVE_VERBS


def _plainly_not_a_task(title: str) -> bool:
    """No leading verb, and the title shows it: "TTL validation in CI", "Redis cluster upgrade",
    "The config should say seconds". A first word we merely do not know gets the benefit of
    the doubt ("Stage WAF rule deploys through canary data centres")."""
    body = _TITLE_LEADER.sub("", title)
    raw = body.split()[0].strip(_PUNCTUATION) if body.split() else ""
    first = raw.lower()
    words = [w.lower().strip(_PUNCTUATION) for w in body.split()]
    if first in _NOT_A_TASK_START or first.endswith(_NOMINAL_ENDINGS):
        return True
    if len(raw) >= 2 and raw.isupper():  # an acronym: "TTL validation in CI"
        return True
    return len(words) > 1 and (words[-1] in IMPERATIVE_VERBS or words[-1].endswith(_NOMINAL_ENDINGS[1:]))


def _specific_words(title: str) -> list[str]:
    """Words of the title that could make it specific: not the leading verb, not "improve",
    "better" and the like, not "monitoring", "testing" and the like."""
    body = _TITLE_LEADER.sub("", title)
    verb = _first_word(body) if starts_with_verb(body) else None
    words = [w.lower().replace("’", "'").strip(_PUNCTUATION) for w in _WORD.findall(_GENERIC.sub(" ", body))]
    words = [w for w in words if w]
    if verb and words and words[0] == verb:
        words = words[1:]
    return [w for w in words if w not in _NOT_SPECIFIC]


def judge_title(title: str) -> ActionVerdict | None:
    """What is wrong with a (non-empty) action-item title, or None."""
    if _EXHORTATION.search(title):
        return ActionVerdict("action.vague", "exhortation")
    if not _STRONG_OUTCOME.search(title):
        if _RECURRENCE.search(title):
            return ActionVerdict("action.vague", "recurrence")
        if _NONCOMMITTAL.search(title):
            return ActionVerdict("action.vague", "noncommittal")
        if _GENERIC.search(title):
            if len(_specific_words(title)) < _SPECIFIC_WORDS_NEEDED:
                return ActionVerdict("action.vague", "generic")
        elif not _specific_words(title):
            # "Add monitoring", "Update docs": a verb and nothing to point at.
            return ActionVerdict("action.vague", "generic")
    if not starts_with_verb(title) and _plainly_not_a_task(title):
        return ActionVerdict("action.no_verb", "no_verb")
    return None
