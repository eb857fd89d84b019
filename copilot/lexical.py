"""The lexical ranker: BM25 over chunk texts, as a sparse matrix so a query costs a column slice."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
# Short English stopword list: the words that carry no topic.
STOPWORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "been", "being", "but", "by", "can", "could", "did", "do", "does", "doing", "for", "from", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves", "am", "im", "i'm", "ive", "i've", "dont", "don't", "cant", "can't", "get", "got", "please", "hi", "hello", "hey", "thanks", "thank", "also", "any", "anyone", "anything", "really", "still"]
)


def _stem(word: str) -> str:
    """A light suffix stripper: enough to match 'bulbs' with 'bulb' and 'pairing' with 'paired'."""
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith("ss"):
                return word
            return word[: len(word) - len(suffix)] + keep
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased, accent-folded, stemmed content words."""
    # "Wi-Fi", "e-mail" and "re-pair" match "wifi", "email" and "repair".
    folded = unicodedata.normalize("NFKD", re.sub(r"(?<=[^\W\d_])-(?=[^\W\d_])", "", text.lower()))
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    words = (w.replace("’", "'") for w in _WORD.findall(folded))
    return [_stem(w) for w in words if w not in STOPWORDS and len(w) > 1]


@dataclass
class BM25:
    """Okapi BM25 with precomputed per-document term weights."""

    ids: list[str]
    vocabulary: dict[str, int]
    weights: sparse.csc_matrix  # documents x terms
    idf: np.ndarray

    @classmethod
    def build(cls, ids: list[str], texts: list[str], k1: float = 1.2, b: float = 0.75) -> BM25:
        vocabulary: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        counts: list[int] = []
        lengths = np.zeros(len(texts), dtype=np.float32)
        for row, text in enumerate(texts):
            tokens = tokenize(text)
            lengths[row] = len(tokens)
            tf: dict[int, int] = {}
            for token in tokens:
                col = vocabulary.setdefault(token, len(vocabulary))
                tf[col] = tf.get(col, 0) + 1
            rows.extend([row] * len(tf))
            cols.extend(tf.keys())
            counts.extend(tf.values())
        n_docs = max(len(texts), 1)
        tf_matrix = sparse.csr_matrix(
            (np.asarray(counts, dtype=np.float32), (rows, cols)), shape=(len(texts), max(len(vocabulary), 1)))
        df = np.bincount(np.asarray(cols, dtype=np.int64), minlength=max(len(vocabulary), 1))
        idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        avg = float(lengths.mean()) if len(texts) else 1.0
        norm = k1 * (1 - b + b * lengths / max(avg, 1e-9))
        tf_coo = tf_matrix.tocoo()
        data = tf_coo.data * (k1 + 1) / (tf_coo.data + norm[tf_coo.row]) * idf[tf_coo.col]
        weights = sparse.csc_matrix((data, (tf_coo.row, tf_coo.col)), shape=tf_coo.shape)
        return cls(ids=list(ids), vocabulary=vocabulary, weights=weights, idf=idf)

    @property
    def row_of(self) -> dict[str, int]:
        """chunk id -> row, built once."""
        cached = self.__dict__.get("_row_of")
        if cached is None:
            cached = {cid: i for i, cid in enumerate(self.ids)}
            self.__dict__["_row_of"] = cached
        return cached

    def query_terms(self, query: str) -> list[int]:
        return sorted({self.vocabulary[t] for t in tokenize(query) if t in self.vocabulary})

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for a query."""
        terms = self.query_terms(query)
        if not terms or not self.ids:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self.weights[:, terms].sum(axis=1)).ravel()

    def coverage(self, query: str, rows: list[int]) -> np.ndarray:
        """Share of the query's idf mass that each given document contains (0..1)."""
        tokens = set(tokenize(query))
        if not tokens or not rows:
            return np.zeros(len(rows), dtype=np.float32)
        known = [self.vocabulary[t] for t in tokens if t in self.vocabulary]
        # Unknown query words count as missing with the highest idf: the corpus never mentions them.
        unknown_mass = (len(tokens) - len(known)) * (float(self.idf.max()) if len(self.idf) else 1.0)
        total = float(self.idf[known].sum()) + unknown_mass if known else unknown_mass
        if not known or total <= 0:
            return np.zeros(len(rows), dtype=np.float32)
        present = (self.weights[rows][:, known] > 0).toarray().astype(np.float32)
        return (present @ self.idf[known]) / total

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        terms = np.array(sorted(self.vocabulary, key=self.vocabulary.__getitem__), dtype=object)
        np.savez(tmp, ids=np.array(self.ids, dtype=object), terms=terms, idf=self.idf,
                 data=self.weights.data, indices=self.weights.indices, indptr=self.weights.indptr,
                 shape=np.array(self.weights.shape))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> BM25:
        with np.load(path, allow_pickle=True) as npz:
            weights = sparse.csc_matrix((npz["data"], npz["indices"], npz["indptr"]), shape=tuple(npz["shape"]))
            terms = list(npz["terms"])
            return cls(ids=list(npz["ids"]), vocabulary={t: i for i, t in enumerate(terms)}, weights=weights,
                       idf=npz["idf"])
