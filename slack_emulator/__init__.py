"""A local Slack Web API emulator for end-to-end tests and the ``demo`` command.

    async with SlackEmulator() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
"""

from slack_emulator.server import SlackEmulator, SlackError

__all__ = ["SlackEmulator", "SlackError"]
