"""Block Kit limits that Slack enforces, as pure functions.

Why a module of its own: the emulator answers ``invalid_blocks`` from these checks, and the
app's renderer tests call the very same functions, so "Slack would reject this message" is
decided in one place. slack-sdk's model classes only validate when serialised and ignore plain
dict blocks and the block count, so they cannot play this role.

Problems read like Slack's own ``response_metadata.messages`` (a JSON pointer to the offending
field) so a failing test points at the field, not just at "invalid_blocks".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_BLOCKS = {"message": 50, "modal": 100, "home": 100}
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
MAX_ACTION_ID = 255
MAX_BLOCK_ID = 255
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_PLACEHOLDER = 150
MAX_LABEL = 2000
MAX_ALT_TEXT = 2000
MAX_VIEW_TITLE = 24
MAX_CALLBACK_ID = 255
MAX_PRIVATE_METADATA = 3000
MAX_EXTERNAL_ID = 255
MAX_MESSAGE_TEXT = 40_000
# Slack documents no exact figure; messages with blocks around 13k characters of JSON come back
# ``msg_blocks_too_long``. Measured on compact JSON so the client's formatting does not matter.
MAX_MESSAGE_BLOCKS_JSON = 13_000

BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)
# Element type -> most options it may carry (None: not an options element).
ELEMENT_TYPES: Mapping[str, int | None] = {
    "button": None,
    "channels_select": None,
    "checkboxes": 10,
    "conversations_select": None,
    "datepicker": None,
    "datetimepicker": None,
    "email_text_input": None,
    "external_select": None,
    "file_input": None,
    "image": None,
    "multi_channels_select": None,
    "multi_conversations_select": None,
    "multi_external_select": None,
    "multi_static_select": 100,
    "multi_users_select": None,
    "number_input": None,
    "overflow": 5,
    "plain_text_input": None,
    "radio_buttons": 10,
    "rich_text_input": None,
    "static_select": 100,
    "timepicker": None,
    "url_text_input": None,
    "users_select": None,
    "workflow_button": None,
}
TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})


@dataclass(frozen=True)
class Rejection:
    """Why Slack would refuse a message: its error code and the detail messages it sends."""

    error: str
    messages: tuple[str, ...] = ()


def block_kit_problems(blocks: Any, *, surface: str = "message") -> list[str]:
    """Every reason Slack would answer ``invalid_blocks`` for ``blocks`` on ``surface``.

    ``surface`` is ``"message"``, ``"modal"`` or ``"home"`` (only the block count differs).
    An empty list means the blocks pass every check this module knows.
    """
    if surface not in MAX_BLOCKS:
        raise ValueError(
            f"The 'surface' parameter of block_kit_problems must be one of "
            f"{sorted(MAX_BLOCKS)}. Got {surface!r} instead."
        )
    checker = _Checker()
    checker.blocks(blocks, "/blocks", MAX_BLOCKS[surface])
    return checker.problems


def view_problems(view: Any) -> list[str]:
    """Every reason views.open/update/publish would answer ``invalid_arguments`` for ``view``."""
    checker = _Checker()
    checker.view(view, "/view")
    return checker.problems


def message_rejection(*, text: Any, blocks: Any) -> Rejection | None:
    """The error Slack answers for a message with this ``text`` and ``blocks``, or None if accepted.

    Checked in the order that gives the most specific code: nothing to show (``no_text``), text
    too long (``msg_too_long``), a block breaking a limit (``invalid_blocks``), then all blocks
    together too long (``msg_blocks_too_long``) — the one a digest of many valid sections hits.
    """
    has_text = isinstance(text, str) and text.strip() != ""
    if not has_text and not blocks:
        return Rejection("no_text")
    if isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT:
        return Rejection("msg_too_long")
    if blocks:
        problems = block_kit_problems(blocks, surface="message")
        if problems:
            return Rejection("invalid_blocks", tuple(f"[ERROR] {p}" for p in problems))
        size = len(json.dumps(blocks, separators=(",", ":"), ensure_ascii=False))
        if size > MAX_MESSAGE_BLOCKS_JSON:
            return Rejection("msg_blocks_too_long")
    return None


class _Checker:
    """Walks blocks and collects problems; one instance per validation run."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def _add(self, pointer: str, message: str) -> None:
        self.problems.append(f"{message} [json-pointer:{pointer}]")

    def _string(self, value: Any, pointer: str, limit: int, *, required: bool = True) -> None:
        if value is None:
            if required:
                self._add(pointer, "missing required field")
        elif not isinstance(value, str):
            self._add(pointer, f"must be a string, got {type(value).__name__}")
        elif required and value == "":
            self._add(pointer, "must be more than 0 characters")
        elif len(value) > limit:
            self._add(pointer, f"must be at most {limit} characters, got {len(value)}")

    def _text(
        self, obj: Any, pointer: str, limit: int, *, plain_only: bool = False, required: bool = True
    ) -> None:
        if obj is None:
            if required:
                self._add(pointer, "missing required field")
            return
        if not isinstance(obj, Mapping):
            self._add(pointer, "must be a text object")
            return
        kinds = {"plain_text"} if plain_only else TEXT_TYPES
        if obj.get("type") not in kinds:
            self._add(f"{pointer}/type", f"must be one of {sorted(kinds)}, got {obj.get('type')!r}")
        self._string(obj.get("text"), f"{pointer}/text", limit)

    def _object_list(self, value: Any, pointer: str, low: int, high: int) -> list[Any]:
        if not isinstance(value, list):
            self._add(pointer, "must be an array")
            return []
        if not low <= len(value) <= high:
            self._add(pointer, f"must have between {low} and {high} items, got {len(value)}")
        return value

    def blocks(self, blocks: Any, pointer: str, limit: int) -> None:
        """Check a blocks array: its size, each block, and that block_ids are unique."""
        if not isinstance(blocks, list):
            self._add(pointer, "must be an array of blocks")
            return
        if len(blocks) > limit:
            self._add(pointer, f"must have at most {limit} items, got {len(blocks)}")
        seen_ids: set[str] = set()
        for index, block in enumerate(blocks):
            block_pointer = f"{pointer}/{index}"
            if not isinstance(block, Mapping):
                self._add(block_pointer, "must be an object")
                continue
            block_id = block.get("block_id")
            self._string(block_id, f"{block_pointer}/block_id", MAX_BLOCK_ID, required=False)
            if isinstance(block_id, str):
                if block_id in seen_ids:
                    self._add(f"{block_pointer}/block_id", f"duplicate block_id {block_id!r}")
                seen_ids.add(block_id)
            self.block(block, block_pointer)

    def block(self, block: Mapping[str, Any], pointer: str) -> None:
        """Check one block against the limits of its type."""
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            self._add(f"{pointer}/type", f"unsupported block type {kind!r}")
        elif kind == "section":
            if block.get("text") is None and block.get("fields") is None:
                self._add(pointer, "must provide text or fields")
            self._text(block.get("text"), f"{pointer}/text", MAX_SECTION_TEXT, required=False)
            if block.get("fields") is not None:
                fields = self._object_list(
                    block["fields"], f"{pointer}/fields", 1, MAX_SECTION_FIELDS
                )
                for i, field in enumerate(fields):
                    self._text(field, f"{pointer}/fields/{i}", MAX_FIELD_TEXT)
            if block.get("accessory") is not None:
                self.element(block["accessory"], f"{pointer}/accessory")
        elif kind == "header":
            self._text(block.get("text"), f"{pointer}/text", MAX_HEADER_TEXT, plain_only=True)
        elif kind == "context":
            elements = self._object_list(
                block.get("elements"), f"{pointer}/elements", 1, MAX_CONTEXT_ELEMENTS
            )
            for i, element in enumerate(elements):
                element_pointer = f"{pointer}/elements/{i}"
                if isinstance(element, Mapping) and element.get("type") == "image":
                    self.element(element, element_pointer)
                else:
                    self._text(element, element_pointer, MAX_SECTION_TEXT)
        elif kind == "actions":
            elements = self._object_list(
                block.get("elements"), f"{pointer}/elements", 1, MAX_ACTIONS_ELEMENTS
            )
            self._elements(elements, f"{pointer}/elements")
        elif kind == "image":
            self._image(block, pointer)
            self._text(block.get("title"), f"{pointer}/title", MAX_LABEL, required=False)
        elif kind == "input":
            self._text(block.get("label"), f"{pointer}/label", MAX_LABEL, plain_only=True)
            self._text(block.get("hint"), f"{pointer}/hint", MAX_LABEL, required=False)
            if block.get("element") is None:
                self._add(f"{pointer}/element", "missing required field")
            else:
                self.element(block["element"], f"{pointer}/element")

    def _elements(self, elements: list[Any], pointer: str) -> None:
        """Check interactive elements that share a block: action_ids must differ."""
        seen: set[str] = set()
        for i, element in enumerate(elements):
            self.element(element, f"{pointer}/{i}")
            action_id = element.get("action_id") if isinstance(element, Mapping) else None
            if isinstance(action_id, str):
                if action_id in seen:
                    self._add(f"{pointer}/{i}/action_id", f"duplicate action_id {action_id!r}")
                seen.add(action_id)

    def element(self, element: Any, pointer: str) -> None:
        """Check one block element (button, select, image, input...)."""
        if not isinstance(element, Mapping):
            self._add(pointer, "must be an object")
            return
        kind: Any = element.get("type")  # any JSON value until checked just below
        if kind not in ELEMENT_TYPES:
            self._add(f"{pointer}/type", f"unsupported element type {kind!r}")
            return
        if kind == "image":
            self._image(element, pointer)
            return
        self._string(
            element.get("action_id"), f"{pointer}/action_id", MAX_ACTION_ID, required=False
        )
        self._text(
            element.get("placeholder"), f"{pointer}/placeholder", MAX_PLACEHOLDER, required=False
        )
        if kind in ("button", "workflow_button"):
            self._text(element.get("text"), f"{pointer}/text", MAX_BUTTON_TEXT, plain_only=True)
            self._string(element.get("value"), f"{pointer}/value", MAX_BUTTON_VALUE, required=False)
            self._string(element.get("url"), f"{pointer}/url", MAX_URL, required=False)
            style = element.get("style")
            if style is not None and style not in ("primary", "danger"):
                self._add(f"{pointer}/style", f"must be 'primary' or 'danger', got {style!r}")
        max_options = ELEMENT_TYPES[kind]
        if max_options is not None and "option_groups" not in element:
            low = 2 if kind == "overflow" else 1
            options = self._object_list(
                element.get("options"), f"{pointer}/options", low, max_options
            )
            for i, option in enumerate(options):
                self._option(option, f"{pointer}/options/{i}")

    def _option(self, option: Any, pointer: str) -> None:
        if not isinstance(option, Mapping):
            self._add(pointer, "must be an object")
            return
        self._text(option.get("text"), f"{pointer}/text", MAX_OPTION_TEXT)
        self._string(option.get("value"), f"{pointer}/value", MAX_OPTION_VALUE)

    def _image(self, image: Mapping[str, Any], pointer: str) -> None:
        if image.get("image_url") is None and image.get("slack_file") is None:
            self._add(pointer, "must provide image_url or slack_file")
        self._string(image.get("image_url"), f"{pointer}/image_url", MAX_URL, required=False)
        self._string(image.get("alt_text"), f"{pointer}/alt_text", MAX_ALT_TEXT)

    def view(self, view: Any, pointer: str) -> None:
        """Check a modal or Home tab view: its type, title, buttons, metadata and blocks."""
        if not isinstance(view, Mapping):
            self._add(pointer, "must be an object")
            return
        kind = view.get("type")
        if kind not in ("modal", "home"):
            self._add(f"{pointer}/type", f"must be 'modal' or 'home', got {kind!r}")
            return
        if kind == "modal":
            self._text(view.get("title"), f"{pointer}/title", MAX_VIEW_TITLE, plain_only=True)
            for button in ("submit", "close"):
                self._text(
                    view.get(button),
                    f"{pointer}/{button}",
                    MAX_VIEW_TITLE,
                    plain_only=True,
                    required=False,
                )
            blocks = view.get("blocks")
            has_input = isinstance(blocks, list) and any(
                isinstance(b, Mapping) and b.get("type") == "input" for b in blocks
            )
            if has_input and view.get("submit") is None:
                self._add(f"{pointer}/submit", "required when blocks contain an input block")
        self._string(
            view.get("callback_id"), f"{pointer}/callback_id", MAX_CALLBACK_ID, required=False
        )
        self._string(
            view.get("private_metadata"),
            f"{pointer}/private_metadata",
            MAX_PRIVATE_METADATA,
            required=False,
        )
        self._string(
            view.get("external_id"), f"{pointer}/external_id", MAX_EXTERNAL_ID, required=False
        )
        self.blocks(view.get("blocks"), f"{pointer}/blocks", MAX_BLOCKS[kind])
