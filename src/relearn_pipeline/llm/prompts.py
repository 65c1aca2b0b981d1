"""Prompt templates kept in ``conf/base/prompts/*.yml``: a system and a user message with ``$fields``.

Each file holds ``system`` (optional) and ``user`` strings; ``$name`` / ``${name}`` placeholders are
filled per record (``string.Template`` syntax, so JSON braces in a prompt need no escaping).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from string import Template
from typing import Any


@dataclass(frozen=True)
class PromptTemplate:
    """One prompt file: its name, an optional system message and the user message."""

    name: str
    user: str
    system: str = ""

    def fields(self) -> set[str]:
        """Placeholder names used in the system and user messages."""
        names: set[str] = set()
        for text in (self.system, self.user):
            for match in Template.pattern.finditer(text):
                name = match.group("named") or match.group("braced")
                if name:
                    names.add(name)
        return names

    def render_text(self, **values: Any) -> str:
        """The user message alone with placeholders filled (for plain-text templates like fallbacks)."""
        return self._fill(self.user, values)

    def render(self, **values: Any) -> list[dict[str, str]]:
        """Chat messages with every placeholder filled; a missing value names the prompt file."""
        messages = []
        if self.system.strip():
            messages.append({"role": "system", "content": self._fill(self.system, values)})
        messages.append({"role": "user", "content": self._fill(self.user, values)})
        return messages

    def _fill(self, text: str, values: Mapping[str, Any]) -> str:
        try:
            return Template(text).substitute({k: str(v) for k, v in values.items()}).strip()
        except KeyError as exc:
            raise ValueError(
                f"conf/base/prompts/{self.name}.yml uses ${exc.args[0]}, which is not provided; "
                f"available: {', '.join(sorted(values))}"
            ) from None
        except ValueError as exc:
            raise ValueError(f"conf/base/prompts/{self.name}.yml: bad placeholder ({exc}); write $$ for a literal $") from None


def load_prompt_templates(
    partitions: Mapping[str, Any], required: tuple[str, ...] = ()
) -> dict[str, PromptTemplate]:
    """Templates from a partitioned dataset (name -> loader or dict), checking ``required`` names."""
    templates: dict[str, PromptTemplate] = {}
    for name, entry in partitions.items():
        content = entry() if isinstance(entry, Callable) else entry
        if not isinstance(content, Mapping) or not isinstance(content.get("user"), str):
            raise ValueError(
                f"conf/base/prompts/{name}.yml must be a mapping with a `user:` string "
                "(and optionally `system:`)"
            )
        templates[name] = PromptTemplate(
            name=name, user=content["user"], system=str(content.get("system") or "")
        )
    missing = [name for name in required if name not in templates]
    if missing:
        raise ValueError(
            f"conf/base/prompts/ lacks {', '.join(m + '.yml' for m in missing)}; "
            f"found: {', '.join(sorted(templates)) or 'nothing'}"
        )
    return templates
