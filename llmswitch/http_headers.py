"""HTTP header parsing every network backend needs, kept in one place."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait before retrying: ``retry-after-ms`` (OpenAI, Anthropic), else ``Retry-After`` as seconds
    or an HTTP date. None when absent or unreadable; never negative. Header names must be lower-case."""
    if not headers:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            value = float(milliseconds) / 1000
            if math.isfinite(value):
                return max(0.0, value)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
