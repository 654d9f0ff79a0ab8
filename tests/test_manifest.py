"""The Slack app manifest asks for exactly what the code uses.

An admin installing churnbot grants every scope the manifest lists, so a scope the code never
needs is a permission handed out for nothing, and a missing one is a runtime ``missing_scope``.
These tests read the ``bot/`` package's source for its Web API calls, slash commands and event
listeners, and compare them with deploy/slack-app-manifest.yaml; the `/churn-admin` usage hint
must list every subcommand the admin handlers dispatch on.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "deploy" / "slack-app-manifest.yaml"
#: The emulator is the fake Slack the tests and the demo talk to, not a Web API client.
NOT_THE_APP = {REPO / "bot" / "emulator"}

#: The bot-token scopes each Web API method needs (Slack's method reference).
SCOPES: dict[str, set[str]] = {
    "auth.test": set(),
    "chat.delete": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    # Digests go to public and private channels; an owner alert whose answer was lost is
    # looked up in the owner's DM (bot/digest/alerts.py).
    "conversations.history": {"channels:history", "groups:history", "im:history"},
    "conversations.info": {"channels:read", "groups:read"},
    # Alerts and the admins' charts go to a direct message, opened first (files need its id).
    "conversations.open": {"im:write"},
    "conversations.replies": {"channels:history", "groups:history"},
    # slack_sdk's files_upload_v2: files.getUploadURLExternal + files.completeUploadExternal.
    "files.upload_v2": {"files:write"},
    # `/churn mine` reads the profile's email (bot/listeners/churn.py, owner_of), which
    # users.info returns only with users:read.email.
    "users.info": {"users:read", "users:read.email"},
    "users.lookupByEmail": {"users:read", "users:read.email"},
    "views.open": set(),
    "views.publish": set(),
    "views.update": set(),
}
#: slack_sdk's WebClient method names are the Web API's, with the first dot as "_".
_FAMILIES = "admin|apps|auth|bookmarks|bots|chat|conversations|files|pins|reactions|reminders|"
_FAMILIES += "team|usergroups|users|views"
_CLIENT_CALL = re.compile(rf"\.({_FAMILIES})_([A-Za-z0-9_]+)\(")
_API_CALL = re.compile(r"\.api_call\(\s*[\"']([\w.]+)[\"']")
_SAY = re.compile(r"\bsay\(")  # Bolt's say() is chat.postMessage
_SLASH = re.compile(r"@\w+\.command\(\s*[\"'](/[\w-]+)[\"']")  # @app.command("/churn")
_EVENT = re.compile(r"@\w+\.event\(\s*[\"']([\w.]+)[\"']")  # @app.event("app_home_opened")


def _app_sources() -> dict[Path, str]:
    return {
        path: path.read_text()
        for path in sorted((REPO / "bot").rglob("*.py"))
        if not any(folder in path.parents for folder in NOT_THE_APP)
    }


def web_api_methods() -> dict[str, list[str]]:
    """Every Web API method the app calls, with the files that call it."""
    found: dict[str, list[str]] = {}
    for path, text in _app_sources().items():
        methods = {f"{family}.{name}" for family, name in _CLIENT_CALL.findall(text)}
        methods |= set(_API_CALL.findall(text))
        if _SAY.search(text):
            methods.add("chat.postMessage")
        for method in methods:
            found.setdefault(method, []).append(str(path.relative_to(REPO)))
    return found


def _found(pattern: re.Pattern[str]) -> set[str]:
    return {match for text in _app_sources().values() for match in pattern.findall(text)}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def test_the_walk_finds_the_calls_the_app_is_known_to_make() -> None:
    """Guards the walk itself: an empty result would make the scope test vacuous."""
    assert {"chat.postMessage", "users.info", "views.publish"} <= set(web_api_methods())


def test_bot_scopes_are_exactly_those_the_code_uses(manifest: dict) -> None:
    calls = web_api_methods()
    unknown = sorted(set(calls) - set(SCOPES))
    assert not unknown, f"add the scopes of {unknown} (called in {calls}) to SCOPES"
    needed = set().union(*(SCOPES[method] for method in calls))
    if _found(_SLASH):
        needed.add("commands")

    granted = set(manifest["oauth_config"]["scopes"]["bot"])

    assert not granted - needed, f"the manifest asks for unused scopes {granted - needed}"
    assert not needed - granted, f"the code needs scopes the manifest lacks: {needed - granted}"


def test_slash_commands_and_events_match_the_listeners(manifest: dict) -> None:
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert commands == _found(_SLASH)
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == _found(_EVENT)


def _dispatched_admin_commands() -> set[str]:
    """The `/churn-admin` subcommands the handlers dispatch on, read from their source."""
    admin = (REPO / "bot" / "admin.py").read_text()
    feedback = (REPO / "bot" / "feedback" / "admin_commands.py").read_text()
    return set(re.findall(r'what == "([a-z ]+)"', admin)) | set(
        re.findall(r'command == "([a-z]+)"', feedback)
    )


def _leading_words(usage: str) -> str:
    """``digest now CHANNEL [preview]`` -> ``digest now``: the words typed as they are."""
    words = re.match(r"(?:[a-z]+\b\s*)*", usage.strip())
    return " ".join(words[0].split()) if words else ""


def test_admin_usage_hint_lists_every_subcommand(manifest: dict) -> None:
    from bot.admin import USAGE
    from bot.feedback.admin_commands import USAGE as FEEDBACK_USAGE

    dispatched = _dispatched_admin_commands()
    assert {"status", "killswitch on", "digest now", "stats", "promote"} <= dispatched

    (admin,) = [c for c in manifest["features"]["slash_commands"] if c["command"] == "/churn-admin"]
    hint = {_leading_words(part) for part in admin["usage_hint"].split("|")}
    assert hint == dispatched, f"usage_hint lists {sorted(hint)}; the code has {sorted(dispatched)}"

    # The help an admin reads in Slack lists them all too.
    helped = {_leading_words(c) for c in re.findall(r"• `([^`]+)`", USAGE + "\n" + FEEDBACK_USAGE)}
    assert helped == dispatched


def test_socket_mode_is_documented_where_it_is_switched_on() -> None:
    text = MANIFEST.read_text()
    setting = text.index("socket_mode_enabled:")
    comment = text[:setting].rsplit("\n\n", 1)[-1]
    assert "SLACK_APP_TOKEN" in comment
    assert "churnbot serve --socket-mode" in comment
    assert "connections:write" in comment
