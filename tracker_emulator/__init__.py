"""Jira Cloud and Linear emulators: real HTTP servers shaped after the public API docs.

Test and demo equipment, like slack_emulator/: the bot never imports it. Each checks
authentication, answers errors in the tracker's own shape, pages, rate limits (429 or
RATELIMITED with Retry-After), fails on purpose when a test scripts it (a 5xx after the
create happened, a timeout), and sends signed webhooks as the tracker would.
"""

from tracker_emulator.jira import JiraEmulator
from tracker_emulator.linear import LinearEmulator

__all__ = ["JiraEmulator", "LinearEmulator"]
