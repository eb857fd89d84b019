"""The index: chunks in Chroma (embedded on disk, or a server by URL) plus a BM25 lexical index on disk."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from copilot.config import Settings
from copilot.errors import ConfigError, ProviderError
from copilot.knowledge import chunk_entries, read_knowledge
from copilot.lexical import BM25
from copilot.models.embeddings import as_matrix
from copilot.types import Chunk

Progress = Callable[[int, int], None]
_BATCH = 256
COUNT_TTL_S = 5.0


@dataclass(frozen=True)
class IngestReport:
    """What an ingest changed."""

    entries: int
    chunks: int
    added: int
    changed: int
    removed: int
    unchanged: int
    seconds: float
    embed_seconds: float
    merged: int = 0  # table rows that repeated another entry's question and answer
    renamed: int = 0  # table rows that repeated an id with another answer, kept under a new id
    duplicates: tuple[str, ...] = ()  # one line per merged or renamed row, naming file and line

    @property
    def entries_per_s(self) -> float:
        return self.entries / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "duplicates": list(self.duplicates), "entries_per_s": round(self.entries_per_s, 1)}

    def duplicates_summary(self, shown: int = 5) -> str:
        """One paragraph for people: counts, then the first few rows (empty when there were none)."""
        if not self.duplicates:
            return ""
        lines = [(f"{len(self.duplicates)} repeated FAQ rows: {self.merged} merged (same answer), {self.renamed} "
                 f"kept under a new id (another answer; check which one is current):")]
        lines += [f"  {line}" for line in self.duplicates[:shown]]
        if len(self.duplicates) > shown:
            lines.append(f"  ... and {len(self.duplicates) - shown} more (`copilot ingest --json` lists all)")
        return "\n".join(lines)


def _client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        from urllib.parse import urlparse

        url = urlparse(settings.chroma_url)
        if not url.hostname:
            raise ConfigError(f"COPILOT_CHROMA_URL {settings.chroma_url!r} is not a URL like http://host:8000")
        try:
            return chromadb.HttpClient(host=url.hostname, port=url.port or 8000, ssl=url.scheme == "https",
                                       settings=chroma_settings)
        except Exception as exc:  # chromadb raises plain exceptions for connection failures
            raise ProviderError(f"cannot reach the Chroma server at {settings.chroma_url}: {exc}") from exc
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.index_dir / "chroma"), settings=chroma_settings)


class Index:
    """Chunks with their embeddings in a Chroma collection, and the matching BM25 index."""

    def __init__(self, settings: Settings, embedder: Embeddings, *, embedder_name: str = "") -> None:
        self.settings = settings
        self.embedder = embedder
        self.embedder_name = embedder_name or type(embedder).__name__
        self._client = _client(settings)
        # The embedder's name is part of the collection name, so switching models never mixes vectors.
        suffix = hashlib.sha1(self.embedder_name.encode()).hexdigest()[:8]
        self.collection_name = f"{settings.collection}-{suffix}"
        self.collection = self._open(self.collection_name, "the knowledge index",
                                     {"hnsw:space": "cosine", "embedder": self.embedder_name})
        self._count: tuple[int, float] | None = None
        self._lexical: BM25 | None = None
        self._lexical_stamp: str | None = None

    def _open(self, name: str, what: str, metadata: dict[str, Any]) -> Any:
        try:
            return self._client.get_or_create_collection(name, metadata=metadata, embedding_function=None)
        except Exception as exc:  # chromadb raises plain exceptions
            raise ProviderError(f"Chroma failed to open {what} ({name}): {exc}") from exc

    def side_collection(self, prefix: str) -> Any:
        """Another cosine collection in the same Chroma store for this embedder (``{prefix}-{embedder hash}``),
        e.g. the approved replies used as tone examples."""
        suffix = hashlib.sha1(self.embedder_name.encode()).hexdigest()[:8]
        return self._open(f"{prefix}-{suffix}", prefix, {"hnsw:space": "cosine"})

    # -- paths -----------------------------------------------------------------------------
    @property
    def _lexical_path(self) -> Path:
        return self.settings.index_dir / f"{self.collection_name}.bm25.npz"

    @property
    def _stamp_path(self) -> Path:
        return self.settings.index_dir / f"{self.collection_name}.stamp.json"

    # -- ingest ----------------------------------------------------------------------------
    def stored_hashes(self) -> dict[str, str]:
        """chunk id -> content hash of everything in the collection."""
        out: dict[str, str] = {}
        total = self.collection.count()
        for offset in range(0, total, 5000):
            got = self.collection.get(include=["metadatas"], limit=5000, offset=offset)
            for chunk_id, meta in zip(got["ids"], got["metadatas"] or [], strict=False):
                out[chunk_id] = str((meta or {}).get("hash", ""))
        return out

    def sync(self, chunks: list[Chunk], progress: Progress | None = None) -> IngestReport:
        """Make the collection hold exactly these chunks: embed new or changed ones, delete the rest."""
        start = time.perf_counter()
        stored = self.stored_hashes()
        wanted = {c.id: c for c in chunks}
        todo = [c for c in chunks if stored.get(c.id) != c.hash]
        removed = [cid for cid in stored if cid not in wanted]
        added = sum(1 for c in todo if c.id not in stored)
        embed_seconds = 0.0
        done = 0
        if progress:
            progress(0, len(todo))
        for offset in range(0, len(todo), _BATCH):
            batch = todo[offset : offset + _BATCH]
            t0 = time.perf_counter()
            vectors = as_matrix(self.embedder, [c.text for c in batch])
            embed_seconds += time.perf_counter() - t0
            try:
                self.collection.upsert(
                    ids=[c.id for c in batch], embeddings=vectors, documents=[c.text for c in batch],
                    metadatas=[c.metadata for c in batch],
                )
            except Exception as exc:
                raise ProviderError(f"Chroma failed to store chunks: {exc}") from exc
            done += len(batch)
            if progress:
                progress(done, len(todo))
        for offset in range(0, len(removed), 5000):
            self.collection.delete(ids=removed[offset : offset + 5000])
        self._count = None
        if todo or removed or not self._lexical_path.exists():
            self._rebuild_lexical(sorted((c for c in chunks if not is_title(c.id)), key=lambda c: c.id))
        entries = len({c.entry_id for c in chunks})
        return IngestReport(
            entries=entries, chunks=len(chunks), added=added, changed=len(todo) - added, removed=len(removed),
            unchanged=len(chunks) - len(todo), seconds=time.perf_counter() - start, embed_seconds=embed_seconds,
        )

    def _fingerprint(self, ids: list[str]) -> str:
        return hashlib.sha1("\n".join(ids).encode()).hexdigest()

    def _rebuild_lexical(self, chunks: list[Chunk]) -> None:
        lexical = BM25.build([c.id for c in chunks], [c.text for c in chunks])
        lexical.save(self._lexical_path)
        stamp = {"count": self.collection.count(), "fingerprint": self._fingerprint(lexical.ids)}
        self._stamp_path.write_text(json.dumps(stamp))
        self._lexical, self._lexical_stamp = lexical, stamp["fingerprint"]

    # -- query side ------------------------------------------------------------------------
    def lexical(self) -> BM25:
        """The BM25 index, loaded once; rebuilt from the collection if missing or stale."""
        if self._lexical is not None:
            return self._lexical
        if self._lexical_path.exists() and self._stamp_path.exists():
            stamp = json.loads(self._stamp_path.read_text())
            if stamp.get("count") == self.collection.count():
                self._lexical = BM25.load(self._lexical_path)
                return self._lexical
        # A shared Chroma server filled elsewhere: rebuild the lexical side from its documents.
        ids, texts = [], []
        total = self.collection.count()
        for offset in range(0, total, 5000):
            got = self.collection.get(include=["documents"], limit=5000, offset=offset)
            for cid, doc in zip(got["ids"], got["documents"] or [], strict=False):
                if not is_title(cid):
                    ids.append(cid)
                    texts.append(doc)
        order = np.argsort(ids)
        chunks = [Chunk(id=ids[i], entry_id=ids[i].split("#")[0], text=texts[i], hash="") for i in order]
        self._rebuild_lexical(chunks)
        assert self._lexical is not None
        return self._lexical

    def count(self) -> int:
        """Chunks in the collection; cached for a few seconds (it costs a round trip at 100k chunks)."""
        now = time.monotonic()
        if self._count is None or now - self._count[1] > COUNT_TTL_S:
            self._count = (int(self.collection.count()), now)
        return self._count[0]


    def dense(self, vector: np.ndarray, n: int, where: dict[str, Any] | None) -> dict[str, Any]:
        """Nearest chunks by cosine similarity."""
        n = max(1, min(n, self.count()))
        try:
            res = self.collection.query(query_embeddings=[vector.tolist()], n_results=n, where=where or None,
                                        include=["documents", "metadatas", "distances"])
        except Exception as exc:
            raise ProviderError(f"Chroma query failed: {exc}") from exc
        return {"ids": res["ids"][0], "documents": res["documents"][0], "metadatas": res["metadatas"][0],
                "similarities": [1.0 - float(d) for d in res["distances"][0]]}

    def fetch(self, ids: list[str]) -> dict[str, Any]:
        """Documents, metadata and embeddings of given chunks."""
        if not ids:
            return {"ids": [], "documents": [], "metadatas": [], "embeddings": []}
        res = self.collection.get(ids=ids, include=["documents", "metadatas", "embeddings"])
        return {"ids": res["ids"], "documents": res["documents"], "metadatas": res["metadatas"],
                "embeddings": res["embeddings"]}


def is_title(chunk_id: str) -> bool:
    """Whether a chunk id names the question-only vector of an entry."""
    return chunk_id.endswith("#t")


def ingest(settings: Settings, index: Index, kb_dir: Path | None = None,
           progress: Progress | None = None) -> IngestReport:
    """Validate the whole knowledge base first (nothing half-indexed), then sync the index."""
    knowledge = read_knowledge(kb_dir or settings.kb_dir)
    report = index.sync(chunk_entries(knowledge.entries), progress=progress)
    return replace(report, merged=knowledge.merged, renamed=knowledge.renamed,
                   duplicates=tuple(d.message() for d in knowledge.duplicates))
