"""Prompt templates: every prompt is a Jinja2 file under ``prompts/``, rendered with StrictUndefined."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

from copilot.errors import ConfigError

DEFAULT_PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


@dataclass(frozen=True)
class Rendered:
    """A rendered template with its name and the hash of its source."""

    text: str
    template: str
    template_hash: str


class Prompts:
    """One Jinja2 environment over a prompts folder."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or DEFAULT_PROMPTS_DIR)
        if not self.root.is_dir():
            raise ConfigError(f"prompts folder {self.root} not found: set COPILOT_PROMPTS_DIR or reinstall")
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.root)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.env.filters["fence"] = _fence

    def source_hash(self, name: str) -> str:
        """SHA-256 (first 12 hex) of a template's source file."""
        path = self.root / name
        if not path.is_file():
            raise ConfigError(f"prompt template {name!r} not found under {self.root}")
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    def render(self, name: str, /, **variables: object) -> Rendered:
        """Render a template; a missing variable is an error naming template and variable."""
        try:
            template = self.env.get_template(name)
            text = template.render(**variables)
        except jinja2.TemplateNotFound as exc:
            raise ConfigError(f"prompt template {name!r} not found under {self.root}") from exc
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"prompt template {name!r}: {exc.message}") from exc
        return Rendered(text=text.strip(), template=name, template_hash=self.source_hash(name))


def _fence(text: str) -> str:
    """Neutralise tag-like fences inside untrusted text so it cannot close its own data block."""
    return str(text).replace("</", "< /").replace("<passage", "< passage").replace("<message", "< message")


@lru_cache(maxsize=4)
def load_prompts(root: str | None = None) -> Prompts:
    """A cached prompts environment for a folder."""
    return Prompts(Path(root) if root else None)
