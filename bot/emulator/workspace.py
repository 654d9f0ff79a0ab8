"""The emulated workspace: channels, users, messages, views and files, and the Web API methods.

Why apart from the HTTP server: these rules (which channel exists, which ``ts`` can be edited,
what views.update needs) are what the app's tests depend on, and they read best without sockets
around them. Not thread-safe on its own: the server calls it under one lock.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.emulator.blockkit import message_rejection, view_problems

JSON_FIELDS = ("blocks", "attachments", "view", "metadata", "files")
HISTORY_MAX_LIMIT = 999
#: files.completeUploadExternal shares into conversation ids only: a user id (U...) is refused,
#: so a DM needs conversations.open first (Slack answers with this very pattern).
SHARE_CHANNEL_ID = re.compile(r"^[CGDZ][A-Z0-9]{8,}$")


@dataclass(frozen=True)
class SlackUser:
    """One row of the emulator's users table, answered by users.info."""

    id: str
    name: str
    real_name: str = ""
    email: str = ""
    is_admin: bool = False
    tz: str = "UTC"

    def to_api(self, team_id: str) -> dict[str, Any]:
        """The user object in the shape users.info returns it."""
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": False,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_bot": False,
            "tz": self.tz,
            "profile": {
                "real_name": self.real_name,
                "display_name": self.name,
                "email": self.email,
            },
        }


@dataclass
class StoredFile:
    """A file of the external upload flow: announced (getUploadURLExternal), its bytes
    received at the upload URL, then completed (completeUploadExternal) and maybe shared."""

    id: str
    name: str
    length: int
    alt_txt: str = ""
    snippet_type: str | None = None
    data: bytes | None = None
    title: str = ""
    completed: bool = False
    channels: list[str] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        """The file object as a message's ``files`` list carries it (no bytes)."""
        return {
            "id": self.id,
            "name": self.name,
            "title": self.title or self.name,
            "size": len(self.data or b""),
            "alt_txt": self.alt_txt,
            "mode": "hosted",
            "is_external": False,
            "channels": list(self.channels),
        }


@dataclass
class _Channel:
    id: str
    name: str
    is_member: bool
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, JSON body and extra headers (e.g. Retry-After)."""

    status: int
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """A Slack error answer (``ok: false``); raised by a method, turned into a :class:`Reply`."""

    def __init__(
        self,
        error: str,
        *,
        status: int = 200,
        messages: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.messages = tuple(messages)
        self.headers = dict(headers or {})

    def reply(self) -> Reply:
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.messages:
            body["response_metadata"] = {"messages": list(self.messages)}
        return Reply(self.status, body, self.headers)


def decode_json_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """Decode the fields a form-encoded call carries as JSON strings; leave bad JSON as text.

    Slack accepts ``blocks``/``view``/``metadata`` either as JSON values (JSON body) or as JSON
    strings (a form body, or a JSON body whose client was given the text: churnbot posts a
    digest's blocks so); decoding here lets every encoding reach the same method code. Text
    that is not JSON stays a string so the method can answer the right ``*_format`` error.
    """
    decoded = dict(params)
    for name in JSON_FIELDS:
        value = decoded.get(name)
        if isinstance(value, str):
            with contextlib.suppress(json.JSONDecodeError):
                decoded[name] = json.loads(value)
    return decoded


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _ts_key(ts: Any, error: str) -> Decimal:
    try:
        return Decimal(str(ts))
    except InvalidOperation:
        raise ApiError(error, messages=[f"[ERROR] invalid timestamp {ts!r}"]) from None


def _missing(field_name: str) -> ApiError:
    return ApiError("invalid_arguments", messages=[f"[ERROR] missing required field: {field_name}"])


class Workspace:
    """State plus one function per Web API method; ``handle`` dispatches by method name."""

    def __init__(
        self,
        *,
        team_id: str,
        bot_user_id: str,
        bot_id: str,
        channels: Mapping[str, str] | Iterable[str] | None,
        non_member_channels: Iterable[str],
        users: Iterable[SlackUser],
        rate_limit_per_channel: float | None,
        clock: Callable[[], float],
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self._open_world = channels is None
        self._non_members = set(non_member_channels)
        self._channels: dict[str, _Channel] = {}
        names = channels if isinstance(channels, Mapping) else {c: c for c in channels or ()}
        for channel_id, name in names.items():
            self.add_channel(channel_id, name, member=channel_id not in self._non_members)
        self._users = {user.id: user for user in users}
        self._rate = rate_limit_per_channel
        self._clock = clock
        self._next_post_at: dict[str, float] = {}
        self._last_ts_us = 0
        self._views: dict[str, dict[str, Any]] = {}
        self._view_seq = 0
        self._triggers_used: set[str] = set()
        self.expired_triggers: set[str] = set()
        self.home_views: dict[str, list[dict[str, Any]]] = {}
        #: Where upload URLs point (the emulator's own ``/upload/v1/``); set by the server.
        self.upload_base = "http://127.0.0.1/upload/v1/"
        self.files: dict[str, StoredFile] = {}
        self._ims: dict[tuple[str, ...], str] = {}
        self._methods: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
            "users.info": self._users_info,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
        }

    # -- configuration -------------------------------------------------------------------------

    def add_channel(self, channel_id: str, name: str | None = None, *, member: bool = True) -> None:
        """Make a channel known, with the bot in it unless ``member`` is False."""
        if member:
            self._non_members.discard(channel_id)
        else:
            self._non_members.add(channel_id)
        self._channels[channel_id] = _Channel(channel_id, name or channel_id, member)

    def add_user(self, user: SlackUser) -> None:
        """Add or replace a row of the users table."""
        self._users[user.id] = user

    def history(self, channel_id: str) -> list[dict[str, Any]]:
        """The channel's current messages, oldest first, edits and deletions applied."""
        channel = self._channels.get(channel_id)
        return copy.deepcopy(channel.messages) if channel else []

    # -- dispatch ------------------------------------------------------------------------------

    def handle(self, method: str, params: Mapping[str, Any]) -> Reply:
        """Answer one authenticated call the way Slack would."""
        function = self._methods.get(method)
        if function is None:
            return Reply(200, {"ok": False, "error": "unknown_method", "req_method": method})
        try:
            return Reply(200, {"ok": True, **function(params)})
        except ApiError as error:
            return error.reply()

    # -- helpers -------------------------------------------------------------------------------

    def _channel(self, params: Mapping[str, Any], *, must_be_member: bool = False) -> _Channel:
        channel_id = params.get("channel")
        if not channel_id:
            raise ApiError("channel_not_found")
        channel = self._channels.get(channel_id)
        if channel is None:
            if not self._open_world:
                raise ApiError("channel_not_found")
            self.add_channel(channel_id, member=channel_id not in self._non_members)
            channel = self._channels[channel_id]
        if must_be_member and not channel.is_member:
            raise ApiError("not_in_channel")
        return channel

    def _content(self, params: Mapping[str, Any]) -> tuple[str | None, list[Any] | None]:
        """Text and blocks of a message, refused with Slack's error code when Slack would."""
        text = params.get("text")
        blocks = params.get("blocks")
        if isinstance(blocks, str) or (blocks is not None and not isinstance(blocks, list)):
            raise ApiError("invalid_blocks_format")
        rejection = message_rejection(text=text, blocks=blocks)
        if rejection is not None:
            raise ApiError(rejection.error, messages=rejection.messages)
        return (None if text is None else str(text)), blocks

    def _throttle(self, channel_id: str) -> None:
        """Per-channel posting rate: a post before the channel's next slot answers 429."""
        if self._rate is None:
            return
        now = self._clock()
        ready_at = self._next_post_at.get(channel_id, now)
        if now < ready_at:
            retry_after = max(1, math.ceil(ready_at - now))
            raise ApiError("ratelimited", status=429, headers={"Retry-After": str(retry_after)})
        self._next_post_at[channel_id] = now + 1.0 / self._rate

    def _next_ts(self) -> str:
        """A message ts: epoch seconds and microseconds, increasing across the whole workspace."""
        now_us = max(time.time_ns() // 1000, self._last_ts_us + 1)
        self._last_ts_us = now_us
        return f"{now_us // 1_000_000}.{now_us % 1_000_000:06d}"

    def _find(self, channel: _Channel, ts: Any) -> dict[str, Any]:
        for message in channel.messages:
            if message["ts"] == ts:
                return message
        raise ApiError("message_not_found")

    # -- auth and chat -------------------------------------------------------------------------

    def _auth_test(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_id.lower()}.slack.com/",
            "team": "Churnbot Emulator",
            "user": "churnbot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _new_message(self, text: str | None) -> dict[str, Any]:
        return {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "team": self.team_id,
            "text": text or "",
            "ts": self._next_ts(),
        }

    def _chat_post_message(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._channel(params, must_be_member=True)
        self._throttle(channel.id)
        text, blocks = self._content(params)
        message = self._new_message(text)
        if blocks:
            message["blocks"] = blocks
        if params.get("thread_ts"):
            message["thread_ts"] = str(params["thread_ts"])
        metadata = params.get("metadata")
        if metadata is not None:
            if not isinstance(metadata, Mapping) or "event_type" not in metadata:
                raise ApiError("invalid_metadata_format")
            message["metadata"] = metadata
        channel.messages.append(message)
        return {"channel": channel.id, "ts": message["ts"], "message": copy.deepcopy(message)}

    def _chat_post_ephemeral(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self._channel(params, must_be_member=True)
        if not params.get("user"):
            raise _missing("user")
        self._content(params)
        return {"message_ts": self._next_ts()}

    def _chat_update(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        message = self._find(channel, params.get("ts"))
        text, blocks = self._content(params)
        if text is not None:
            message["text"] = text
        if blocks is not None:
            message["blocks"] = blocks
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {
            "channel": channel.id,
            "ts": message["ts"],
            "text": message["text"],
            "message": copy.deepcopy(message),
        }

    def _chat_delete(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        channel.messages.remove(self._find(channel, params.get("ts")))
        return {"channel": channel.id, "ts": params["ts"]}

    # -- conversations and users ---------------------------------------------------------------

    def _conversations_history(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Top-level messages, newest first, within (oldest, latest), paged by an opaque cursor."""
        channel = self._channel(params, must_be_member=True)
        inclusive = _flag(params.get("inclusive"))
        oldest = _ts_key(params.get("oldest", "0"), "invalid_ts_oldest")
        latest = _ts_key(params.get("latest", "9999999999"), "invalid_ts_latest")
        try:
            limit = min(int(params.get("limit", 100)), HISTORY_MAX_LIMIT)
            start = int(base64.urlsafe_b64decode(params.get("cursor") or "MA=="))
        except ValueError:
            raise ApiError("invalid_arguments", messages=["[ERROR] bad limit or cursor"]) from None
        with_metadata = _flag(params.get("include_all_metadata"))
        selected = []
        for message in reversed(channel.messages):
            if message.get("thread_ts", message["ts"]) != message["ts"]:
                continue
            key = Decimal(message["ts"])
            if (oldest <= key <= latest) if inclusive else (oldest < key < latest):
                shown = copy.deepcopy(message)
                if not with_metadata:
                    shown.pop("metadata", None)
                selected.append(shown)
        page = selected[start : start + limit]
        has_more = start + limit < len(selected)
        next_cursor = (
            base64.urlsafe_b64encode(str(start + limit).encode()).decode() if has_more else ""
        )
        return {
            "messages": page,
            "has_more": has_more,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _conversations_replies(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._channel(params, must_be_member=True)
        ts = params.get("ts")
        if not any(m["ts"] == ts for m in channel.messages):
            raise ApiError("thread_not_found")
        thread = [
            copy.deepcopy(m) for m in channel.messages if m["ts"] == ts or m.get("thread_ts") == ts
        ]
        return {"messages": thread, "has_more": False}

    def _conversations_info(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        return {
            "channel": {
                "id": channel.id,
                "name": channel.name,
                "is_channel": True,
                "is_private": False,
                "is_archived": False,
                "is_member": channel.is_member,
            }
        }

    def _conversations_open(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A direct message with one user (D...) or several (G...), the same id every time."""
        if params.get("channel"):
            channel = self._channel(params)
            return {"channel": {"id": channel.id}, "no_op": True, "already_open": True}
        users = tuple(sorted(u.strip() for u in str(params.get("users", "")).split(",") if u))
        if not users:
            raise ApiError("users_list_not_supplied")
        if any(user not in self._users for user in users):
            raise ApiError("user_not_found")
        opened_before = users in self._ims
        if not opened_before:
            self._ims[users] = f"{'D' if len(users) == 1 else 'G'}{len(self._ims) + 1:09d}"
            self.add_channel(self._ims[users], self._ims[users])
        opened: dict[str, Any] = {"id": self._ims[users]}
        if len(users) == 1:
            opened.update(is_im=True, user=users[0])
        else:
            opened.update(is_mpim=True)
        return {"channel": opened, "no_op": opened_before, "already_open": opened_before}

    def _users_info(self, params: Mapping[str, Any]) -> dict[str, Any]:
        user = self._users.get(params.get("user", ""))
        if user is None:
            raise ApiError("user_not_found")
        return {"user": user.to_api(self.team_id)}

    # -- files (the external upload flow) ------------------------------------------------------

    def _files_get_upload_url_external(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Step 1: announce a file (name, exact length, alt text); get where to send bytes."""
        filename = params.get("filename")
        if not filename:
            raise _missing("filename")
        try:
            length = int(params.get("length", ""))
        except ValueError:
            raise _missing("length") from None
        if length < 1:
            raise ApiError("invalid_arguments", messages=["[ERROR] length must be at least 1"])
        file_id = f"F{len(self.files) + 1:010d}"
        self.files[file_id] = StoredFile(
            id=file_id,
            name=str(filename),
            length=length,
            alt_txt=str(params.get("alt_txt") or ""),
            snippet_type=params.get("snippet_type") or None,
        )
        return {"upload_url": f"{self.upload_base}{file_id}", "file_id": file_id}

    def receive_upload(self, file_id: str, data: bytes) -> Reply:
        """Step 2, at the upload URL (no token: the URL itself is the credential). The bytes
        must be as long as announced; a completed or unknown file is not found."""
        stored = self.files.get(file_id)
        if stored is None or stored.completed:
            return Reply(404, {"ok": False, "error": "file_not_found"})
        if len(data) != stored.length:
            return Reply(
                400,
                {
                    "ok": False,
                    "error": "invalid_length",
                    "detail": f"announced {stored.length} bytes, received {len(data)}",
                },
            )
        stored.data = data
        return Reply(200, {"ok": True, "detail": f"OK - {len(data)}"})

    def _share_targets(self, params: Mapping[str, Any]) -> list[_Channel]:
        wanted = [params["channel_id"]] if params.get("channel_id") else []
        wanted += [c for c in str(params.get("channels") or "").split(",") if c]
        targets = []
        for channel_id in wanted:
            if not SHARE_CHANNEL_ID.fullmatch(str(channel_id)):
                raise ApiError(
                    "invalid_arguments",
                    messages=[
                        f"[ERROR] input must match regex pattern: {SHARE_CHANNEL_ID.pattern} "
                        "[json-pointer:/channel_id]"
                    ],
                )
            targets.append(self._channel({"channel": channel_id}, must_be_member=True))
        return targets

    def _files_complete_upload_external(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Step 3: finish the files whose bytes arrived and share them, with the initial
        comment, in one message per channel (no channel: the files stay private)."""
        files = params.get("files")
        if not isinstance(files, list) or not files:
            raise _missing("files")
        found = []
        for item in files:
            stored = self.files.get(item.get("id", "")) if isinstance(item, Mapping) else None
            if stored is None or stored.completed or stored.data is None:
                raise ApiError("file_not_found")
            found.append((stored, item))
        targets = self._share_targets(params)
        for stored, item in found:
            stored.completed = True
            stored.title = str(item.get("title") or stored.name)
            stored.channels += [channel.id for channel in targets]
        for channel in targets:
            message = self._new_message(params.get("initial_comment"))
            message["upload"] = True
            message["files"] = [stored.to_api() for stored, _ in found]
            if params.get("thread_ts"):
                message["thread_ts"] = str(params["thread_ts"])
            channel.messages.append(message)
        return {"files": [{"id": stored.id, "title": stored.title} for stored, _ in found]}

    # -- views ---------------------------------------------------------------------------------

    def _checked_view(self, params: Mapping[str, Any], kind: str) -> dict[str, Any]:
        view = params.get("view")
        if view is None:
            raise _missing("view")
        problems = view_problems(view)
        if not problems and view.get("type") != kind:
            problems = [f"must be {kind!r} for this method [json-pointer:/view/type]"]
        if problems:
            raise ApiError("invalid_arguments", messages=[f"[ERROR] {p}" for p in problems])
        return dict(view)

    def _store_view(self, view: dict[str, Any], view_id: str | None = None) -> dict[str, Any]:
        """Give a view the fields Slack adds (id, hash, state) and remember it."""
        if view_id is None:
            self._view_seq += 1
            view_id = f"V{self._view_seq:08d}"
        stored = {
            **view,
            "id": view_id,
            "team_id": self.team_id,
            "bot_id": self.bot_id,
            "root_view_id": view_id,
            "state": {"values": {}},
            "hash": f"{self._next_ts()}.{view_id}",
        }
        self._views[view_id] = stored
        return copy.deepcopy(stored)

    def _by_external_id(self, external_id: Any) -> dict[str, Any] | None:
        return next((v for v in self._views.values() if v.get("external_id") == external_id), None)

    def _views_open(self, params: Mapping[str, Any]) -> dict[str, Any]:
        trigger_id = params.get("trigger_id")
        if not trigger_id:
            raise _missing("trigger_id")
        if trigger_id in self.expired_triggers:
            raise ApiError("expired_trigger_id")
        if trigger_id in self._triggers_used:
            raise ApiError("exchanged_trigger_id")
        view = self._checked_view(params, "modal")
        if view.get("external_id") and self._by_external_id(view["external_id"]):
            raise ApiError("duplicate_external_id")
        self._triggers_used.add(trigger_id)
        return {"view": self._store_view(view)}

    def _views_update(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if params.get("view_id"):
            current = self._views.get(params["view_id"])
        elif params.get("external_id"):
            current = self._by_external_id(params["external_id"])
        else:
            raise _missing("view_id or external_id")
        if current is None:
            raise ApiError("not_found")
        if params.get("hash") and params["hash"] != current["hash"]:
            raise ApiError("hash_conflict")
        view = self._checked_view(params, "modal")
        view.setdefault("external_id", current.get("external_id"))
        return {"view": self._store_view(view, current["id"])}

    def _views_publish(self, params: Mapping[str, Any]) -> dict[str, Any]:
        user_id = params.get("user_id")
        if not user_id:
            raise _missing("user_id")
        published = self.home_views.setdefault(user_id, [])
        if params.get("hash") and published and params["hash"] != published[-1]["hash"]:
            raise ApiError("hash_conflict")
        home_id = published[-1]["id"] if published else None
        view = self._store_view(self._checked_view(params, "home"), home_id)
        published.append(view)
        return {"view": copy.deepcopy(view)}
