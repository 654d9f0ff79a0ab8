"""Block Kit rendering: pure functions from cards and state to Slack messages and views.

Nothing here calls Slack or Redis; listeners and the scheduler fetch the data, call these
functions and send what they return. Everything user-controlled is escaped for mrkdwn and
kept under Block Kit's limits here, so no caller has to remember to.
"""

from bot.render.blocks import (
    account_card_blocks,
    help_blocks,
    no_match_blocks,
    pick_list_blocks,
)
from bot.render.digest import DigestContent, Message, digest_messages
from bot.render.feedback import (
    FEEDBACK_BUTTONS,
    FeedbackKey,
    FeedbackRef,
    feedback_actions,
    parse_feedback_action,
    parse_feedback_value,
)
from bot.render.home import NOT_MAPPED, AdminStatus, home_view, mine_blocks
from bot.render.text import (
    change_label,
    escape_mrkdwn,
    fallback_banner,
    no_data_message,
    trend_words,
)

__all__ = [
    "FEEDBACK_BUTTONS",
    "NOT_MAPPED",
    "AdminStatus",
    "DigestContent",
    "FeedbackKey",
    "FeedbackRef",
    "Message",
    "account_card_blocks",
    "change_label",
    "digest_messages",
    "escape_mrkdwn",
    "fallback_banner",
    "feedback_actions",
    "help_blocks",
    "home_view",
    "mine_blocks",
    "no_data_message",
    "no_match_blocks",
    "parse_feedback_action",
    "parse_feedback_value",
    "pick_list_blocks",
    "trend_words",
]
