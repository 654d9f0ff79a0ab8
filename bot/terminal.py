"""What a CSM would see, rendered for a terminal (the demo's stand-in for Slack).

Pure functions from stored cards to rich renderables; the Slack renderer mirrors them in
Block Kit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.text import Text

from bot.render.text import change_label as change_text

BAND_STYLE = {"high": "bold red", "medium": "yellow", "low": "green"}


def render_card(card: Mapping[str, Any]) -> Panel:
    band = card["band"]
    title = Text.assemble(
        (card["account_name"], "bold"),
        "  ",
        (f"{card['risk']:.0%} {band}", BAND_STYLE.get(band, "")),
        f"  ({change_text(card.get('change'))})",
    )
    context = [f"{label} {text}" for label, text in card.get("context") or ()]
    lines = [Text(" · ".join([*context, f"owner {card['owner']}"]), style="dim")]
    lines += [Text(f"• {reason['text']}") for reason in card["reasons"]]
    if card.get("healthy"):
        lines.append(Text(f"• {card['healthy']['text']}", style="green"))
    action = card["action"]
    lines.append(
        Text.assemble(("→ ", "bold"), (action["action"], "bold"), f"  ({action['owner']})")
    )
    lines.append(Text(f"  why: {action['why']}", style="dim"))
    return Panel(Group(*lines), title=title, title_align="left")


def render_digest(
    title: str, freshness: str, cards: Sequence[Mapping[str, Any]], banner: str | None = None
) -> Group:
    """A digest: optional fallback banner, a freshness line, then one panel per account."""
    parts: list[Any] = []
    if banner:
        parts.append(Panel(Text(banner, style="bold yellow"), border_style="yellow"))
    parts.append(Text(title, style="bold underline"))
    parts.append(Text(freshness, style="dim"))
    if not cards:
        parts.append(Text("No accounts above the risk threshold this week. The bot is alive."))
    parts += [render_card(card) for card in cards]
    return Group(*parts)


def blocks_as_text(blocks: Sequence[Mapping[str, Any]]) -> str:
    """Block Kit as a terminal shows it: what the demo prints of a real Slack payload."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"# {block['text']['text']}")
        elif kind == "section":
            if "text" in block:
                lines.append(block["text"]["text"])
            lines += [field["text"].replace("\n", " ") for field in block.get("fields", [])]
            if "accessory" in block:
                lines.append(f"[{block['accessory']['text']['text']}]")
        elif kind == "context":
            lines.append("  ".join(element.get("text", "") for element in block["elements"]))
        elif kind == "actions":
            lines.append(" ".join(f"[{element['text']['text']}]" for element in block["elements"]))
        elif kind == "divider":
            lines.append("-" * 40)
    return "\n".join(lines)
