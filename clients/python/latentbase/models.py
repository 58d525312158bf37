"""Results of the API as dataclasses (snake_case fields from the API's camelCase JSON), with ``.to_pandas()`` where a table fits."""
from __future__ import annotations

import dataclasses
import keyword
import re
import sys
import typing
from typing import Any, Dict, List, Optional, Type, TypeVar

T = TypeVar("T")

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    """``frequencyA`` -> ``frequency_a``, ``pAGivenB`` -> ``p_a_given_b``: the API's names in Python's style."""
    return _CAMEL.sub("_", name).lower()


def _pandas():
    try:
        import pandas
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("to_pandas() needs pandas: pip install 'latentbase[pandas]' (or apt install python3-pandas)") from None
    return pandas


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union:  # Optional[X]
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value) if len(inner) == 1 else value
    if origin in (list, List) and args and dataclasses.is_dataclass(args[0]):
        return [from_json(args[0], v) for v in value]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_json(hint, value)
    return value


def from_json(cls: Type[T], data: Dict[str, Any]) -> T:
    """Build ``cls`` from an API object: known keys become fields, the rest stays in ``extra``; ``raw`` keeps the JSON."""
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: Dict[str, Any] = {}
    extra: Dict[str, Any] = {}
    for key, value in data.items():
        name = snake(key)
        # A key that is a Python keyword ("from") is the field spelled with a trailing underscore.
        if keyword.iskeyword(name):
            name += "_"
        if name in names and name not in ("raw", "extra"):
            kwargs[name] = _convert(hints[name], value)
        else:
            extra[key] = value
    if "extra" in names:
        kwargs["extra"] = extra
    if "raw" in names:
        kwargs["raw"] = data
    return cls(**kwargs)  # type: ignore[call-arg]


def _meta():
    """Fields every model carries: what the API sent beyond the typed fields, and the whole JSON."""
    return (
        dataclasses.field(default_factory=dict, repr=False),
        dataclasses.field(default_factory=dict, repr=False, compare=False),
    )


@dataclasses.dataclass
class Encoder:
    id: str
    fingerprint: str
    hook_name: str
    d_in: int
    d_sae: int
    architecture: str
    max_tokens: int
    labelled: int
    description: Optional[str] = None
    #: changes when the encoder's labels are re-imported (the fingerprint covers only what changes latent values)
    labels_version: Optional[str] = None
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]


@dataclasses.dataclass
class Upload:
    id: str
    url: str
    bytes: int
    filename: Optional[str] = None
    content_type: Optional[str] = None
    created_at: Optional[str] = None
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]


@dataclasses.dataclass
class Dataset:
    id: str
    name: str
    status: str
    encoder: str
    created_at: str
    updated_at: str
    progress: Dict[str, Any] = dataclasses.field(default_factory=dict)
    pooling: Dict[str, Any] = dataclasses.field(default_factory=dict)
    source: Dict[str, Any] = dataclasses.field(default_factory=dict)
    stats: Optional[Dict[str, Any]] = None
    error: Optional[Dict[str, Any]] = None
    last_attempt_error: Optional[str] = None
    webhook: Optional[Dict[str, Any]] = None
    attempts: int = 0
    webhook_secret: Optional[str] = None
    """Returned once, by create, when the server generated the secret."""
    version: Optional[int] = None
    """The latest committed version (``ds_1@3`` reads version 3); ``versions`` has the rows each added."""
    versions: Optional[List[Dict[str, Any]]] = None
    append: Optional[Dict[str, Any]] = None
    """The batch being appended (``version``, ``status``), or the last one that failed with its ``error``."""
    watch: Optional[Dict[str, Any]] = None
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]

    @property
    def fraction(self) -> Optional[float]:
        """Share of documents encoded, when the total is known."""
        docs = self.progress.get("documents") or {}
        total = docs.get("total")
        return None if not total else min(1.0, docs.get("done", 0) / total)


@dataclasses.dataclass
class DocumentLatent:
    latent: int
    value: float
    position: int
    label: Optional[str] = None
    label_source: Optional[str] = None
    #: share of the dataset's documents where the latent is present
    frequency: Optional[float] = None
    #: what an unlabelled latent fires on in the dataset's top examples: token, count, examples, window
    peak: Optional[Dict[str, Any]] = None


@dataclasses.dataclass
class Document:
    dataset: str
    row: int
    id: str
    text: str
    token_count: int
    truncated: bool
    metadata: Dict[str, Any] = dataclasses.field(default_factory=dict)
    latents: List[DocumentLatent] = dataclasses.field(default_factory=list)
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]

    def to_pandas(self):
        """The document's pooled latents, strongest first: latent, value, position, label, its source, the peak token of
        an unlabelled one, and the share of the dataset's documents that have the latent."""
        pd = _pandas()
        rows = [{"latent": l.latent, "value": l.value, "position": l.position, "label": l.label,
                 "label_source": l.label_source, "peak_token": l.peak["token"] if l.peak else None,
                 "frequency": l.frequency} for l in self.latents]
        return pd.DataFrame(rows, columns=["latent", "value", "position", "label", "label_source", "peak_token", "frequency"])


@dataclasses.dataclass
class FacetValue:
    value: Any
    documents: int
    mean_tokens: float
    #: the slice of these documents in text form, for ``a_where`` / ``b_where`` / ``where``
    where: str


@dataclasses.dataclass
class FacetField:
    field: str
    values: List[FacetValue] = dataclasses.field(default_factory=list)
    #: documents without the key
    missing: int = 0


@dataclasses.dataclass
class Facets:
    """A dataset's few-valued metadata keys with each value's documents: a diff of a value's ``where`` is added up from stored counts."""
    dataset: str
    documents: int
    #: False: the dataset was encoded before facets were written (slices on metadata still work)
    stored: bool
    fields: List[FacetField] = dataclasses.field(default_factory=list)
    #: metadata fields that are not facets (too many values, or not scalars)
    other: List[str] = dataclasses.field(default_factory=list)
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]

    def to_pandas(self):
        """One row per (field, value): documents, mean_tokens and the slice selecting them."""
        pd = _pandas()
        rows = [{"field": f.field, "value": v.value, "documents": v.documents, "mean_tokens": v.mean_tokens, "where": v.where}
                for f in self.fields for v in f.values]
        return pd.DataFrame(rows, columns=["field", "value", "documents", "mean_tokens", "where"])


@dataclasses.dataclass
class SharedLatent:
    latent: int
    share: float
    href: str
    label: Optional[str] = None
    label_source: Optional[str] = None
    label_score: Optional[Dict[str, Any]] = None
    peak: Optional[Dict[str, Any]] = None


@dataclasses.dataclass
class SimilarDocument:
    row: int
    id: str
    score: float
    snippet: str
    shared: List[SharedLatent] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class SimilarDocuments:
    dataset: str
    row: int
    id: str
    encoder: str
    similarity: str
    latents: int
    candidates: int
    results: List[SimilarDocument] = dataclasses.field(default_factory=list)
    #: the slice whose documents were candidates (canonical text), absent for the whole dataset
    where: Optional[str] = None
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]

    @property
    def in_dataset(self) -> str:
        """The dataset searched (the API's ``in``, a Python keyword): ``dataset`` unless another was named."""
        return self.extra.get("in", self.dataset)

    def to_pandas(self):
        """One row per similar document: row, id, score, its top shared latent (and label) and the snippet."""
        pd = _pandas()
        cols = ["row", "id", "score", "top_shared_latent", "top_shared_label", "snippet"]
        rows = [{"row": r.row, "id": r.id, "score": r.score,
                 "top_shared_latent": r.shared[0].latent if r.shared else None,
                 "top_shared_label": r.shared[0].label if r.shared else None, "snippet": r.snippet} for r in self.results]
        return pd.DataFrame(rows, columns=cols)


@dataclasses.dataclass
class SimilarToText:
    dataset: str
    text: str
    encoder: str
    similarity: str
    latents: int
    candidates: int
    results: List[SimilarDocument] = dataclasses.field(default_factory=list)
    #: the slice whose documents were candidates (canonical text), absent for the whole dataset
    where: Optional[str] = None
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]

    def to_pandas(self):
        """One row per similar document: row, id, score, its top shared latent (and label) and the snippet."""
        return SimilarDocuments.to_pandas(self)  # type: ignore[arg-type]


@dataclasses.dataclass
class DocumentTokenLatent:
    latent: int
    label: Optional[str]
    #: the largest activation over the pooled tokens (0: the latent does not fire in the document)
    max: float
    #: the token where it is largest (the first such), -1 when it does not fire
    position: int
    #: one per token of the document's ``tokens``; 0 where a token is not pooled
    activations: List[float] = dataclasses.field(default_factory=list)


class _TokensFrame:
    """An answer with ``tokens``, ``pooled`` and per-token ``latents[i].activations``."""

    def to_pandas(self):
        """One row per token: its index, text and pooled flag, then one column per latent (named by its id) with the
        latent's activation there."""
        pd = _pandas()
        frame = pd.DataFrame({"token_index": range(len(self.tokens)), "token": self.tokens, "pooled": self.pooled})
        for l in self.latents:
            frame[l.latent] = l.activations
        return frame


@dataclasses.dataclass
class DocumentActivations(_TokensFrame):
    """Where chosen latents fire in one document, token by token (the document re-encoded as its dataset was)."""
    dataset: str
    row: int
    id: str
    encoder: str
    truncated: bool
    #: the document's tokens as the reader read them (BOS first when the reader has one)
    tokens: List[str] = dataclasses.field(default_factory=list)
    #: 1 where a token counts for pooling (0: BOS, special tokens, unpooled chat roles, outlier tokens)
    pooled: List[int] = dataclasses.field(default_factory=list)
    latents: List[DocumentTokenLatent] = dataclasses.field(default_factory=list)
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]


@dataclasses.dataclass
class TextTokenLatent(DocumentTokenLatent):
    #: share of the dataset's documents where the latent is present (one in every document says little)
    frequency: float = 0.0
    #: on a latent without a label: what it fires on in the dataset's top examples ({"token", "count", "examples"})
    peak: Optional[Dict[str, Any]] = None


@dataclasses.dataclass
class TextActivations(_TokensFrame):
    """A text encoded as a dataset's documents were: its strongest latents (or those asked) and where each fires."""
    dataset: str
    encoder: str
    text: str
    truncated: bool
    #: latents that fire on at least one pooled token
    present: int
    tokens: List[str] = dataclasses.field(default_factory=list)
    pooled: List[int] = dataclasses.field(default_factory=list)
    latents: List[TextTokenLatent] = dataclasses.field(default_factory=list)
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]

    def latents_to_pandas(self):
        """One row per latent, strongest first: label, max, the token of this text it peaks on (``token``), its frequency
        in the dataset and, without a label, what it peaks on in the dataset's top examples (``peak_token``)."""
        pd = _pandas()
        rows = [{"latent": l.latent, "label": l.label, "max": l.max, "position": l.position,
                 "token": self.tokens[l.position] if l.position >= 0 else None, "frequency": l.frequency,
                 "peak_token": l.peak["token"] if l.peak else None} for l in self.latents]
        return pd.DataFrame(rows, columns=["latent", "label", "max", "position", "token", "frequency", "peak_token"])


class DocumentList(List[Document]):
    """Documents read together; ``to_pandas()`` gives one row per (document, latent)."""

    def to_pandas(self):
        pd = _pandas()
        rows = [
            {"row": d.row, "id": d.id, "text": d.text, "token_count": d.token_count, "latent": l.latent, "value": l.value,
             "position": l.position, "label": l.label, "peak_token": l.peak["token"] if l.peak else None}
            for d in self for l in d.latents
        ]
        return pd.DataFrame(rows, columns=["row", "id", "text", "token_count", "latent", "value", "position", "label",
                                           "peak_token"])


@dataclasses.dataclass
class DiffSide:
    id: str
    name: str
    documents: int
    mean_tokens: float
    #: The slice compared (canonical text form); None for the whole dataset.
    where: Optional[str] = None


@dataclasses.dataclass
class DiffLatent:
    latent: int
    label: Optional[str]
    frequency_a: float
    frequency_b: float
    count_a: int
    count_b: int
    against: str
    difference: float
    ci95: List[float]
    p_value: float
    q_value: Optional[float]
    test: str
    label_source: Optional[str] = None
    label_score: Optional[Dict[str, Any]] = None
    #: What the latent fires on (``dataset``, ``token``, ``count``, ``examples``, ``window``): for latents without a label by default.
    peak: Optional[Dict[str, Any]] = None


@dataclasses.dataclass
class DiffResult:
    a: DiffSide
    b: List[DiffSide]
    encoder: str
    metric: str
    design: str
    tested: int
    latents: List[DiffLatent]
    pairs: Optional[int] = None
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]

    def to_pandas(self):
        """One row per latent, in the server's order: frequencies, counts, difference with its 95% interval, p and q, and the peak token."""
        pd = _pandas()
        cols = ["latent", "label", "frequency_a", "frequency_b", "count_a", "count_b", "difference", "ci_low", "ci_high",
                "p_value", "q_value", "test", "against", "label_source", "peak_token"]
        rows = []
        for l in self.latents:
            row = dataclasses.asdict(l)
            row["ci_low"], row["ci_high"] = l.ci95
            row["peak_token"] = l.peak["token"] if l.peak else None
            rows.append({c: row.get(c) for c in cols})
        return pd.DataFrame(rows, columns=cols)


@dataclasses.dataclass
class LatentListItem:
    latent: int
    label: Optional[str]
    frequency: float
    documents: int
    max: float
    mean: Optional[float] = None
    #: with ``q``: cosine of the latent's label to it
    similarity: Optional[float] = None
    #: with ``where``: normalized PMI of the latent and the slice (1: it fires there and nowhere else)
    npmi: Optional[float] = None
    label_source: Optional[str] = None
    href: Optional[str] = None
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]


@dataclasses.dataclass
class LatentList:
    dataset: str
    encoder: str
    documents: int
    total: int
    offset: int
    limit: int
    latents: List[LatentListItem] = dataclasses.field(default_factory=list)
    q: Optional[str] = None
    embedder: Optional[str] = None
    #: the slice listed (canonical text), absent for the whole dataset
    where: Optional[str] = None
    #: the order of a list without q: "frequent", "rare", "max" or "mean"
    sort: Optional[str] = None
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]

    def to_pandas(self):
        """One row per latent of the page: latent, label, frequency, documents, mean, max and (with q) similarity."""
        pd = _pandas()
        cols = ["latent", "label", "frequency", "documents", "mean", "max", "similarity", "npmi", "label_source"]
        return pd.DataFrame([{c: getattr(l, c) for c in cols} for l in self.latents], columns=cols)


@dataclasses.dataclass
class TopExample:
    row: int
    id: str
    rank: int
    value: float
    tokens: List[str]
    activations: List[float]
    position: int
    window_start: int
    text: Optional[str] = None


@dataclasses.dataclass
class LatentPage:
    latent: int
    label: Optional[str]
    encoder: str
    dataset: str
    frequency: float
    documents: int
    max: float
    mean: Optional[float] = None
    label_source: Optional[str] = None
    label_score: Optional[Dict[str, Any]] = None
    histogram: Dict[str, Any] = dataclasses.field(default_factory=dict)
    top_examples: List[TopExample] = dataclasses.field(default_factory=list)
    where: Optional[str] = None
    #: a slice only: its documents where the latent is strongest, ``[{"row", "id", "value", "position", "text"?}]``
    #: (the top examples with token windows are the whole dataset's, so a slice may hold few of them)
    slice_strongest: Optional[List[Dict[str, Any]]] = None
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]

    def to_pandas(self):
        """The top examples: row, id, rank, value, position and the token window around the max."""
        pd = _pandas()
        return pd.DataFrame([dataclasses.asdict(e) for e in self.top_examples],
                            columns=["row", "id", "rank", "value", "position", "window_start", "tokens", "activations", "text"])


@dataclasses.dataclass
class IntervalExample:
    row: int
    id: str
    value: float
    position: int
    snippet: str
    #: a token window around the max, re-encoded; None where the server holds no encoder
    tokens: Optional[List[str]] = None
    activations: Optional[List[float]] = None


@dataclasses.dataclass
class ActivationInterval:
    #: exclusive lower bound of the pooled value
    from_: float
    to: float
    documents: int
    examples: List[IntervalExample] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class LatentIntervals:
    latent: int
    label: Optional[str]
    encoder: str
    dataset: str
    documents: int
    max: float
    #: whether the examples carry token windows (the server holds the encoder: the local server)
    windows: bool
    intervals: List[ActivationInterval] = dataclasses.field(default_factory=list)
    where: Optional[str] = None
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]

    def to_pandas(self):
        """One row per sampled document: its interval's bounds and documents, row, id, value, position, window, snippet."""
        pd = _pandas()
        cols = ["from", "to", "interval_documents", "row", "id", "value", "position", "tokens", "activations", "snippet"]
        return pd.DataFrame([{"from": iv.from_, "to": iv.to, "interval_documents": iv.documents,
                              **{c: getattr(e, c) for c in cols[3:]}}
                             for iv in self.intervals for e in iv.examples], columns=cols)


@dataclasses.dataclass
class SearchHit:
    row: int
    id: str
    score: float
    snippet: str
    #: sae and hybrid: the chosen latents that make most of its latent score ({"latent", "value", "share"}), largest first
    latents: List[Dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class SearchLatent:
    latent: int
    label: Optional[str]
    weight: float
    similarity: Optional[float] = None
    label_source: Optional[str] = None
    #: for a latent given without a label: what it fires on in the dataset's top examples (token, count, examples, window)
    peak: Optional[Dict[str, Any]] = None


@dataclasses.dataclass
class SearchResult:
    dataset: str
    encoder: str
    method: str
    query: Optional[str]
    k: int
    matched: int
    results: List[SearchHit]
    latents: List[SearchLatent]
    temperature: Optional[float] = None
    embedder: Optional[str] = None
    usage: Optional[Dict[str, Any]] = None
    where: Optional[str] = None
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]

    def to_pandas(self):
        """The documents found, best first: row, id, score, snippet and (sae, hybrid) the latent that makes most of the
        score with its share."""
        pd = _pandas()
        rows = [{"row": h.row, "id": h.id, "score": h.score, "snippet": h.snippet,
                 "top_latent": h.latents[0]["latent"] if h.latents else None,
                 "top_latent_share": h.latents[0]["share"] if h.latents else None} for h in self.results]
        return pd.DataFrame(rows, columns=["row", "id", "score", "snippet", "top_latent", "top_latent_share"])


@dataclasses.dataclass
class CorrelatedLatent:
    latent: int
    label: Optional[str]
    frequency: float
    documents: int
    #: For a latent without a label: what it fires on (``token``, ``count``, ``examples``, ``window``).
    peak: Optional[Dict[str, Any]] = None


@dataclasses.dataclass
class CorrelationPair:
    a: CorrelatedLatent
    b: CorrelatedLatent
    npmi: float
    count: int
    p_a_given_b: float
    p_b_given_a: float
    adjacent_share: Optional[float] = None
    label_similarity: Optional[float] = None


@dataclasses.dataclass
class CorrelationsResult:
    dataset: str
    encoder: str
    documents: int
    latents_considered: int
    pairs_counted: int
    truncated: bool
    pairs: List[CorrelationPair]
    seconds: Optional[float] = None
    embedder: Optional[str] = None
    dropped: Dict[str, Any] = dataclasses.field(default_factory=dict)
    where: Optional[str] = None
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]

    def to_pandas(self):
        """One row per pair, by NPMI: latent_a, label_a, latent_b, label_b, npmi, count, conditional probabilities, and the peak tokens of unlabelled latents."""
        pd = _pandas()
        token = lambda l: l.peak["token"] if l.peak else None
        cols = ["latent_a", "label_a", "latent_b", "label_b", "npmi", "count", "p_a_given_b", "p_b_given_a", "peak_a", "peak_b"]
        rows = [{"latent_a": p.a.latent, "label_a": p.a.label, "latent_b": p.b.latent, "label_b": p.b.label, "npmi": p.npmi,
                 "count": p.count, "p_a_given_b": p.p_a_given_b, "p_b_given_a": p.p_b_given_a,
                 "peak_a": token(p.a), "peak_b": token(p.b)} for p in self.pairs]
        return pd.DataFrame(rows, columns=cols)


@dataclasses.dataclass
class ClustersResult:
    dataset: str
    k: int
    assignments: List[int]
    clusters: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    encoder: Optional[str] = None
    documents: Optional[int] = None
    method: Optional[str] = None
    #: spectral: "cosine" (the default), "jaccard" or "jaccard-knn"; kmeans: "cosine".
    similarity: Optional[str] = None
    latents_used: List[int] = dataclasses.field(default_factory=list)
    affinities: Optional[List[Any]] = None
    #: For a slice: the slice (canonical text) and the dataset row of each assignment.
    where: Optional[str] = None
    rows: Optional[List[int]] = None
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]

    def to_pandas(self):
        """One row per document: its dataset row and its cluster."""
        pd = _pandas()
        return pd.DataFrame({"row": self.rows if self.rows is not None else range(len(self.assignments)), "cluster": self.assignments})


@dataclasses.dataclass
class AnalysisJob:
    id: str
    analysis: str
    dataset: str
    status: str
    progress: Dict[str, Any]
    href: str
    created_at: str
    updated_at: str
    request: Dict[str, Any] = dataclasses.field(default_factory=dict)
    error: Optional[Dict[str, Any]] = None
    attempts: int = 0
    result_href: Optional[str] = None
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]


@dataclasses.dataclass
class JobAccepted:
    job: Dict[str, Any]
    webhook_secret: Optional[str] = None
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]

    @property
    def id(self) -> str:
        return self.job["id"]


@dataclasses.dataclass
class Hypothesis:
    id: int
    text: str
    latents: List[int]


@dataclasses.dataclass
class HypothesesResult:
    a: str
    b: List[str]
    question: str
    model: str
    hypotheses: List[Hypothesis]
    used_rows: Dict[str, List[int]] = dataclasses.field(default_factory=dict)
    latents: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    failed: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    usage: Optional[Dict[str, Any]] = None
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]


@dataclasses.dataclass
class VerifiedHypothesis:
    text: str
    latents: List[int]
    share_a: float
    share_b: float
    p_value: float
    adjusted_p_value: float
    test: str
    yes_a: int = 0
    n_a: int = 0
    yes_b: int = 0
    n_b: int = 0
    extra: Dict[str, Any] = _meta()[0]


@dataclasses.dataclass
class VerifyResult:
    model: str
    hypotheses: List[VerifiedHypothesis]
    valid_count: int
    correction: str
    alpha: float
    a: Dict[str, Any] = dataclasses.field(default_factory=dict)
    b: Dict[str, Any] = dataclasses.field(default_factory=dict)
    failed: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    usage: Optional[Dict[str, Any]] = None
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]

    def to_pandas(self):
        """One row per hypothesis: share of yes in a and b, p and adjusted p."""
        pd = _pandas()
        return pd.DataFrame([{k: v for k, v in dataclasses.asdict(h).items() if k != "extra"} for h in self.hypotheses])


@dataclasses.dataclass
class Estimate:
    """A dry run: the tokens and cost an LLM step would spend."""
    model: str
    calls: int
    cost: Optional[float]
    currency: str
    steps: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    extra: Dict[str, Any] = _meta()[0]
    raw: Dict[str, Any] = _meta()[1]
