"""Numbers for people: sizes, rates, durations, relative times and a text progress bar. Pure; no I/O.

Sizes use decimal units (kB, MB, GB), as Docker prints them, so a pull shown here and `docker images`
on the host agree.
"""

from __future__ import annotations

from datetime import datetime, timezone

UNITS = ("B", "kB", "MB", "GB", "TB")


def human_bytes(n: float | None) -> str:
    """1234 -> "1.2 kB", 200_061_265 -> "200.1 MB", None -> "?"."""
    if n is None or n < 0:
        return "?"
    value = float(n)
    for unit in UNITS:
        if value < 1000 or unit == UNITS[-1]:
            if unit == "B":
                return f"{value:.0f} B"
            return f"{value:.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"
        value /= 1000
    return "?"  # pragma: no cover - the loop always returns


def human_rate(bytes_per_second: float | None) -> str:
    return "" if bytes_per_second is None else f"{human_bytes(bytes_per_second)}/s"


def human_duration(seconds: float | None) -> str:
    """0.4 -> "0.4s", 75 -> "1m15s", 3725 -> "1h02m"."""
    if seconds is None:
        return "?"
    if seconds < 10:
        return f"{max(seconds, 0.0):.1f}s"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time as written in our records ("2026-12-07T17:03:59+00:00", "...Z"); None if unreadable."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def relative_time(when: datetime | str | None, now: datetime | None = None) -> str:
    """ "just now", "45 s ago", "2 min ago", "3 h ago", "yesterday", "5 days ago", or the date beyond 30 days;
    "in 2 min" for a time ahead of this machine's clock; "?" when unknown."""
    moment = parse_time(when) if isinstance(when, str) or when is None else when
    if moment is None:
        return "?"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    seconds = (now - moment).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    if seconds < 10:
        return "just now"
    if seconds < 60:
        text = f"{seconds:.0f} s"
    elif seconds < 3600:
        text = f"{seconds // 60:.0f} min"
    elif seconds < 86400:
        text = f"{seconds // 3600:.0f} h"
    elif seconds < 2 * 86400 and not ahead:
        return "yesterday"
    elif seconds < 30 * 86400:
        text = f"{seconds // 86400:.0f} days"
    else:
        return moment.strftime("%Y-%m-%d")
    return f"in {text}" if ahead else f"{text} ago"


def text_bar(fraction: float | None, width: int = 24) -> str:
    """A bar that reads without colour: "█████░░░░░"; unknown -> all empty."""
    filled = 0 if fraction is None else int(round(min(max(fraction, 0.0), 1.0) * width))
    return "█" * filled + "░" * (width - filled)
