"""A local Slack Web API emulator for tests, benchmarks and ``churnbot demo``.

The app talks to it through a real ``WebClient(base_url=emulator.base_url)``, exactly as it
talks to Slack through ``SLACK_API_URL``; nothing in the app knows it is not Slack. Socket Mode
too: ``apps.connections.open`` with ``SlackEmulator.app_token`` hands out a WebSocket URL on
``SlackEmulator.socket_mode`` (:class:`bot.emulator.socket_mode.SocketModeServer`, not exported
here: it needs ``websockets``, a dev dependency, which ``churnbot demo`` does without).
"""

from bot.emulator.blockkit import (
    Rejection,
    block_kit_problems,
    message_rejection,
    view_problems,
)
from bot.emulator.server import Call, SlackEmulator
from bot.emulator.workspace import SlackUser

__all__ = [
    "Call",
    "Rejection",
    "SlackEmulator",
    "SlackUser",
    "block_kit_problems",
    "message_rejection",
    "view_problems",
]
