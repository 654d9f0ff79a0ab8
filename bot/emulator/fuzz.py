"""Hostile and malformed Slack requests, generated from a seed, for the fuzz test and bench.

Each request is what an attacker or a broken proxy could send to ``POST /slack/events``:
``/churn`` texts of any length and alphabet, interaction payloads with fields removed or of
the wrong type, broken encodings, and raw garbage; most are correctly signed (so they reach
the listeners), the rest unsigned or forged. The same seed gives the same requests, so a
failure found once can be replayed.
"""

from __future__ import annotations

import copy
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from bot.emulator.sender import FORM, signature

_ALPHABETS = [
    "abcdefghijklmnopqrstuvwxyz",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
    " \t\n",
    "*_~`<>&!@#|:;'\"\\/%+=?.,()[]{}",
    "éèàüßøñçÅÉ",
    "名前テスト中文한국어",
    "🚀🔥💥🧨👍",
    "\x00\x01\x07\x08\x1b\x7f\u200b\u200e\u202e\ufeff",
]
_TOKENS = ["<!channel>", "<!here>", "<@U0ADMIN001>", "acme", "corp", "ACC-000001", "mine", "help"]


@dataclass(frozen=True)
class FuzzRequest:
    kind: str
    body: bytes
    headers: dict[str, str]
    signed: bool


class SlackFuzzer:
    """Generates requests; ``secret`` signs the ones meant to pass verification."""

    def __init__(
        self,
        secret: str,
        *,
        seed: int,
        user_id: str = "U0CSM00001",
        response_url: str = "https://hooks.example/fuzz",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secret = secret
        self.rng = random.Random(seed)
        self.user_id = user_id
        self.response_url = response_url
        self.clock = clock

    # -- pieces ---------------------------------------------------------------------------------

    def text(self, max_len: int = 5_000) -> str:
        """A string mixing words, Slack markup and odd characters, mostly short."""
        rng = self.rng
        length = min(max_len, int(rng.paretovariate(0.8) * 4))
        parts: list[str] = []
        while sum(map(len, parts)) < length:
            if rng.random() < 0.2:
                parts.append(rng.choice(_TOKENS))
            else:
                alphabet = rng.choice(_ALPHABETS)
                parts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))))
            parts.append(" " if rng.random() < 0.8 else "")
        return "".join(parts)[:length]

    def junk(self, depth: int = 0) -> Any:
        """A value of a random JSON type, sometimes nested, sometimes large."""
        rng = self.rng
        choice = rng.randrange(9 if depth < 3 else 6)
        if choice == 0:
            return None
        if choice == 1:
            return rng.choice([0, -1, 2**63, 1.5, float("1e308")])
        if choice == 2:
            return rng.choice([True, False])
        if choice == 3:
            return self.text(60)
        if choice == 4:
            return "x" * rng.choice([0, 1, 3_001, 70_000])
        if choice == 5:
            return ""
        if choice == 6:
            return [self.junk(depth + 1) for _ in range(rng.randint(0, 3))]
        if choice == 7:
            return {self.text(8): self.junk(depth + 1) for _ in range(rng.randint(0, 3))}
        return json.loads("[" * 50 + "]" * 50)

    # -- requests -------------------------------------------------------------------------------

    def churn_text(self) -> FuzzRequest:
        """A signed `/churn` command whose text is anything a user could type (or paste)."""
        form = {
            "command": "/churn",
            "text": self.text(),
            "user_id": self.user_id,
            "team_id": "T0CHURNBOT",
            "channel_id": "C0GENERAL1",
            "response_url": self.response_url,
            "trigger_id": f"trig.{uuid.uuid4().hex}",
        }
        return self._signed("churn_text", urlencode(form), FORM)

    def interaction(self) -> FuzzRequest:
        """An interaction, event or command with one to three fields broken, mostly signed."""
        rng = self.rng
        template = copy.deepcopy(rng.choice(self._templates()))
        for _ in range(rng.randint(1, 3)):
            self._mutate(template)
        if template.get("type") == "event_callback":
            body, content_type = json.dumps(template), "application/json"
        elif "command" in template:
            body, content_type = urlencode(template), FORM
        else:
            body, content_type = urlencode({"payload": json.dumps(template)}), FORM
        if rng.random() < 0.15:  # broken encoding on top
            cut = rng.randrange(len(body) + 1)
            body = rng.choice([body[:cut], body.replace("%", "%Z", 1), "payload=" + body[:cut]])
        if rng.random() < 0.2:
            return self._unsigned("interaction", body, content_type)
        return self._signed("interaction", body, content_type)

    def raw(self) -> FuzzRequest:
        """Garbage bodies and headers: bad timestamps, bad signatures, odd content types."""
        rng = self.rng
        body = self.text(2_000)
        content_type = rng.choice(["application/json", FORM, "text/plain", ""])
        if rng.random() < 0.5:
            return self._signed("raw", body, content_type)
        return self._unsigned("raw", body, content_type)

    def any(self) -> FuzzRequest:
        return self.rng.choice([self.churn_text, self.interaction, self.interaction, self.raw])()

    # -- helpers --------------------------------------------------------------------------------

    def _signed(self, kind: str, body: str, content_type: str) -> FuzzRequest:
        ts = str(int(self.clock()))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature(self.secret, ts, body),
        }
        return FuzzRequest(kind, body.encode(), headers, signed=True)

    def _unsigned(self, kind: str, body: str, content_type: str) -> FuzzRequest:
        rng = self.rng
        ts = rng.choice(
            [str(int(self.clock())), "abc", "", "-1", "1e9", "9" * 30, "1_700_000_000", "0x10"]
        )
        headers = {"Content-Type": content_type}
        if rng.random() < 0.8:
            headers["X-Slack-Request-Timestamp"] = ts
        if rng.random() < 0.8:
            headers["X-Slack-Signature"] = rng.choice(
                ["", "v0=", "v0=" + "0" * 64, signature("forged", ts, body), "sha256=" + ts]
            )
        return FuzzRequest(kind, body.encode(), headers, signed=False)

    def _templates(self) -> list[dict[str, Any]]:
        user = {"id": self.user_id, "team_id": "T0CHURNBOT"}
        action = {
            "type": "block_actions",
            "user": user,
            "team": {"id": "T0CHURNBOT"},
            "trigger_id": f"trig.{uuid.uuid4().hex}",
            "response_url": self.response_url,
            "container": {"type": "message", "channel_id": "C0GENERAL1", "message_ts": "1.2"},
        }
        return [
            {**action, "actions": [{"action_id": "show_account", "value": "ACC-000001"}]},
            {**action, "actions": [{"action_id": "feedback_helpful", "value": self.text(40)}]},
            {**action, "actions": [{"action_id": "feedback_correct", "value": "{}"}]},
            {
                "type": "view_submission",
                "user": user,
                "team": {"id": "T0CHURNBOT"},
                "view": {
                    "id": "V0FUZZ",
                    "type": "modal",
                    "callback_id": "feedback_correction",
                    "private_metadata": self.text(40),
                    "state": {"values": {"b": {"a": {"type": "plain_text_input", "value": "x"}}}},
                },
            },
            {
                "type": "event_callback",
                "team_id": "T0CHURNBOT",
                "event_id": f"Ev{uuid.uuid4().hex[:10]}",
                "event": {"type": "app_home_opened", "user": self.user_id, "tab": "home"},
            },
            {
                "command": "/churn-admin",
                "text": self.text(40),
                "user_id": self.user_id,
                "team_id": "T0CHURNBOT",
                "response_url": self.response_url,
            },
        ]

    def _mutate(self, node: dict[str, Any]) -> None:
        """Delete, retype or add one field somewhere in ``node``."""
        rng = self.rng
        target: Any = node
        for _ in range(rng.randint(0, 3)):
            children = [v for v in target.values() if isinstance(v, dict)]
            lists = [v[0] for v in target.values() if isinstance(v, list) and v]
            inner = [c for c in children + lists if isinstance(c, dict)]
            if not inner:
                break
            target = rng.choice(inner)
        if not target:
            target[self.text(8)] = self.junk()
            return
        key = rng.choice(sorted(target))
        move = rng.randrange(3)
        if move == 0:
            del target[key]
        elif move == 1:
            target[key] = self.junk()
        else:
            target[self.text(8)] = self.junk()
