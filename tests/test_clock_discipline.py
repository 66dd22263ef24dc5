"""Tests never depend on when they run: no test reads the wall-clock date or time of day.

Instants come from fixed values or the clock seam (`clock` fixture, `rig.clock`,
`rig.today()`), so a suite that passes in July passes in December. `time.time()` stays
allowed: request signatures and timeouts are about elapsed seconds, not dates.
"""

from __future__ import annotations

import re
from pathlib import Path

WALL_CLOCK = re.compile(r"\b(?:date\.today|datetime\.(?:now|utcnow|today))\(")


def test_no_test_reads_the_date_or_time_of_day_from_the_wall_clock() -> None:
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(Path(__file__).parent.glob("*.py"))
        if path.name != Path(__file__).name
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if WALL_CLOCK.search(line)
    ]
    assert offenders == [], "use the clock seam (rig.clock, rig.today()) or a fixed instant:\n" + "\n".join(offenders)
