from __future__ import annotations

import pytest
from pydantic import SecretStr

from finlake.contracts.alert_rule import Channel
from finlake_alerting.channels.content import (
    MAX_FEED_MESSAGE,
    MAX_TEXT,
    dashboard_item,
    html_body,
    slack_blocks,
    subject,
    text_body,
)
from finlake_alerting.channels.mailer import build_email
from finlake_alerting.config import ServiceSettings
from finlake_alerting.credentials import MissingSecretError, Redactor, channel_secret
from tests.unit.finlake_alerting.events import alert


def test_one_event_subject_text_and_html() -> None:
    event = alert(0, message="AAPL crossed above 200 <fast> & hard")
    assert subject([event]) == "[CRITICAL] aapl-breakout: AAPL price_cross 201.5 (threshold 200)"
    assert "Event id: aapl-breakout-AAPL-0" in text_body([event])
    html = html_body([event])
    assert "&lt;fast&gt; &amp; hard" in html
    assert "<fast>" not in html
    assert "data-event-id='aapl-breakout-AAPL-0'" in html
    assert "Labels" not in html_body([alert(0, labels={})])


def test_both_email_parts_carry_the_labels_escaped() -> None:
    event = alert(0, labels={"team": "desk <a>", "env": "prod"})
    assert "Labels: env=prod, team=desk <a>\n" in text_body([event])
    html = html_body([event])
    assert "<th align='left'>Labels</th><td>env=prod, team=desk &lt;a&gt;</td>" in html


def test_a_group_is_one_message_naming_every_event() -> None:
    events = [alert(0), alert(1, symbol="MSFT")]
    assert subject(events) == "[CRITICAL] aapl-breakout: 2 alerts (AAPL, MSFT)"
    message = build_email(events, "finlake@example.com", ["ops@example.com"])
    assert message["X-Finlake-Event-Ids"] == "aapl-breakout-AAPL-0 aapl-breakout-MSFT-1"
    parts = {part.get_content_type() for part in message.iter_parts()}
    assert parts == {"text/plain", "text/html"}


def test_slack_blocks_are_block_kit() -> None:
    blocks = slack_blocks([alert(0), alert(1)])
    assert [b["type"] for b in blocks] == ["header", "section", "section", "context"]
    assert blocks[0]["text"] == {
        "type": "plain_text", "text": "CRITICAL: aapl-breakout (2 alerts)", "emoji": True,
    }  # fmt: skip
    assert blocks[1]["fields"][0] == {"type": "mrkdwn", "text": "*Kind*\nprice_cross"}
    assert "aapl-breakout-AAPL-1" in blocks[-1]["elements"][0]["text"]


def test_secrets_come_from_the_secret_ref_variable_or_the_fallback() -> None:
    channel = Channel.model_validate({"type": "slack", "secretRef": {"name": "desk-slack"}})
    env = {"FINLAKE_SECRET_DESK_SLACK_WEBHOOK_URL": "https://hooks.example/abc"}
    secret = channel_secret(channel, None, env)
    assert secret is not None
    assert secret.get_secret_value() == "https://hooks.example/abc"
    with pytest.raises(MissingSecretError, match=r"\$FINLAKE_SECRET_DESK_SLACK_WEBHOOK_URL is not"):
        channel_secret(channel, SecretStr("fallback"), {})
    plain = Channel(type="slack")
    assert channel_secret(plain, SecretStr("fallback"), {}) == SecretStr("fallback")


def test_redactor_masks_every_secret() -> None:
    redact = Redactor(["https://hooks.example/abc", "pw12345"])
    masked = redact("POST https://hooks.example/abc failed, pw12345")
    assert masked == "POST ******** failed, ********"


def test_the_largest_group_fits_slacks_50_blocks_and_names_every_alert() -> None:
    largest = ServiceSettings(group_max=50).group_max  # the most the settings allow
    events = [alert(n, symbol=f"S{n}") for n in range(largest)]
    blocks = slack_blocks(events)
    assert len(blocks) == 50
    assert blocks[-2]["text"]["text"] == "And 3 more alert(s): S47, S48, S49"
    assert all(e.event_id in blocks[-1]["elements"][0]["text"] for e in events)
    assert len(slack_blocks(events[:48])) == 50  # 48 events: one section each, no summary


def test_the_context_line_of_many_long_ids_stays_under_slacks_3000_characters() -> None:
    # 50 ids of about 110 characters: listing them all would take some 5,600.
    events = [alert(n, event_id=f"id-{n}-{'x' * 105}") for n in range(50)]
    text = slack_blocks(events)[-1]["elements"][0]["text"]
    assert len(text) <= MAX_TEXT
    listed, left_out = text.split("ids: ")[1].rsplit(" … and ", 1)
    names = listed.split(", ")
    assert names == [e.event_id for e in events[: len(names)]], "the first ids, in order"
    assert left_out == f"{50 - len(names)} more"
    assert len(names) >= 20, "as many as fit are named"
    # One id longer than the limit: none named, but the count says there was one.
    (huge,) = slack_blocks([alert(0, event_id="x" * MAX_TEXT)])[-1]["elements"]
    assert huge["text"].endswith("ids: … and 1 more")


def test_a_long_message_is_cut_to_slacks_limits_not_refused() -> None:
    (section,) = slack_blocks([alert(0, message="m" * 5000, kind="k" * 2500)])[1:2]
    assert len(section["text"]["text"]) == MAX_TEXT
    assert section["text"]["text"].endswith("m…")
    assert all(len(field["text"]) <= 2000 for field in section["fields"])
    assert section["fields"][0]["text"].endswith("k…")


def test_a_long_message_is_cut_to_what_the_live_feed_takes() -> None:
    matchers = "|".join(f"SYM{n:03}" for n in range(400))
    notice = alert(0, message=f'Silence {{symbol=~"{matchers}"}} expired after suppressing 3.')
    item = dashboard_item(notice)
    assert len(item["message"]) == MAX_FEED_MESSAGE
    assert item["message"].endswith("…")
    assert item["message"][:-1] == notice.message[: MAX_FEED_MESSAGE - 1]
    assert dashboard_item(alert(1))["message"] == alert(1).message
