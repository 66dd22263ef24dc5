"""What counts as a web link: one rule for the document, the action-item DMs and the form.

Each place that shows a link adds what its own medium needs on top of this rule (the
document refuses quotes and brackets inside a link, a DM caps a link's length); what an
http(s) link is, is decided here.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit


def split_http_url(value: object) -> SplitResult | None:
    """The parts of an absolute http:// or https:// URL with a host (surrounding blanks
    aside); None for anything else: javascript:, data:, mailto:, relative paths, text."""
    if not isinstance(value, str):
        return None
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return parts


def is_http_url(value: object) -> bool:
    """True for an absolute http(s) URL with a host: see `split_http_url`."""
    return split_http_url(value) is not None
