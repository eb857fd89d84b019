"""Prompt templates: every prompt is a Jinja2 file under ``prompts/``, rendered with StrictUndefined."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jinja2

from copilot.errors import ConfigError

DEFAULT_PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
RECENT_RENDERS = 64  # renders an environment keeps, so a fake chat model can read its prompt's variables


@dataclass(frozen=True)
class Rendered:
    """A rendered template with its name, the hash of its source and the variables it was given."""

    text: str
    template: str
    template_hash: str
    variables: Mapping[str, object] = field(default_factory=dict, compare=False, repr=False)


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
        self._recent: OrderedDict[str, Rendered] = OrderedDict()
        self._recent_lock = threading.Lock()

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
        rendered = Rendered(text=text.strip(), template=name, template_hash=self.source_hash(name),
                            variables=dict(variables))
        with self._recent_lock:
            self._recent[rendered.text] = rendered
            self._recent.move_to_end(rendered.text)
            while len(self._recent) > RECENT_RENDERS:
                self._recent.popitem(last=False)
        return rendered

    def recent(self, text: str) -> Rendered | None:
        """The latest of the last ``RECENT_RENDERS`` renders whose text is exactly ``text``, if any.

        A test or baseline chat model reads the data of its prompt here (the passages, the limit, the
        labels) instead of parsing the prompt's wording, so rewording a template does not change its answers.
        """
        with self._recent_lock:
            return self._recent.get(text)


def _fence(text: str) -> str:
    """Neutralise tag-like fences inside untrusted text so it cannot close its own data block."""
    return str(text).replace("</", "< /").replace("<passage", "< passage").replace("<message", "< message")


def load_prompts(root: str | None = None) -> Prompts:
    """The prompts environment of a folder (the shipped one by default): one per folder, however it is named."""
    return _prompts_of(str(Path(root or DEFAULT_PROMPTS_DIR).resolve()))


@lru_cache(maxsize=4)
def _prompts_of(root: str) -> Prompts:
    return Prompts(Path(root))
