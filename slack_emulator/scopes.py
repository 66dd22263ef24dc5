"""OAuth scopes for the Slack emulator: what the app is granted, and what a method needs.

Why this exists: an emulator that grants everything hides the one failure a real workspace
shows first -- a method answering ``missing_scope`` because manifest.yml never asked for
it.  So the emulator grants by default exactly the bot scopes of the repository's
manifest.yml, and each method declares the scope it needs (``@api_method(scope=...)``),
checked as Slack checks it.

Scope names are today's (docs.slack.dev, each method's "Required scopes"), not the legacy
ones of the 2020 OpenAPI spec (``chat:write:bot``, ``channels:write``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import yaml

__all__ = [
    "APP_TOKEN_SCOPES",
    "MANIFEST_PATH",
    "ConversationKind",
    "Scope",
    "manifest_bot_scopes",
    "per_conversation",
]

MANIFEST_PATH = Path(__file__).resolve().parents[1] / "manifest.yml"
"""The app manifest at the root of the checkout (installed editable, as the README says)."""

APP_TOKEN_SCOPES = ("connections:write",)
"""What the README's set-up gives the app-level (xapp-) token: Socket Mode only."""

ConversationKind = Literal["public", "private", "im", "mpim"]

Scope = str | Mapping[ConversationKind, str] | None
"""What a method needs: nothing (None), one scope, or one scope per conversation type (a
type left out needs none: the method answers some other error for it)."""


def per_conversation(action: str) -> Mapping[ConversationKind, str]:
    """The conversations.* scope family: ``channels:``, ``groups:``, ``im:``, ``mpim:``
    followed by ``action`` -- a public channel, a private one, a DM, a group DM."""
    return MappingProxyType(
        {
            "public": f"channels:{action}",
            "private": f"groups:{action}",
            "im": f"im:{action}",
            "mpim": f"mpim:{action}",
        }
    )


def manifest_bot_scopes(path: Path = MANIFEST_PATH) -> tuple[str, ...]:
    """The bot scopes ``oauth_config.scopes.bot`` of an app manifest, in its order."""
    try:
        manifest = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} not found: the emulator grants the manifest's bot scopes, so it needs "
            "the checkout (pip install -e .) or SlackEmulator(scopes=[...])"
        ) from None
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ValueError(f"{path}: oauth_config.scopes.bot must be a list of scope names")
    return tuple(scopes)
