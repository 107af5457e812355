"""What a notification says: subject, plain text, HTML, Slack Block Kit and dashboard JSON."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from finlake.contracts.models import AlertEvent

SILENCE_EXPIRED = "silence_expired"
MAX_BLOCKS = 50
"""Slack's limit of blocks in one message."""
MAX_SECTIONS = MAX_BLOCKS - 2  # besides the header and the context line
MAX_TEXT = 3000
"""Slack's limit of characters in a text object (a section's text, a context element)."""
MAX_FIELD = 2000
"""Slack's limit of characters in one of a section's fields."""
MAX_FEED_MESSAGE = 2000
"""The query API's limit of characters in a live feed item's message."""
_ICONS = {
    "critical": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":large_blue_circle:",
}


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: float) -> str:
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def subject(events: Sequence[AlertEvent]) -> str:
    """``[CRITICAL] rule: AAPL price_cross 201.5 (threshold 200)`` or a count for a group."""
    first = events[0]
    head = f"[{first.severity.upper()}] {first.rule}"
    if len(events) == 1:
        return (
            f"{head}: {first.symbol} {first.kind} {_number(first.value)} "
            f"(threshold {_number(first.threshold)})"
        )
    symbols = ", ".join(dict.fromkeys(e.symbol for e in events))
    return f"{head}: {len(events)} alerts ({symbols})"


def _facts(event: AlertEvent) -> list[tuple[str, str]]:
    """What both parts of the email list (Slack shows the second to fifth)."""
    facts = [
        ("Symbol", event.symbol),
        ("Kind", event.kind),
        ("Value", _number(event.value)),
        ("Threshold", _number(event.threshold)),
        ("Window", f"{_ts(event.window_start)} - {_ts(event.window_end)}"),
        ("Fired at", _ts(event.fired_at)),
        ("Event id", event.event_id),
    ]
    if event.labels:
        labels = sorted(event.labels.items())
        facts.append(("Labels", ", ".join(f"{k}={v}" for k, v in labels)))
    return facts


def text_body(events: Sequence[AlertEvent]) -> str:
    """The plain-text part of the email."""
    parts = []
    for event in events:
        lines = [event.message, ""] + [f"{name}: {value}" for name, value in _facts(event)]
        parts.append("\n".join(lines))
    return "\n\n---\n\n".join(parts) + "\n"


def html_body(events: Sequence[AlertEvent]) -> str:
    """The HTML part of the email (every value escaped)."""
    sections = []
    for event in events:
        rows = "".join(
            f"<tr><th align='left'>{escape(name)}</th><td>{escape(value)}</td></tr>"
            for name, value in _facts(event)
        )
        sections.append(
            f"<div class='alert' data-event-id='{escape(event.event_id)}'>"
            f"<h2>{escape(event.severity.upper())}: {escape(event.rule)} on "
            f"{escape(event.symbol)}</h2><p>{escape(event.message)}</p><table>{rows}</table></div>"
        )
    return (
        "<!doctype html><html><body>"
        f"<h1>{escape(subject(events))}</h1>{''.join(sections)}"
        "<p>Sent by finlake alerting.</p></body></html>"
    )


def _overflow(events: Sequence[AlertEvent]) -> dict[str, Any]:
    symbols = ", ".join(dict.fromkeys(e.symbol for e in events))
    text = f"And {len(events)} more alert(s): {symbols}"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_TEXT]}}


def _context_text(events: Sequence[AlertEvent]) -> str:
    """``fired <time> · ids: a, b`` naming as many ids as fit in MAX_TEXT, then how many did not
    (50 ids of 60 characters are past it: Slack would answer 400 and the group be dead-lettered)."""
    head = f"fired {_ts(events[0].fired_at)} · ids:"
    ids = [event.event_id for event in events]
    text = f"{head} {', '.join(ids)}"
    if len(text) <= MAX_TEXT:
        return text
    listed = head
    for shown, event_id in enumerate(ids):
        longer = f"{listed}{', ' if shown else ' '}{event_id}"
        if len(longer) + len(_left_out(len(ids) - shown - 1)) > MAX_TEXT:
            return (listed + _left_out(len(ids) - shown))[:MAX_TEXT]
        listed = longer
    return text[:MAX_TEXT]  # not reached: with every id listed, the text was too long


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked (Slack refuses a longer one: 400)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _left_out(count: int) -> str:
    return f" … and {count} more" if count else ""


def slack_blocks(events: Sequence[AlertEvent]) -> list[dict[str, Any]]:
    """A Block Kit message: a header, one section per event (fields), a context line of ids."""
    first = events[0]
    icon = _ICONS.get(first.severity, ":white_circle:")
    title = f"{first.severity.upper()}: {first.rule}"
    if len(events) > 1:
        title += f" ({len(events)} alerts)"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}}
    ]
    # Slack refuses a message of more than 50 blocks (400: dead-lettered), and a group may hold
    # group_max (up to 50) events: past the limit, one block summarises the rest.
    shown = events if len(events) <= MAX_SECTIONS else events[: MAX_SECTIONS - 1]
    for event in shown:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": _clip(f"{icon} *{event.symbol}* {event.message}", MAX_TEXT),
                },
                "fields": [
                    {"type": "mrkdwn", "text": _clip(f"*{name}*\n{value}", MAX_FIELD)}
                    for name, value in _facts(event)[1:5]
                ],
            }
        )
    if len(shown) < len(events):
        blocks.append(_overflow(events[len(shown) :]))
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _context_text(events)}]}
    )
    return blocks


def dashboard_item(event: AlertEvent) -> dict[str, Any]:
    """The JSON the query API's live feed shows (the message cut to what it takes: a silence
    of many matchers announces itself at length, and a 422 would dead-letter the notice)."""
    kind = SILENCE_EXPIRED if event.kind == SILENCE_EXPIRED else "alert"
    item = {"type": kind, **event.model_dump(mode="json")}
    item["message"] = _clip(event.message, MAX_FEED_MESSAGE)
    return item
