"""A local Slack Web API emulator for end-to-end tests and the ``demo`` command.

    async with SlackEmulator() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)

Test and demo equipment, not the product: the bot never imports it (``bot/demo.py`` aside),
and it imports from the bot only its clock (and, in ``harness``, what starts a bot).
"""

from slack_emulator.api import SlackError
from slack_emulator.server import SlackEmulator

__all__ = ["SlackEmulator", "SlackError"]
