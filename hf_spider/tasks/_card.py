"""Read a dataset card (`README.md` with a YAML header) into the facts a task token uses."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hf_spider.errors import first_line

logger = logging.getLogger("hf_spider.tasks")

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.DOTALL)


@dataclass
class CardInfo:
    """What a dataset card says, per config: features, split sizes, categories, tags, prose."""

    data: dict[str, Any] = field(default_factory=dict)
    body: str = ""
    error: str | None = None  # why the YAML header could not be read, where it could not

    @property
    def task_categories(self) -> list[str]:
        return _as_list(self.data.get("task_categories"))

    @property
    def tags(self) -> list[str]:
        return _as_list(self.data.get("tags"))

    @property
    def pretty_name(self) -> str | None:
        name = self.data.get("pretty_name")
        return str(name) if name else None

    @property
    def description(self) -> str:
        """The first paragraph of prose in the card body (headings, tables and badges skipped)."""
        for block in re.split(r"\n\s*\n", self.body):
            lines = [ln.strip() for ln in block.strip().splitlines()]
            lines = [ln for ln in lines if ln and not ln.startswith(("#", "|", "![", "[!", "<", "```", "-"))]
            text = " ".join(lines).strip()
            if len(text) >= 20:
                return text[:1000]
        return ""

    def dataset_info(self, config: str | None = None) -> dict[str, Any]:
        """The `dataset_info` block of `config` (the card may hold one dict or a list per config)."""
        info = self.data.get("dataset_info")
        if isinstance(info, dict):
            return info
        if isinstance(info, list) and info:
            if config is not None:
                for item in info:
                    if isinstance(item, dict) and item.get("config_name") == config:
                        return item
            for item in info:
                if isinstance(item, dict) and item.get("config_name", "default") == "default":
                    return item
            return info[0] if isinstance(info[0], dict) else {}
        return {}

    def config_names(self) -> list[str]:
        names = [c.get("config_name") for c in _as_list(self.data.get("configs")) if isinstance(c, dict)]
        info = self.data.get("dataset_info")
        if isinstance(info, list):
            names += [i.get("config_name") for i in info if isinstance(i, dict)]
        return list(dict.fromkeys(n for n in names if n))

    def features(self, config: str | None = None):
        """`datasets.Features` declared by the card, or None."""
        raw = self.dataset_info(config).get("features")
        if not raw:
            return None
        from datasets import Features

        try:
            if isinstance(raw, list):
                return Features._from_yaml_list(raw)
            if isinstance(raw, dict):
                return Features.from_dict(raw)
        except Exception as exc:  # a malformed card should not stop a task from loading
            logger.warning("ignoring unreadable dataset_info.features in the card: %s", exc)
        return None

    def split_sizes(self, config: str | None = None) -> dict[str, int]:
        sizes = {}
        for split in _as_list(self.dataset_info(config).get("splits")):
            if isinstance(split, dict) and split.get("name") and split.get("num_examples") is not None:
                try:
                    sizes[str(split["name"])] = int(split["num_examples"])
                except (TypeError, ValueError):
                    continue
        return sizes


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def parse_card(text: str) -> CardInfo:
    match = _FRONT_MATTER.match(text.lstrip("\ufeff"))
    if not match:
        return CardInfo(data={}, body=text)
    try:
        data = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        return CardInfo(
            data={}, body=text[match.end() :], error=f"its YAML header is not valid ({first_line(exc)})"
        )
    if not isinstance(data, dict):
        return CardInfo(data={}, body=text[match.end() :], error="its YAML header is not a mapping")
    return CardInfo(data=data, body=text[match.end() :])


def read_card(path: str | Path) -> CardInfo:
    path = Path(path)
    if not path.is_file():
        return CardInfo()
    card = parse_card(path.read_text(encoding="utf-8", errors="replace"))
    if card.error:
        logger.warning("%s: %s", path, card.error)
    return card
