"""Does a sentence blame a person? The blame check of bot/quality.py, one sentence at a time.

Blame, as the blameless-writing guides describe it (Google SRE book ch. 15, Etsy's Debriefing
Facilitation Guide, the Atlassian and PagerDuty handbooks), is a person or a role made the
subject of a judgement: an omission ("Sarah didn't check the logs", "the on-call engineer
missed the alert"), a counterfactual ("should have", "if Jane had read the runbook"), a
manner ("dropped the wrong table by mistake", "deployed bad code"), or a verdict ("Bob's
fault", "caused by the intern", "who broke it?"). A person doing something ordinary ("John
rolled back the deploy at 14:32") is not blame, nor is a system that "failed to" do
something: what matters is who the judgement is about, so the checks below look for a
person in the subject's place, right before the judging words.

Who counts as a person: the people the caller knows (workspace members, `--people`), Slack
mentions and typed @handles, common given names (bot/first_names.py), roles ("the intern",
"the DBA", "the on-call engineer", "the database team"), and he/she/I; "they" only with
words said of people. "We" is the team owning its story, as published post-mortems write
it, and is not blame. Pure: no Slack, no database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from bot.action_checks import IMPERATIVE_VERBS
from bot.first_names import FIRST_NAMES

__all__ = ["Blame", "People", "find_blame", "sentence_spans"]


@dataclass(frozen=True)
class Blame:
    kind: str  # "person", "role", "hunt" (looking for a culprit), "human_error"
    who: str  # the words naming the person or role ("Sarah", "the on-call engineer"); "" for hunt
    phrase: str  # the judging words ("didn't check", "by mistake", "fault")
    category: str  # "omission", "counterfactual", "manner", "verdict": which rewrite to suggest


# --- Sentences -------------------------------------------------------------------------

# A sentence ends at . ! ? followed by a space, at a line break, or at a semicolon.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+|;")


def sentence_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each non-blank sentence of `text`, trimmed: text[start:end] is exact."""
    start = 0
    for match in _SENTENCE_END.finditer(text):
        yield from _trimmed(text, start, match.start())
        start = match.end()
    yield from _trimmed(text, start, len(text))


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        yield start, end


# --- People ------------------------------------------------------------------------------

# Slack user mentions as they appear in message text: <@U123ABC> and <@U123ABC|bob>.
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>", re.IGNORECASE)
# In a modal's plain_text_input "@bob" stays literal text, so a typed handle names a person
# too. Broadcasts are not people; an e-mail address (bob@example.com) is not a handle.
_HANDLE = re.compile(r"(?<![\w@])@(?!(?:here|channel|everyone)\b)[a-z0-9][\w.\-]*[\w]|(?<![\w@])@[a-z0-9]\b", re.I)
_PRONOUN = re.compile(r"\b(?:he|she)\b|(?<![\w/])I(?=\s|['’](?:ve|d)\b)", re.IGNORECASE)
_THEY = re.compile(r"\bthey\b", re.IGNORECASE)
# A capitalised word or two: a given name from the list, then maybe a surname.
_CAPITALISED = re.compile(r"(?<![\w@'’-])([A-Z][a-z]+)(?![\w-])")
_SURNAME = re.compile(r"\s+[A-Z][a-z]+(?:-[A-Z][a-z]+)?(?![\w-])")

_ROLES = (
    r"on-?call(?:\s+(?:engineer|sre|developer|person|responder|lead|dba|admin))?|interns?|engineers?|"
    r"developers?|devs?|devops(?:\s+engineers?)?|sres?|sysadmins?|sys\s+admins?|admins?|administrators?|"
    r"dbas?|database\s+administrators?|new\s+hires?|contractors?|reviewers?|approvers?|author|"
    r"release\s+(?:manager|captain|engineer)s?|incident\s+commanders?|commander|team\s+lead|tech\s+lead|"
    r"managers?|qa(?:\s+engineers?)?|testers?|analysts?|support\s+(?:agents?|engineers?)|responders?|"
    r"deployers?|programmers?|architects?|employees?|staffers?|human\s+operators?|junior|team\s+members?|team|"
    r"someone|somebody|new\s+guy"
)
_DETERMINER = r"(?:the|our|an?|one|that|this|their|his|her|its|some|every|each)"
_ROLE = re.compile(
    rf"\b(?:{_DETERMINER}\s+((?:[\w-]+\s+){{0,2}}?)|)(?:{_ROLES})\b(?![-'’]\w)",
    re.IGNORECASE,
)
# A role word after these is software or a thing ("the package manager", "the load tester").
_TECH_MODIFIERS = frozenset(
    """
    package secret secrets certificate cert window process service connection cluster task node
    resource lock session traffic load auto automated bot test config deployment dependency
    build job queue pool network dns memory disk kubernetes k8s postgres mysql redis kafka
    """.split()
)
# A name or role right after these is an object, not the one acting: "paged the on-call
# engineer", "the deploy by Alice".
_OBJECT_BEFORE = frozenset(
    """
    to for with by from of at on in into onto about than like via per behind among between
    paged alerted notified told asked pinged called messaged woke contacted helped thanked
    gave sent let page alert notify tell ask ping call message wake contact help thank
    """.split()
)
_PREVIOUS_WORD = re.compile(r"([\w'’-]+)\W*$")


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
    return re.compile(r"(?<![\w@])(?:" + "|".join(ordered) + r")(?!\w)", re.IGNORECASE)


class People:
    """Who the checks take for a person: known names first, then the patterns above."""

    def __init__(self, people: Iterable[str] = ()):
        names = tuple(sorted({p for p in people if isinstance(p, str)}))
        self._names = _people_regex(names)

    def named_in(self, text: str) -> bool:
        """A known person, a mention or a handle (not a role or a pronoun) is in `text`."""
        return bool(_MENTION.search(text) or _HANDLE.search(text) or (self._names and self._names.search(text)))

    def remove(self, text: str) -> str:
        text = _MENTION.sub(" ", text)
        text = _HANDLE.sub(" ", text)
        return self._names.sub(" ", text) if self._names is not None else text

    def mentions(self, sentence: str) -> list[tuple[int, int, str]]:
        """(start, end, kind) of every person or role in the sentence; kind is "person",
        "role", "they", or "capital" (a capitalised word not known as a name)."""
        found: list[tuple[int, int, str]] = []
        taken: list[tuple[int, int]] = []

        def add(start: int, end: int, kind: str) -> None:
            if any(start < e and s < end for s, e in taken):
                return
            taken.append((start, end))
            found.append((start, end, kind))

        for pattern in (_MENTION, _HANDLE):
            for m in pattern.finditer(sentence):
                add(m.start(), m.end(), "person")
        if self._names is not None:
            for m in self._names.finditer(sentence):
                add(m.start(), m.end(), "person")
        for m in _ROLE.finditer(sentence):
            modifiers = (m.group(1) or "").lower().split()
            if not any(word in _TECH_MODIFIERS for word in modifiers):
                add(m.start(), m.end(), "role")
        for m in _CAPITALISED.finditer(sentence):
            first = m.group(1)
            if first.lower() in FIRST_NAMES:
                surname = _SURNAME.match(sentence, m.end())
                add(m.start(), surname.end() if surname else m.end(), "person")
            elif first.lower() not in _NOT_NAMES and first.lower() not in IMPERATIVE_VERBS:
                add(m.start(), m.start() + len(first), "capital")
        for m in _PRONOUN.finditer(sentence):
            add(m.start(), m.end(), "person")
        for m in _THEY.finditer(sentence):
            add(m.start(), m.end(), "they")
        return sorted(found)


# Capitalised words that start sentences and are never anyone's name.
_NOT_NAMES = frozenset(
    """
    the a an this that these those it its there then when while after before during once if
    we our us you your they their he she his her i my me nobody no one everyone someone
    somebody all both each every some any many most several our monitoring alerting
    """.split()
)


# --- The judging words -------------------------------------------------------------------

_DUTY = (
    r"check|validate|verify|test|review|read|follow|notice|update|renew|monitor|escalate|notify|tell|"
    r"inform|confirm|wait|bother|ask|run|back\s+up|pay\s+attention|respond|acknowledge|ack|answer|"
    r"double-check|look|consider|think|catch|communicate|document|restart|roll\s+back|page|investigate|"
    r"report|lock|announce|coordinate|heed|rotate|apply|test|use|get\s+approval|request|verify|"
    r"react|reply|close|merge|revert|remove|disable|enable|set|turn|add|include|mention|flag|raise"
)
# (category, pattern): said right after the person or role.
_PREDICATES: tuple[tuple[str, str], ...] = (
    ("omission", rf"(?:did\s*n['’]?t|did\s+not|never|didn['’]t\s+even|did\s+not\s+even)\s+(?:even\s+)?(?:{_DUTY})\b"),
    (
        "omission",
        r"never\s+(?:checked|validated|tested|verified|reviewed|read|followed|noticed|updated|renewed|confirmed|"
        r"escalated|acknowledged|looked|asked|told|waited|bothered)\b",
    ),
    ("omission", r"forg[oe]t(?:ten)?\b|neglected\b|omitted\b|skipped\b|ignored\b|overlooked\b|missed\b"),
    ("omission", r"failed\s+to\b|disregarded\b|dropped\s+the\s+ball\b"),
    ("manner", r"bypassed\b|circumvented\b|misread\b|misconfigured\b|mistyped\b|fat[\s-]?fingered\b|botched\b"),
    ("manner", r"broke\b|screwed\s+up\b|messed\s+up\b|blew\s+it\b|rushed\b(?!\s+(?:to|in|over|back|out))"),
    ("manner", r"cut\s+corners\b|jumped\s+the\s+gun\b"),
    (
        "manner",
        r"(?:deleted|dropped|wiped|truncated|erased|destroyed|nuked)\s+(?:the\s+|a\s+|all\s+|our\s+)?(?:[\w-]+\s+)?"
        r"(?:production|prod|live|customer|primary)\b",
    ),
    (
        "counterfactual",
        r"should(?:['’]ve|\s+have|\s+not\s+have|n['’]t\s+have)\b|ought\s+to\s+have\b|"
        r"could\s+have\s+(?:prevented|avoided|caught|noticed|stopped|checked|seen)\b|"
        r"should\s+(?:know|have\s+known)\s+better\b|needs?\s+to\s+be\s+more\s+careful\b",
    ),
    (
        "verdict",
        r"(?:was|were|is|are|got|had\s+been|has\s+been|seemed|being)\s+(?:\w+ly\s+)?(?:too\s+|very\s+|a\s+bit\s+|being\s+)?"
        r"(?:careless|negligent|sloppy|lazy|reckless|inattentive|distracted|asleep|complacent|incompetent|"
        r"hasty|in\s+a\s+hurry|not\s+paying\s+attention|not\s+careful|not\s+being\s+careful|not\s+attentive|"
        r"unprofessional|irresponsible|clueless|to\s+blame|at\s+fault|"
        r"responsible\s+for\s+(?:the|this)\s+(?:\w+\s+)?(?:outage|incident|failure|downtime|breakage))\b",
    ),
    ("verdict", r"made\s+(?:a|an|the|another|one)\s+(?:\w+\s+)?(?:mistake|error|blunder|typo)s?\b"),
    (
        "verdict",
        r"caused\s+(?:the|this|an?|our)\s+(?:\w+\s+)?(?:outage|incident|failure|downtime|problem|issue|disruption)\b",
    ),
)
_PREDICATE = [(category, re.compile(pattern, re.IGNORECASE)) for category, pattern in _PREDICATES]
# Said of a person only: a capitalised word not known as a name, or "they", counts with these.
_HUMAN_ONLY = re.compile(
    r"forg[oe]t|neglected|did\s*n['’]?t\s+(?:even\s+)?bother|did\s+not\s+(?:even\s+)?bother|careless|negligent|"
    r"sloppy|lazy|reckless|asleep|distracted|should\s+(?:know|have\s+known)\s+better|made\s+|blew|screwed|messed|"
    r"cut\s+corners|fat|ignored|overlooked",
    re.IGNORECASE,
)

# Between the person and the judging words: adverbs, auxiliaries, an aside in commas.
_GLUE = re.compile(
    r"(?:\s*,?\s*(?:then|also|simply|just|apparently|again|still|unfortunately|clearly|obviously|reportedly|"
    r"later|initially|first|once|allegedly|evidently|somehow|probably|likely|had|has|have|already|really|"
    r"actually|even|completely|totally|immediately|subsequently|ultimately|themselves|himself|herself|"
    r"at\s+\d{1,2}:\d{2}(?:\s*utc)?)\b\s*,?)*\s*,?\s*",
    re.IGNORECASE,
)
_ASIDE = re.compile(r"\s*(?:,[^,]{1,60},|\((?:[^()]{1,60})\)|\s+who\s+[^,]{1,60},?|\s*[-–—]\s*[^-–—]{1,60}[-–—])\s*")

# Said anywhere in the person's clause: how they did it.
_MANNER = re.compile(
    r"\b(?:by\s+mistake|by\s+accident|accidentally|mistakenly|inadvertently|carelessly|recklessly|hastily|"
    r"blindly|sloppily|negligently|lazily|wrongly|incorrectly|improperly|"
    r"without\s+(?:first\s+|even\s+)?(?:checking|testing|reviewing|verifying|reading|looking|asking|telling|"
    r"notifying|confirming|thinking|approval|a\s+review|review|permission|any\s+(?:review|testing|tests|approval))|"
    r"the\s+wrong\s+[\w-]+)\b",
    re.IGNORECASE,
)
# Said of what they shipped: counts after a verb of making or shipping a change.
_JUDGED_OBJECT = re.compile(
    r"\b(?:bad|broken|buggy|faulty|untested|unreviewed|defective|sloppy|careless|bogus|incorrect|wrong|invalid)"
    r"\s+(?:[\w-]+\s+)?(?:code|change|changes|config|configuration|commit|commits|patch|query|migration|"
    r"build|release|deploy|script|values?|data|settings?|rules?|manifest|template|pr|pull\s+request)\b",
    re.IGNORECASE,
)
_SHIPPING_VERB = re.compile(
    r"(?:deployed|pushed|merged|shipped|committed|wrote|released|rolled\s+out|introduced|applied|landed|"
    r"checked\s+in|submitted|uploaded|approved|ran|executed|entered|typed|configured|copied|pasted|"
    r"edited|modified|changed)\b",
    re.IGNORECASE,
)
# Verbs of noticing and repairing: "Alice noticed the wrong version was live" is no blame.
_REMEDIAL_VERB = re.compile(
    r"(?:noticed|found|spotted|saw|identified|discovered|detected|realised|realized|reported|flagged|"
    r"caught|fixed|repaired|corrected|reverted|rolled\s+back|undid|restored|recovered|investigated|"
    r"traced|diagnosed|debugged|confirmed|escalated|mitigated|explained|asked|told|warned|pointed|"
    r"suspected|checked|verified|noted|posted|announced|opened|filed|said|wrote\s+up|replaced|"
    r"cleaned|tracked|worked|helped|thanked|handed)\b",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(
    r"[;:.!?]|,\s*(?:and|but|so|which|while|because|then)\b|\b(?:but|because|so\s+that|which|while|until|"
    r"and\s+then|and|after\s+which|since|although|though)\b",
    re.IGNORECASE,
)

_FAULT_NOUN = (
    r"fault|mistake|error|negligence|carelessness|oversight|blunder|screw-?up|slip-?up|sloppiness|incompetence"
)
_NOT_FAULT_AFTER = re.compile(r"\s+(?:budget|rate|message|log|page|handling|code|tolerance|domain)", re.I)
_VERDICT_BY = re.compile(
    rf"(?:\b(?:{_FAULT_NOUN})s?\s+(?:by|of|on\s+the\s+part\s+of)|\b(?:caused|broken|botched|missed|ignored|"
    r"overlooked|skipped|forgotten|neglected|misconfigured|fumbled)\s+by|\bblame[ds]?|\bpinned\s+(?:it|this|the\s+\w+)\s+on|"
    r"\bblamed\s+on|\bthanks\s+to|\b(?:careless|sloppy|reckless|negligent|botched|hasty|untested)\s+(?:[\w-]+\s+)?by)\s*$",
    re.IGNORECASE,
)
_POSSESSIVE_FAULT = re.compile(rf"['’]s?\s+(?:[\w-]+\s+)?(?:{_FAULT_NOUN})s?\b", re.IGNORECASE)
_IF_HAD_BEFORE = re.compile(r"\b(?:if|had|unless)\s*$", re.IGNORECASE)
_DUTY_DONE = re.compile(
    r"\s+(?:had\s+)?(?:only\s+|just\s+)?(?:not\s+)?(?:checked|validated|verified|tested|reviewed|read|followed|"
    r"noticed|looked|paid|been\s+(?:more\s+)?(?:careful|attentive)|waited|asked|double-checked|run|ran|"
    r"confirmed|renewed|updated|escalated|acknowledged|responded|caught|used|backed)\b",
    re.IGNORECASE,
)

_THEIR_FAULT = re.compile(
    r"\b(his|her|their)\s+(?:own\s+)?(?:fault|mistake|negligence|carelessness|blunder|screw-?up)\b", re.IGNORECASE
)
_HUNT = re.compile(
    r"\bwho\s+(?:broke|caused|is\s+responsible|was\s+responsible|is\s+to\s+blame|was\s+to\s+blame|messed\s+up|"
    r"screwed\s+up|did\s+this|pushed\s+the\s+bad)\b|\bwhose\s+fault\b|\bthe\s+culprit\b|\bfind\s+out\s+who\b",
    re.IGNORECASE,
)
_HUMAN_ERROR = re.compile(
    r"\b(?:human|operator|pilot|manual|personnel|engineer|user)\s+(?:error|mistake|slip|oversight)s?\b|\bpebkac\b|"
    r"\bfat[\s-]?finger(?:ed|ing)?\b",
    re.IGNORECASE,
)
# "Human error is where the inquiry starts, not where it ends": talking about the label is no blame.
_ABOUT_THE_LABEL = re.compile(
    r"\b(?:not|never|rather\s+than|instead\s+of|beyond|symptom|starting\s+point|isn['’]t|wasn['’]t|"
    r"stop\s+at|label|past|look\s+behind|make\s+\w+\s+(?:harder|impossible)|prevent|guard|reduce|"
    r"less\s+likely|rate|metric|returned|responses?|codes?|4\d\d|validation)\b",
    re.IGNORECASE,
)


def _object_position(sentence: str, start: int) -> bool:
    """The words before `start` make what follows an object ("paged Alice", "by the intern")."""
    before = _PREVIOUS_WORD.search(sentence[:start])
    if before is None:
        return False
    gap = sentence[before.end() : start]
    if any(mark in gap for mark in ",;:(—–"):  # a new clause or an aside begins
        return False
    return before.group(1).lower() in _OBJECT_BEFORE


def _after_subject(sentence: str, end: int) -> int:
    """Where the predicate would start after a subject ending at `end` (asides, adverbs skipped)."""
    position = end
    aside = _ASIDE.match(sentence, position)
    if aside:
        position = aside.end()
    glue = _GLUE.match(sentence, position)
    return glue.end() if glue else position


def _clause(sentence: str, start: int) -> str:
    end = _CLAUSE_END.search(sentence, start)
    return sentence[start : end.start() if end else len(sentence)]


def _kind(kind: str) -> str:
    return "role" if kind == "role" else "person"


def _judged_subject(sentence: str, start: int, end: int, kind: str) -> Blame | None:
    """A judgement said of the person or role at sentence[start:end] as the clause's subject."""
    who = sentence[start:end]
    rest = sentence[end:]
    if rest[:1] in ("'", "’"):  # "Alice's change failed to ...": the change is the subject
        return None
    if _object_position(sentence, start):
        return None
    position = _after_subject(sentence, end)
    for category, pattern in _PREDICATE:
        match = pattern.match(sentence, position)
        if match is None:
            continue
        phrase = match.group(0)
        if kind == "capital" and not _HUMAN_ONLY.search(phrase):
            return None  # "Kubernetes failed to schedule the pod"
        if kind == "they" and phrase.lower().startswith("failed"):
            return None  # "they" may be the requests, the replicas...
        return Blame(_kind(kind), who, " ".join(phrase.split()), category)
    # How they did it: "dropped the wrong table by mistake", "deployed bad code".
    if _REMEDIAL_VERB.match(sentence, position):
        return None
    clause = _clause(sentence, position)
    if not clause.strip() or not re.match(r"[a-z]", clause.strip(), re.IGNORECASE):
        return None
    manner = _MANNER.search(clause)
    if manner is not None and kind != "they":
        if kind == "capital" and manner.group(0).lower().startswith(("the wrong", "without", "wrongly", "incorr")):
            return None
        return Blame(_kind(kind), who, " ".join(manner.group(0).split()), "manner")
    if kind in ("person", "role") and _SHIPPING_VERB.match(sentence, position):
        judged = _JUDGED_OBJECT.search(clause)
        if judged is not None:
            return Blame(_kind(kind), who, " ".join(judged.group(0).split()), "manner")
    return None


def _verdict(sentence: str, start: int, end: int, kind: str) -> Blame | None:
    """A verdict about the person wherever they stand: "Bob's fault", "caused by the intern"."""
    if kind in ("they", "capital"):
        return None
    who = sentence[start:end]
    possessive = _POSSESSIVE_FAULT.match(sentence, end)
    if possessive is not None and not _NOT_FAULT_AFTER.match(sentence, possessive.end()):
        return Blame(_kind(kind), who, possessive.group(0).lstrip("'’s ").strip(), "verdict")
    before = sentence[:start]
    by = _VERDICT_BY.search(before)
    if by is not None:
        return Blame(_kind(kind), who, " ".join(by.group(0).split()), "verdict")
    if _IF_HAD_BEFORE.search(before) and _DUTY_DONE.match(sentence, end):
        word = _IF_HAD_BEFORE.search(before)
        assert word is not None
        return Blame(_kind(kind), who, f"{word.group(0).strip().lower()} … had", "counterfactual")
    return None


def find_blame(sentence: str, people: People) -> Blame | None:
    """The first blame in one sentence, or None."""
    sentence = sentence.replace("’", "'").replace("‘", "'")
    for start, end, kind in people.mentions(sentence):
        blame = _verdict(sentence, start, end, kind) or _judged_subject(sentence, start, end, kind)
        if blame is not None:
            return blame
    theirs = _THEIR_FAULT.search(sentence)
    if theirs is not None:
        return Blame("person", theirs.group(1), " ".join(theirs.group(0).split()), "verdict")
    hunt = _HUNT.search(sentence)
    if hunt is not None:
        return Blame("hunt", "", " ".join(hunt.group(0).split()), "verdict")
    error = _HUMAN_ERROR.search(sentence)
    if error is not None and not _ABOUT_THE_LABEL.search(sentence):
        return Blame("human_error", "", " ".join(error.group(0).split()), "verdict")
    return None
