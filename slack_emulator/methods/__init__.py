"""The emulated Web API methods, one module per family; importing this package registers
every handler (see :func:`slack_emulator.api.api_method`).

A handler is a function of the emulator and the call's arguments.  It returns the body of
the ok answer without ``"ok"``, and raises :class:`~slack_emulator.api.SlackError` only with
names listed in its ``@api_method(errors=...)``.  Handlers read and change the emulator's
state (:class:`slack_emulator.workspace.Workspace`) directly: its underscore attributes are
private to this package, not to one module.
"""

from slack_emulator.methods import auth, chat, conversations, files, pins, users, views

__all__ = ["auth", "chat", "conversations", "files", "pins", "users", "views"]
