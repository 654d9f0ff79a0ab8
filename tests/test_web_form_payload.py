"""The web door decodes an interaction's form body itself (``bot.door.form_payload``): the
request Bolt gets must be the one Bolt would have made of the same body, whatever the body."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from slack_bolt import BoltRequest

from bot.door import FORM, bolt_request, form_payload

CLICK: dict[str, Any] = {
    "type": "block_actions",
    "user": {"id": "U0CSM00001"},
    "actions": [{"action_id": "feedback_helpful", "value": "c|20261116T000000-x"}],
    "message": {
        "text": 'Churn risk + 3 accounts: café, 50% off, a\\b, "quoted", line\nbreak, 🙂',
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "<@U1> & *bold*"}}],
    },
}


def state(request: BoltRequest) -> dict[str, Any]:
    """What a request holds for the middleware and listeners after it."""
    return {
        "raw_body": request.raw_body,
        "body": request.body,
        "mode": request.mode,
        "query": request.query,
        "headers": request.headers,
        "content_type": request.content_type,
        "context": dict(request.context),
        "lazy_only": request.lazy_only,
        "lazy_function_name": request.lazy_function_name,
    }


def same_as_bolt(text: str, content_type: str = FORM) -> None:
    headers: dict[str, Any] = {"content-type": content_type, "x-slack-retry-num": "1"}
    try:
        expected = state(BoltRequest(body=text, query="a=1", headers=headers))
    except Exception as bolt_error:
        with pytest.raises(type(bolt_error)):
            bolt_request(text, "a=1", headers)
        return
    assert state(bolt_request(text, "a=1", headers)) == expected


@pytest.mark.parametrize("ascii_json", [True, False])
def test_a_click_is_decoded_by_the_door_as_bolt_decodes_it(ascii_json: bool) -> None:
    text = urlencode({"payload": json.dumps(CLICK, ensure_ascii=ascii_json)})
    assert form_payload(text) == CLICK
    same_as_bolt(text)


@pytest.mark.parametrize(
    "text",
    [
        "payload=" + quote(json.dumps(CLICK)),  # spaces as %20, "+" left as is
        "payload=" + quote(json.dumps(CLICK), safe='{}":,\\'),  # raw braces, quotes, backslashes
        "payload=%7B%22a%22%3A%22%FF%FE%22%7D",  # bytes that are not UTF-8
        "payload=%7b%22a%22%3a%22%c3%a9%22%7d",  # lower-case hex
        "payload=%7B%22a%22%3A%22%zz%22%7D",  # not an escape: urllib keeps it as is
        "payload=%7B%22a%22%3A1%7D%",  # a lone % at the end
        "payload=%7B%22a%22%3A1%7D%4",
        "payload=%5B1%2C2%5D",  # JSON, but not an object
        "payload=%7B%22a%22%3A",  # not JSON
        "payload=",
        "payload=%7B%22a%22%3A%22é%22%7D",  # not ASCII
        "payload=%7B%7D&payload=%7B%22a%22%3A1%7D",  # two fields: the last one counts
        "command=%2Fchurn&text=acme+corp&user_id=U0CSM00001",
        '{"type": "event_callback", "payload": 1}',
    ],
)
def test_any_other_body_gives_bolt_the_request_it_would_make(text: str) -> None:
    same_as_bolt(text)


def test_the_content_type_is_read_as_bolt_reads_it() -> None:
    """A form with parameters is a form; a body said to be JSON is Bolt's to refuse."""
    text = urlencode({"payload": json.dumps(CLICK)})
    same_as_bolt(text, content_type=f"{FORM}; charset=utf-8")
    same_as_bolt(text, content_type="application/json")
