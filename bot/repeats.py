"""Has this happened before? Earlier incidents that look like this one, and what is still open of them.

An incident looks like another when they share meaningful words: of the title and the cause
(its post-mortem's root cause and category), and of the channel's name, where a team's
naming habit (`inc-checkout-…`) names the service. Shown on the card at `/postmortem start`,
in the quarterly review's recurring incidents, and in the review meeting's agenda (the
earlier incidents of the same cause category, for the "is it done yet" round).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.stats import cause_of
from bot.views import ActionItemView, IncidentView, RepeatIncident
from storage.db import SessionFactory
from storage.home import earlier_incidents, open_items_of_incidents
from storage.models import Incident, Postmortem

MAX_REPEATS = 3
# Words that say an incident happened, not what it happened to.
GENERIC_WORDS = frozenset(
    """
    the and for with from into after before during while when then than this that these those was were are has
    have had not its our all any out off via per about over under again still more less very
    inc incident incidents issue issues problem problems outage outages down failing failed failure failures
    fails error errors broken slow slowness degraded degradation high elevated increased spike spikes
    sev sev1 sev2 sev3 sev4 prod production alert alerts some many partial total users user customers
    """.split()
)
_WORD_RE = re.compile(r"[a-z][a-z0-9]{2,}")


def words(*texts: str | None) -> set[str]:
    """The meaningful words of some text: lower case, three letters or more, not generic."""
    found: set[str] = set()
    for text in texts:
        for word in _WORD_RE.findall((text or "").lower()):
            if word not in GENERIC_WORDS:
                found.add(word[:-1] if len(word) > 4 and word.endswith("s") else word)
    return found


def _channel_words(channel_name: str | None) -> set[str]:
    return words((channel_name or "").replace("-", " ").replace("_", " "))


def likeness(mine: set[str], incident: Incident, postmortem: Postmortem | None, channel_name: str | None) -> set[str]:
    """The words `mine` shares with an earlier incident's title, cause and channel name."""
    return mine & (words(incident.title) | _cause_words(postmortem) | _channel_words(channel_name))


def _cause_words(postmortem: Postmortem | None) -> set[str]:
    draft = (postmortem.draft or {}) if postmortem is not None else {}
    root = draft.get("root_cause")
    return words(root if isinstance(root, str) else None)


def _score(mine: set[str], incident: Incident, postmortem: Postmortem | None, channel_name: str | None) -> int:
    """A shared title word counts double: titles name what broke, causes and channels only hint."""
    return (
        2 * len(mine & words(incident.title))
        + len(mine & _cause_words(postmortem))
        + len(mine & _channel_words(channel_name))
    )


@dataclass(frozen=True)
class _Scored:
    score: int
    incident: Incident
    shared: tuple[str, ...]


def rank_repeats(
    mine: set[str], earlier: Iterable[tuple[Incident, Postmortem | None, str | None]], limit: int = MAX_REPEATS
) -> list[_Scored]:
    """The earlier incidents most like `mine`, newest first among equals."""
    scored = []
    for incident, postmortem, channel_name in earlier:
        shared = likeness(mine, incident, postmortem, channel_name)
        if shared:
            scored.append(_Scored(_score(mine, incident, postmortem, channel_name), incident, tuple(sorted(shared))))
    scored.sort(key=lambda s: (-s.score, -s.incident.id))
    return scored[:limit]


class RepeatFinder:
    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    async def similar(self, incident: IncidentView, channel_name: str | None) -> list[RepeatIncident]:
        """Up to three earlier incidents of the team that look like `incident`, each with its open items."""
        async with self.sessions() as session:
            earlier = await earlier_incidents(session, incident.team_id, incident.id)
            mine = words(incident.title) | _channel_words(channel_name)
            ranked = rank_repeats(mine, earlier)
            items = await open_items_of_incidents(session, [r.incident.id for r in ranked])
        return [
            RepeatIncident(
                incident=IncidentView.from_row(r.incident),
                why="same words: " + ", ".join(r.shared[:5]),
                open_items=tuple(ActionItemView.from_row(a, i) for a, i in items if i.id == r.incident.id),
            )
            for r in ranked
        ]

    async def open_items_of_same_cause(self, incident_id: int, team_id: str, limit: int = 20) -> list[ActionItemView]:
        """The open items of earlier incidents whose cause category is this one's (none while it has none)."""
        async with self.sessions() as session:
            everything = await earlier_incidents(session, team_id, incident_id + 1)
            this = next((pm for i, pm, _ in everything if i.id == incident_id), None)
            cause = cause_of(this)
            if cause == "unknown":
                return []
            ids = [i.id for i, pm, _ in everything if i.id != incident_id and cause_of(pm) == cause]
            items = await open_items_of_incidents(session, ids)
        return [ActionItemView.from_row(a, i) for a, i in items][:limit]
