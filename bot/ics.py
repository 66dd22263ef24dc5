"""The review meeting as an iCalendar invite (RFC 5545 text, iTIP METHOD:REQUEST).

Written by hand rather than with the `icalendar` package: one VEVENT with a dozen
properties is about sixty lines, and it keeps the dependency list as it is. The rules
followed, all of RFC 5545 this needs:

- lines end with CRLF and are folded at 75 octets (a continuation starts with one space),
  never inside a UTF-8 character (3.1);
- TEXT values escape backslash, semicolon, comma and newlines (3.3.11); other control
  characters are dropped;
- times are UTC, "YYYYMMDDTHHMMSSZ" (3.3.5); a naive datetime is taken as UTC;
- a parameter value (CN) is a quoted string without DQUOTE or control characters (3.2).

People without an e-mail address (the bot often knows only a Slack display name) get
the cal-address "invalid:nomail", the convention Google Calendar uses for attendees
without one, so calendars show the name and send nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

PRODID = "-//postmortem-bot//EN"
MAX_LINE_OCTETS = 75
NO_ADDRESS = "invalid:nomail"

_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def escape_text(value: str) -> str:
    """A TEXT value: \\ ; , escaped, any line break as \\n, other control characters dropped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    parts = [_CONTROL_RE.sub("", part) for part in value.split("\n")]
    return "\\n".join(parts)


def quote_param(value: str) -> str:
    """A parameter value as a quoted string: no DQUOTE, no control characters."""
    cleaned = _CONTROL_RE.sub(" ", value.replace("\t", " ")).replace('"', "'").strip()
    return f'"{cleaned}"'


def fold(line: str) -> str:
    """One content line folded at 75 octets, joined with CRLF, without the final CRLF."""
    data = line.encode("utf-8")
    if len(data) <= MAX_LINE_OCTETS:
        return line
    pieces: list[bytes] = []
    start = 0
    room = MAX_LINE_OCTETS
    while start < len(data):
        end = min(start + room, len(data))
        while end < len(data) and end > start and (data[end] & 0xC0) == 0x80:
            end -= 1  # do not cut a UTF-8 character: back off to its first byte
        pieces.append(data[start:end])
        start = end
        room = MAX_LINE_OCTETS - 1  # continuation lines begin with a space
    return "\r\n ".join(p.decode("utf-8") for p in pieces)


def utc_stamp(at: datetime) -> str:
    """20261210T140000Z; a naive datetime is taken as UTC."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _address(person: str) -> tuple[str, str]:
    """(common name, cal-address) of an e-mail address or a name."""
    person = person.strip()
    if _EMAIL_RE.fullmatch(person):
        return person, f"mailto:{person}"
    return person, NO_ADDRESS


def meeting_invite(
    *,
    uid: str,
    title: str,
    start: datetime,
    duration: timedelta,
    attendees_emails_or_names: Sequence[str],
    description: str,
    organizer: str,
    now: datetime,
    location: str = "",
) -> str:
    """The text of an .ics file inviting `attendees_emails_or_names` to the meeting."""
    if not uid.strip():
        raise ValueError("an invite needs a uid")
    if duration <= timedelta(0):
        raise ValueError("a meeting needs a positive duration")
    organizer_name, organizer_address = _address(organizer or "postmortem-bot")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:REQUEST",
        "BEGIN:VEVENT",
        f"UID:{escape_text(uid.strip())}",
        f"DTSTAMP:{utc_stamp(now)}",
        f"DTSTART:{utc_stamp(start)}",
        f"DTEND:{utc_stamp(start + duration)}",
        "SEQUENCE:0",
        "STATUS:CONFIRMED",
        "TRANSP:OPAQUE",
        f"SUMMARY:{escape_text(title)}",
    ]
    if description:
        lines.append(f"DESCRIPTION:{escape_text(description)}")
    if location:
        lines.append(f"LOCATION:{escape_text(location)}")
    lines.append(f"ORGANIZER;CN={quote_param(organizer_name)}:{organizer_address}")
    seen: set[str] = set()
    for person in attendees_emails_or_names:
        if not isinstance(person, str) or not person.strip() or person.strip().lower() in seen:
            continue
        seen.add(person.strip().lower())
        name, address = _address(person)
        rsvp = "TRUE" if address != NO_ADDRESS else "FALSE"
        lines.append(
            f"ATTENDEE;CN={quote_param(name)};CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;"
            f"PARTSTAT=NEEDS-ACTION;RSVP={rsvp}:{address}"
        )
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "".join(fold(line) + "\r\n" for line in lines)
