"""Hybrid retrieval: dense (Chroma) plus BM25, fused, filtered, and gated by a calibrated score floor."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from copilot.index import Index
from copilot.types import Passage, Retrieval

CANDIDATES = 40


@dataclass(frozen=True)
class Filters:
    """Metadata filters on retrieval."""

    kinds: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    official_only: bool = False
    exclude_kinds: tuple[str, ...] = field(default=())

    def where(self) -> dict[str, Any] | None:
        """The Chroma ``where`` clause for these filters."""
        clauses: list[dict[str, Any]] = []
        if self.kinds:
            clauses.append({"kind": {"$in": list(self.kinds)}})
        if self.exclude_kinds:
            clauses.append({"kind": {"$nin": list(self.exclude_kinds)}})
        if self.official_only:
            clauses.append({"official": True})
        for product in self.products:
            clauses.append({f"product:{product.lower()}": True})
        for tag in self.tags:
            clauses.append({f"tag:{tag.lower()}": True})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def accepts(self, meta: dict[str, Any]) -> bool:
        """The same filter, applied to metadata in Python (for lexical-only candidates)."""
        if self.kinds and meta.get("kind") not in self.kinds:
            return False
        if self.exclude_kinds and meta.get("kind") in self.exclude_kinds:
            return False
        if self.official_only and not meta.get("official"):
            return False
        if any(not meta.get(f"product:{p.lower()}") for p in self.products):
            return False
        return all(meta.get(f"tag:{t.lower()}") for t in self.tags)


@dataclass(frozen=True)
class Fusion:
    """How the dense and lexical evidence combine: into a rank score and into a grounding confidence.

    Dense score of an entry: ``0.25 * question cosine + 0.75 * best body-chunk cosine``. The body chunk holds
    the question and its answer, so it carries most of the meaning; the question vector alone adds a little
    for paraphrases and misleads when one example question stands for many (BENCHMARKS.md, "Retrieval
    fusion": at 0.5 the hybrid lost to its own dense half on BANKING77-style entries, at 0.25 it does not).
    Rank: ``dense_weight * dense + lexical_weight * 0.15 * bm25 / max_bm25`` over the candidate pool.
    Confidence (what the floor applies to): ``0.75 * cosine + 0.25 * coverage`` where coverage is the share
    of the query's idf mass found in the passage; both parts are absolute, so one floor works across
    knowledge bases.
    """

    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    lexical_scale: float = 0.15
    confidence_dense: float = 0.75
    title_weight: float = 0.25

    def dense(self, title_cos: float | None, body_cos: float | None) -> float:
        """An entry's dense score from its question-only cosine and its best body-chunk cosine."""
        if title_cos is None:
            return 0.0 if body_cos is None else float(body_cos)
        if body_cos is None:
            return float(title_cos)
        return self.title_weight * title_cos + (1 - self.title_weight) * body_cos

    def rank(self, cosine: np.ndarray, bm25: np.ndarray) -> np.ndarray:
        top = float(bm25.max()) if bm25.size else 0.0
        lex = bm25 / top if top > 0 else np.zeros_like(bm25)
        return self.dense_weight * cosine + self.lexical_weight * self.lexical_scale * lex

    def confidence(self, cosine: np.ndarray, coverage: np.ndarray) -> np.ndarray:
        return self.confidence_dense * cosine + (1 - self.confidence_dense) * coverage


class Retriever:
    """Searches the index; ``mode`` is ``hybrid`` (default), ``dense``, ``lexical`` or ``single``.

    ``dense`` is the fusion's own dense half (question vector and best body chunk); ``single`` ranks by the
    body chunk alone, which is what one MiniLM vector per entry gives: the plain baseline the fusion must beat.
    """

    def __init__(self, index: Index, embedder: Embeddings, *, top_k: int = 5, score_floor: float = 0.5,
                 fusion: Fusion | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.top_k = top_k
        self.score_floor = score_floor
        self.fusion = fusion or Fusion()

    def _query_vector(self, query: str) -> np.ndarray:
        vec = np.asarray(self.embedder.embed_query(query), dtype=np.float32)
        return vec / max(float(np.linalg.norm(vec)), 1e-12)

    def search(self, query: str, *, k: int | None = None, filters: Filters | None = None,
               mode: str = "hybrid") -> Retrieval:
        """The top ``k`` entries for a query, best first, one passage per entry."""
        start = time.perf_counter()
        k = k or self.top_k
        filters = filters or Filters()
        if not query.strip() or self.index.count() == 0:
            return Retrieval(query=query, passages=(), grounded=False,
                             latency_ms=(time.perf_counter() - start) * 1000)
        vector = self._query_vector(query)
        lexical = self.index.lexical()
        bm25_all = lexical.scores(query)
        chunks = self._candidates(query, vector, bm25_all, max(CANDIDATES, 4 * k), filters, mode)
        entries = _by_entry(chunks)
        if not entries:
            return Retrieval(query=query, passages=(), grounded=False,
                             latency_ms=(time.perf_counter() - start) * 1000)
        self._complete(entries, vector)
        row_of = lexical.row_of
        ids = list(entries)
        body_ids = [entries[e]["body"] for e in ids]
        rows = [row_of.get(cid, -1) for cid in body_ids]
        bm25 = np.array([bm25_all[r] if r >= 0 else 0.0 for r in rows], dtype=np.float32)
        cosine = np.array([entries[e]["cos"] for e in ids], dtype=np.float32)
        coverage = np.zeros(len(ids), dtype=np.float32)
        known = [i for i, r in enumerate(rows) if r >= 0]
        if known:
            coverage[known] = lexical.coverage(query, [rows[i] for i in known])
        single = np.array([entries[e].get("body_cos") or 0.0 for e in ids], dtype=np.float32)
        rank = {"dense": cosine, "lexical": bm25, "single": single}.get(mode)
        if rank is None:
            rank = self.fusion.rank(cosine, bm25)
        confidence = self.fusion.confidence(cosine, coverage)
        passages = []
        for i in np.argsort(-rank, kind="stable")[:k]:
            if mode == "lexical" and bm25[i] <= 0:
                break
            info = entries[ids[i]]
            meta = info["meta"]
            passages.append(Passage(
                id=ids[i], chunk_id=info["body"], title=str(meta.get("title", "")), text=info["doc"],
                kind=str(meta.get("kind", "faq")), official=bool(meta.get("official", True)),
                score=round(float(confidence[i]), 4), dense_score=round(float(cosine[i]), 4),
                lexical_score=round(float(bm25[i]), 4), url=meta.get("url") or None,
                tags=tuple(t for t in str(meta.get("tags", "")).split("|") if t),
                products=tuple(p for p in str(meta.get("products", "")).split("|") if p),
            ))
        grounded = bool(passages) and max(p.score for p in passages) >= self.score_floor
        return Retrieval(query=query, passages=tuple(passages), grounded=grounded,
                         latency_ms=(time.perf_counter() - start) * 1000)

    def _candidates(self, query: str, vector: np.ndarray, bm25_all: np.ndarray, pool: int, filters: Filters,
                    mode: str) -> dict[str, dict[str, Any]]:
        """Candidate chunks (id -> doc, meta, cosine) from the dense and the lexical side."""
        cands: dict[str, dict[str, Any]] = {}
        if mode in ("hybrid", "dense", "single"):
            dense = self.index.dense(vector, pool, filters.where())
            for cid, doc, meta, sim in zip(dense["ids"], dense["documents"], dense["metadatas"],
                                           dense["similarities"], strict=False):
                cands[cid] = {"doc": doc, "meta": meta or {}, "cos": sim}
        if mode in ("hybrid", "lexical") and bm25_all.size:
            ids = self.index.lexical().ids
            top = np.argsort(-bm25_all)[:pool]
            wanted = [ids[i] for i in top if bm25_all[i] > 0 and ids[i] not in cands]
            for cid, info in self._fetch(wanted, vector).items():
                if filters.accepts(info["meta"]):
                    cands[cid] = info
        return cands

    def _fetch(self, chunk_ids: list[str], vector: np.ndarray) -> dict[str, dict[str, Any]]:
        got = self.index.fetch(chunk_ids)
        out = {}
        for cid, doc, meta, emb in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"],
                                       strict=False):
            emb_vec = np.asarray(emb, dtype=np.float32)
            cos = float(emb_vec @ vector / max(float(np.linalg.norm(emb_vec)), 1e-12))
            out[cid] = {"doc": doc, "meta": meta or {}, "cos": cos}
        return out

    def _complete(self, entries: dict[str, dict[str, Any]], vector: np.ndarray) -> None:
        """Fetch the missing half (question vector or body chunk) of each candidate entry, then score it.

        An entry's dense score is the mean of its question-only cosine and its best body-chunk cosine.
        """
        missing = []
        for entry_id, info in entries.items():
            if info.get("title_cos") is None:
                missing.append(f"{entry_id}#t")
            if info.get("body") is None:
                missing.append(f"{entry_id}#0")
        fetched = self._fetch(missing, vector) if missing else {}
        for entry_id, info in entries.items():
            title = fetched.get(f"{entry_id}#t")
            if info.get("title_cos") is None and title is not None:
                info["title_cos"] = title["cos"]
                info.setdefault("meta", title["meta"])
            body = fetched.get(f"{entry_id}#0")
            if info.get("body") is None and body is not None:
                info.update(body=f"{entry_id}#0", doc=body["doc"], body_cos=body["cos"], meta=body["meta"])
            info["cos"] = self.fusion.dense(info.get("title_cos"), info.get("body_cos"))
            if info.get("body") is None:  # an entry indexed without body chunks: show its question
                info.update(body=f"{entry_id}#t", doc=info.get("title_doc", ""))

    def grounded_passages(self, retrieval: Retrieval) -> list[Passage]:
        """The passages that clear the floor (what a draft may cite)."""
        return [p for p in retrieval.passages if p.score >= self.score_floor]


def _by_entry(chunks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Group candidate chunks by entry: the question vector's cosine and the best body chunk."""
    entries: dict[str, dict[str, Any]] = {}
    for cid, info in chunks.items():
        meta = info["meta"]
        entry_id = str(meta.get("entry_id") or cid.rsplit("#", 1)[0])
        slot = entries.setdefault(entry_id, {"meta": meta})
        if meta.get("role") == "title" or cid.endswith("#t"):
            slot["title_cos"] = info["cos"]
            slot["title_doc"] = info["doc"]
        elif slot.get("body_cos") is None or info["cos"] > slot["body_cos"]:
            slot.update(body=cid, doc=info["doc"], body_cos=info["cos"], meta=meta)
    return entries


def ndcg(ranked: list[str], relevant: set[str], k: int) -> float:
    """Normalised discounted cumulative gain at k with binary relevance."""
    gain = sum(1.0 / math.log2(i + 2) for i, rid in enumerate(ranked[:k]) if rid in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return gain / ideal if ideal else 0.0
