"""The Latentbase client: every operation of the TypeScript SDK over urllib, results as dataclasses."""
from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from . import models as m
from .errors import AnalysisJobFailedError, AppendFailedError, DatasetFailedError, LatentbaseError

DEFAULT_BASE_URL = "http://127.0.0.1:8787"
USER_AGENT = "latentbase-python/0.1.0"

#: Failures where the request may not have reached the server, or its answer was lost: safe to repeat when idempotent.
CONNECTION_ERRORS = (ConnectionResetError, ConnectionAbortedError, ConnectionRefusedError, BrokenPipeError,
                     http.client.RemoteDisconnected, http.client.IncompleteRead)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def camel(name: str) -> str:
    """``min_frequency`` -> ``minFrequency``: Python keyword arguments to the API's names."""
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _params(values: Mapping[str, Any]) -> Dict[str, Any]:
    return {camel(k): v for k, v in values.items() if v is not None}


def _query(params: Mapping[str, Any]) -> str:
    pairs = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        pairs.append((key, str(value)))
    return urllib.parse.urlencode(pairs)


#: A slice of a dataset (docs/slices.md): the text form (``'metadata.model = "x" and latent 12 > 0.5'``) or the JSON form as a dict.
Slice = Union[str, Mapping[str, Any]]


def _slice(value: Optional[Slice]) -> Optional[str]:
    """A slice as a query-string value: text passes through, a dict is sent as JSON; the server checks both (400 names the fault)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return json.dumps(value, separators=(",", ":"))
    raise TypeError(f"a slice is text or a dict (its JSON form), not {type(value).__name__}")


def _slices(value: Union[Slice, Sequence[Optional[Slice]], None]) -> List[Optional[Slice]]:
    """One slice or a list of them (one per b dataset); a single one stays a list of one."""
    if value is None:
        return []
    return [value] if isinstance(value, (str, Mapping)) else list(value)


class Transport:
    """HTTP with the API key, problem+json errors, and retries of idempotent requests when the connection fails."""

    def __init__(self, base_url: str, api_key: Optional[str], timeout: float, retries: int, headers: Mapping[str, str],
                 max_retry_wait: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.headers = dict(headers)
        self.max_retry_wait = max_retry_wait

    def request(self, method: str, path: str, body: Any = None, headers: Optional[Mapping[str, str]] = None,
                raw: Optional[bytes] = None) -> Any:
        """``body`` is sent as JSON; ``raw`` as it is, with the content type given in ``headers``."""
        h = {"accept": "application/json", "user-agent": USER_AGENT, **self.headers, **(headers or {})}
        if self.api_key:
            h["authorization"] = f"Bearer {self.api_key}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h["content-type"] = "application/json"
        # A POST is repeated only with an Idempotency-Key, which makes the server answer a repeat with the first answer.
        idempotent = method in IDEMPOTENT_METHODS or any(k.lower() == "idempotency-key" for k in h)
        attempt = 0
        while True:
            req = urllib.request.Request(self.base_url + path, data=data, headers=h, method=method)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as res:
                    raw = res.read()
                    return json.loads(raw) if raw else None
            except urllib.error.HTTPError as err:
                text = err.read().decode("utf-8", "replace")
                retry_after = err.headers.get("retry-after") if err.headers else None
                # 429 is answered before the handler runs, so any method may be repeated; 502-504 only idempotent ones.
                if attempt < self.retries and (err.code == 429 or (idempotent and err.code in (502, 503, 504))) and retry_after is not None:
                    attempt += 1
                    time.sleep(min(self.max_retry_wait, float(retry_after) if retry_after.replace(".", "", 1).isdigit() else 1.0))
                    continue
                raise LatentbaseError(err.code, _problem(err.code, err.reason, text)) from None
            except urllib.error.URLError as err:
                if idempotent and attempt < self.retries and isinstance(err.reason, CONNECTION_ERRORS):
                    attempt += 1
                    time.sleep(0.2 * 2 ** (attempt - 1))
                    continue
                raise
            except CONNECTION_ERRORS:
                if idempotent and attempt < self.retries:
                    attempt += 1
                    time.sleep(0.2 * 2 ** (attempt - 1))
                    continue
                raise


def _problem(status: int, reason: Any, text: str) -> Dict[str, Any]:
    try:
        body = json.loads(text)
        if isinstance(body, dict) and "title" in body:
            return body
    except ValueError:
        pass
    return {"type": "about:blank", "title": str(reason or "Error"), "status": status, "detail": text[:500]}


def _poll(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float, interval: float,
          on_progress: Optional[Callable[[Any], None]], what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        item = fetch()
        if on_progress:
            on_progress(item)
        if done(item):
            return item
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout} s (status {item.status})")
        time.sleep(interval)
        interval = min(interval * 1.5, 5.0)


class Datasets:
    def __init__(self, http: Transport):
        self._http = http

    def create(self, source: Union[str, Mapping[str, Any], None] = None, *, documents: Optional[Sequence[Mapping[str, Any]]] = None,
               encoder: Optional[str] = None, name: Optional[str] = None, pooling: Optional[Mapping[str, Any]] = None,
               webhook: Optional[Mapping[str, Any]] = None, idempotency_key: Optional[str] = None, **source_options: Any) -> m.Dataset:
        """
        Queue a dataset for encoding: ``source`` is a URL (or a dict like ``{"url": ..., "textField": ...}``; keyword
        options such as ``text_field=``, ``format=`` and ``metadata_fields=`` are added to it), or ``documents`` a list
        of ``{"text": ..., "id": ..., "metadata": {...}}``. Sent with an Idempotency-Key (a random one unless given) so
        a retried request creates one dataset. A generated webhook secret is in ``webhook_secret``, once.
        """
        if (source is None) == (documents is None):
            raise ValueError('give exactly one of source (a URL) or documents (inline)')
        body: Dict[str, Any] = _params({"name": name, "encoder": encoder, "pooling": pooling, "webhook": webhook})
        if source is not None:
            spec = {"url": source} if isinstance(source, str) else dict(source)
            spec.update(_params(source_options))
            body["source"] = spec
        else:
            if source_options:
                raise ValueError(f"source options {sorted(source_options)} need a source URL")
            body["documents"] = list(documents)  # type: ignore[arg-type]
        key = idempotency_key or str(uuid.uuid4())
        return m.from_json(m.Dataset, self._http.request("POST", "/datasets", body, {"idempotency-key": key}))

    def list(self) -> List[m.Dataset]:
        return [m.from_json(m.Dataset, d) for d in self._http.request("GET", "/datasets")["datasets"]]

    def get(self, id: str) -> m.Dataset:
        return m.from_json(m.Dataset, self._http.request("GET", f"/datasets/{urllib.parse.quote(id, safe='')}"))

    def delete(self, id: str) -> None:
        self._http.request("DELETE", f"/datasets/{urllib.parse.quote(id, safe='')}")

    def facets(self, id: str) -> m.Facets:
        """The dataset's few-valued metadata keys, each value's documents and the slice (``where``) selecting it; a diff
        of such a slice is added up from stored counts. ``id`` may name a version (``"ds_1@2"``)."""
        return m.from_json(m.Facets, self._http.request("GET", f"/datasets/{urllib.parse.quote(id, safe='')}/facets"))

    def wait_until_ready(self, id: str, timeout: float = 1800.0, interval: float = 0.5,
                         on_progress: Optional[Callable[[m.Dataset], None]] = None) -> m.Dataset:
        """Poll until the dataset is ready (``on_progress`` sees every poll); DatasetFailedError if its encoding failed."""
        def done(d: m.Dataset) -> bool:
            if d.status == "failed":
                raise DatasetFailedError(d)
            return d.status == "ready"
        return _poll(lambda: self.get(id), done, timeout, interval, on_progress, f"dataset {id}")


    def append(self, id: str, source: Union[str, Mapping[str, Any], None] = None, *, documents: Optional[Sequence[Mapping[str, Any]]] = None,
               pool_roles: Optional[Sequence[str]] = None, idempotency_key: Optional[str] = None, **source_options: Any) -> m.Dataset:
        """
        Append documents to a ready dataset as a new version (``source`` or ``documents`` as for ``create``); the answer's
        ``append["version"]`` is its number (analyses take ``f"{id}@{version}"``). Sent with an Idempotency-Key. The batch
        pools the dataset's chat roles; ``pool_roles`` naming others is refused (422 ``pool-roles-mismatch``).
        """
        if (source is None) == (documents is None):
            raise ValueError('give exactly one of source (a URL) or documents (inline)')
        body: Dict[str, Any] = _params({"poolRoles": list(pool_roles) if pool_roles else None})
        if source is not None:
            spec = {"url": source} if isinstance(source, str) else dict(source)
            spec.update(_params(source_options))
            body["source"] = spec
        else:
            body["documents"] = list(documents)  # type: ignore[arg-type]
        key = idempotency_key or str(uuid.uuid4())
        path = f"/datasets/{urllib.parse.quote(id, safe='')}/documents"
        return m.from_json(m.Dataset, self._http.request("POST", path, body, {"idempotency-key": key}))

    def update(self, id: str, *, name: Optional[str] = None, watch: Union[Mapping[str, Any], None, bool] = False) -> m.Dataset:
        """Rename a dataset or set its drift watch (``{"against": "previous", "minDifference": 0.1}``); ``watch=None`` removes it."""
        body: Dict[str, Any] = _params({"name": name})
        if watch is not False:
            body["watch"] = None if watch is None else dict(watch)  # type: ignore[arg-type]
        return m.from_json(m.Dataset, self._http.request("PATCH", f"/datasets/{urllib.parse.quote(id, safe='')}", body))

    def wait_for_version(self, id: str, version: int, timeout: float = 1800.0, interval: float = 0.5) -> m.Dataset:
        """Poll until the dataset reached ``version``; AppendFailedError if that batch failed."""
        def done(d: m.Dataset) -> bool:
            pending = d.append or {}
            if pending.get("version") == version and pending.get("status") == "failed":
                raise AppendFailedError(d, version)
            return (d.version or 1) >= version
        return _poll(lambda: self.get(id), done, timeout, interval, None, f"dataset {id} version {version}")

    def create_from_file(self, path: Union[str, "os.PathLike[str]"], **options: Any) -> m.Dataset:
        """Upload a local file (``POST /uploads``) and queue a dataset reading it; ``options`` as for ``create``."""
        upload = Uploads(self._http).create(path)
        return self.create(upload.url, **options)


class Uploads:
    def __init__(self, http: Transport):
        self._http = http

    def create(self, file: Union[str, "os.PathLike[str]", bytes], *, filename: Optional[str] = None,
               content_type: Optional[str] = None) -> m.Upload:
        """
        Upload a source file (a path, or its bytes with ``filename``) as the raw body of ``POST /uploads``; give the
        answer's ``url`` (``upload://...``) as a dataset's source. Past the server's size limit (100 MB by default): 413.
        """
        if isinstance(file, (bytes, bytearray)):
            data = bytes(file)
        else:
            path = os.fspath(file)
            with open(path, "rb") as f:
                data = f.read()
            filename = filename or os.path.basename(path)
        query = _query({"filename": filename})
        answer = self._http.request("POST", "/uploads" + (f"?{query}" if query else ""),
                                    headers={"content-type": content_type or "application/octet-stream"}, raw=data)
        return m.from_json(m.Upload, answer)


class Documents:
    def __init__(self, http: Transport):
        self._http = http

    def get(self, dataset: str, row: int, *, peaks: Optional[str] = None) -> m.Document:
        """One document: text, metadata and its pooled latents (strongest first, labelled; ``peaks`` as in a diff:
        "unlabelled" by default, "all" or "none", says which of the 200 strongest carry what they peak on)."""
        query = _query({"peaks": peaks})
        path = f"/datasets/{urllib.parse.quote(dataset, safe='')}/documents/{int(row)}" + (f"?{query}" if query else "")
        return m.from_json(m.Document, self._http.request("GET", path))

    def activations(self, dataset: str, row: int, latents: Iterable[int]) -> m.DocumentActivations:
        """Where chosen latents (at most 32) fire in one document, token by token: the document is re-encoded as its
        dataset was. Needs a server that holds the encoder (the local one); others raise a 501 ``encoder-not-held``.
        ``.to_pandas()`` gives one row per token, one column per latent."""
        ids = ",".join(str(int(l)) for l in latents)
        path = f"/datasets/{urllib.parse.quote(dataset, safe='')}/documents/{int(row)}/activations?latents={ids}"
        return m.from_json(m.DocumentActivations, self._http.request("GET", path))

    def activations_of_text(self, dataset: str, text: Union[str, Sequence[Mapping[str, Any]]], *, top: Optional[int] = None,
                            order: Optional[str] = None, latents: Optional[Iterable[int]] = None) -> m.TextActivations:
        """A text encoded as the dataset's documents were: its ``top`` strongest latents (default 20, at most 32) or the
        ``latents`` asked, each with where it fires and its frequency in the dataset; ``order="distinctive"`` ranks by
        activation x idf in the dataset. ``text`` may be chat messages (a list of {"role", "content"}): they are rendered
        with the reader's chat template and pooled on the turns the dataset pools. Needs a server that holds the
        encoder (the local one); others raise a 501 ``encoder-not-held``. ``.latents_to_pandas()``: a row per latent."""
        ids = ",".join(str(int(l)) for l in latents) if latents is not None else None
        chat = not isinstance(text, str)
        body = json.dumps([dict(msg) for msg in text]) if chat else text
        query = _query({"text": body, "format": "chat" if chat else None, "top": top, "order": order, "latents": ids or None})
        path = f"/datasets/{urllib.parse.quote(dataset, safe='')}/activations?{query}"
        return m.from_json(m.TextActivations, self._http.request("GET", path))

    def similar(self, dataset: str, row: int, *, limit: Optional[int] = None, shared: Optional[int] = None,
                in_dataset: Optional[str] = None, where: Optional[Slice] = None) -> m.SimilarDocuments:
        """Documents like this one (cosine of sqrt-idf-weighted latent sets), each with the latents it shares with it;
        ``in_dataset`` looks in another dataset encoded alike (the API's ``in``), ``where`` keeps the candidates to a
        slice. ``.to_pandas()`` gives one row per document."""
        query = _query({"limit": limit, "shared": shared, "in": in_dataset, "where": _slice(where)})
        path = f"/datasets/{urllib.parse.quote(dataset, safe='')}/documents/{int(row)}/similar" + (f"?{query}" if query else "")
        return m.from_json(m.SimilarDocuments, self._http.request("GET", path))

    def like(self, dataset: str, text: str, *, limit: Optional[int] = None, shared: Optional[int] = None,
             where: Optional[Slice] = None) -> m.SimilarToText:
        """Documents like a text: the text is encoded with the dataset's encoder as its documents were, then ranked as
        ``similar`` ranks. Needs a server that holds the encoder (the local one); others raise a 501
        ``encoder-not-held``."""
        query = _query({"text": text, "limit": limit, "shared": shared, "where": _slice(where)})
        path = f"/datasets/{urllib.parse.quote(dataset, safe='')}/similar?{query}"
        return m.from_json(m.SimilarToText, self._http.request("GET", path))

    def get_many(self, dataset: str, rows: Iterable[int], *, peaks: Optional[str] = None) -> m.DocumentList:
        """Several documents; ``.to_pandas()`` gives one row per (document, latent)."""
        return m.DocumentList(self.get(dataset, r, peaks=peaks) for r in rows)


class Latents:
    def __init__(self, http: Transport):
        self._http = http

    def get(self, dataset: str, latent: int, *, examples: Optional[int] = None, text: Optional[bool] = None,
            where: Optional[Slice] = None) -> m.LatentPage:
        """A latent's page in a dataset (or a slice of it, ``where``): label, frequency, histogram and top examples."""
        q = _query({"dataset": dataset, "examples": examples, "text": text, "where": _slice(where)})
        return m.from_json(m.LatentPage, self._http.request("GET", f"/latents/{int(latent)}?{q}"))

    def list(self, dataset: str, *, q: Optional[str] = None, sort: Optional[str] = None, where: Optional[Slice] = None,
             limit: Optional[int] = None, offset: Optional[int] = None) -> m.LatentList:
        """A dataset's (or a slice's, ``where``) latents, most frequent first (``sort``: ``"rare"``, ``"max"``, ``"mean"``
        for rarest, largest max or largest mean first), or ranked by how close their labels are to ``q``; one page."""
        query = _query({"dataset": dataset, "q": q, "sort": sort, "where": _slice(where), "limit": limit, "offset": offset})
        return m.from_json(m.LatentList, self._http.request("GET", f"/latents?{query}"))

    def intervals(self, dataset: str, latent: int, *, intervals: Optional[int] = None, per_interval: Optional[int] = None,
                  seed: Optional[int] = None, where: Optional[Slice] = None) -> m.LatentIntervals:
        """Documents sampled from equal-width intervals of the latent's pooled value, highest first (``intervals``,
        default 5; ``per_interval``, default 3; seeded by ``seed``), with token windows where the server holds the
        encoder: what the latent does below its top examples."""
        q = _query({"dataset": dataset, "intervals": intervals, "perInterval": per_interval, "seed": seed,
                    "where": _slice(where)})
        return m.from_json(m.LatentIntervals, self._http.request("GET", f"/latents/{int(latent)}/intervals?{q}"))


class Jobs:
    def __init__(self, http: Transport):
        self._http = http

    def get(self, id: str) -> m.AnalysisJob:
        return m.from_json(m.AnalysisJob, self._http.request("GET", f"/jobs/{urllib.parse.quote(id, safe='')}"))

    def wait(self, id: str, timeout: float = 1800.0, interval: float = 0.25,
             on_progress: Optional[Callable[[m.AnalysisJob], None]] = None) -> m.AnalysisJob:
        """Poll until the job is ready; AnalysisJobFailedError when it failed."""
        def done(job: m.AnalysisJob) -> bool:
            if job.status == "failed":
                raise AnalysisJobFailedError(job)
            return job.status == "ready"
        return _poll(lambda: self.get(id), done, timeout, interval, on_progress, f"analysis job {id}")

    def result(self, id: str, offset: Optional[int] = None, limit: Optional[int] = None) -> Dict[str, Any]:
        """One page of a ready job's result: its per-row arrays cut to [offset, offset + limit)."""
        q = _query({"offset": offset, "limit": limit})
        return self._http.request("GET", f"/jobs/{urllib.parse.quote(id, safe='')}/result" + (f"?{q}" if q else ""))

    def result_all(self, id: str, page_size: int = 10_000) -> Dict[str, Any]:
        """The whole result of a ready job, its pages put back together."""
        first = self.result(id, 0, page_size)
        info = first.pop("page", None)
        first.pop("job", None)
        if not info:
            return first
        fields = info["fields"]
        arrays = {f: list(first[f]) for f in fields}
        nxt = info.get("next")
        while nxt:
            offset = int(urllib.parse.parse_qs(urllib.parse.urlsplit(nxt).query)["offset"][0])
            page = self.result(id, offset, info["limit"])
            for f in fields:
                arrays[f].extend(page[f])
            nxt = (page.get("page") or {}).get("next")
        first.update(arrays)
        return first


class Hypotheses:
    def __init__(self, http: Transport):
        self._http = http

    def _post(self, path: str, params: Mapping[str, Any], dry_run: bool) -> Any:
        body = _params(params)
        # Hypotheses take one b slice per b (a list); verification has one b, so one slice. a_where / b_where go as they
        # are (text or the JSON form): the body's slices are checked by the server like the query's.
        if "bWhere" in body and path.startswith("/diff/hypotheses"):
            body["bWhere"] = ["" if w is None else w for w in _slices(body["bWhere"])]
        return self._http.request("POST", path, {**body, "dryRun": dry_run})

    def create(self, a: str, b: Union[str, Sequence[str]], **params: Any) -> m.HypothesesResult:
        """POST /diff/hypotheses: hypotheses about how a differs from b, citing latent ids (the server needs an LLM)."""
        return m.from_json(m.HypothesesResult, self._post("/diff/hypotheses", {"a": a, "b": b, **params}, False))

    def estimate(self, a: str, b: Union[str, Sequence[str]], **params: Any) -> m.Estimate:
        return m.from_json(m.Estimate, self._post("/diff/hypotheses", {"a": a, "b": b, **params}, True))

    def verify(self, a: str, b: str, hypotheses: Sequence[Mapping[str, Any]], **params: Any) -> m.VerifyResult:
        """POST /hypotheses/verify: judge hypotheses on held-out documents (pass a hypotheses result's used_rows as exclude)."""
        return m.from_json(m.VerifyResult, self._post("/hypotheses/verify", {"a": a, "b": b, "hypotheses": _hyps(hypotheses), **params}, False))

    def estimate_verify(self, a: str, b: str, hypotheses: Sequence[Mapping[str, Any]], **params: Any) -> m.Estimate:
        return m.from_json(m.Estimate, self._post("/hypotheses/verify", {"a": a, "b": b, "hypotheses": _hyps(hypotheses), **params}, True))

    def submit(self, a: str, b: Union[str, Sequence[str]], **params: Any) -> m.JobAccepted:
        """Queue the hypotheses as an analysis job (202); wait with jobs.wait, read with jobs.result_all."""
        return m.from_json(m.JobAccepted, self._post("/diff/hypotheses?async=true", {"a": a, "b": b, **params}, False))

    def submit_verify(self, a: str, b: str, hypotheses: Sequence[Mapping[str, Any]], **params: Any) -> m.JobAccepted:
        return m.from_json(m.JobAccepted, self._post("/hypotheses/verify?async=true", {"a": a, "b": b, "hypotheses": _hyps(hypotheses), **params}, False))

    def create_and_verify(self, a: str, b: str, *, per_dataset: Optional[int] = None, seed: Optional[int] = None,
                          baseline: Optional[bool] = None, correction: Optional[str] = None, **params: Any):
        """Hypotheses from the diff, then verified on documents other than the examples that produced them."""
        hyps = self.create(a, b, **params)
        if not hyps.hypotheses:
            return hyps, None
        verification = self.verify(a, b, hyps.hypotheses, exclude=hyps.used_rows, per_dataset=per_dataset, seed=seed,
                                   baseline=baseline, correction=correction, a_where=params.get("a_where"),
                                   b_where=(_slices(params.get("b_where")) or [None])[0])
        return hyps, verification


def _hyps(hypotheses: Sequence[Any]) -> List[Dict[str, Any]]:
    out = []
    for h in hypotheses:
        if isinstance(h, m.Hypothesis):
            out.append({"text": h.text, "latents": list(h.latents)})
        elif isinstance(h, str):
            out.append({"text": h, "latents": []})
        else:
            out.append({"text": h["text"], "latents": list(h.get("latents", []))})
    return out


class Encoders:
    def __init__(self, http: Transport):
        self._http = http

    def list(self) -> List[m.Encoder]:
        return [m.from_json(m.Encoder, e) for e in self._http.request("GET", "/encoders")["encoders"]]


class Labels:
    def __init__(self, http: Transport):
        self._http = http

    def _path(self, encoder: str, job: bool = False) -> str:
        return f"/encoders/{urllib.parse.quote(encoder, safe='')}/relabel" + ("?async=true" if job else "")

    def relabel(self, encoder: str, dataset: str, latents: Sequence[int], **params: Any) -> Dict[str, Any]:
        """Labels for latents of ``encoder`` written from windows of ``dataset`` and scored, by the LLM or, with
        ``labeler="offline"``, without one; at most 50 directly."""
        return self._http.request("POST", self._path(encoder), {**_params(params), "dataset": dataset, "latents": list(latents), "dryRun": False})

    def estimate(self, encoder: str, dataset: str, latents: Sequence[int], **params: Any) -> m.Estimate:
        return m.from_json(m.Estimate, self._http.request("POST", self._path(encoder), {**_params(params), "dataset": dataset, "latents": list(latents), "dryRun": True}))

    def submit(self, encoder: str, dataset: str, latents: Sequence[int], **params: Any) -> m.JobAccepted:
        return m.from_json(m.JobAccepted, self._http.request("POST", self._path(encoder, True), {**_params(params), "dataset": dataset, "latents": list(latents), "dryRun": False}))


class Client:
    """
    ``Client(base_url, api_key)``; both default to LATENTBASE_URL and LATENTBASE_API_KEY (then http://127.0.0.1:8787).
    Idempotent requests (GET, DELETE, and POST /datasets, which carries an Idempotency-Key) are retried up to
    ``retries`` times when the connection is reset or refused.
    """

    def __init__(self, base_url: Optional[str] = None, api_key: Optional[str] = None, *, timeout: float = 120.0,
                 retries: int = 3, headers: Optional[Mapping[str, str]] = None):
        self.base_url = (base_url or os.environ.get("LATENTBASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self._http = Transport(self.base_url, api_key or os.environ.get("LATENTBASE_API_KEY") or None, timeout, retries, headers or {})
        self.datasets = Datasets(self._http)
        self.uploads = Uploads(self._http)
        self.documents = Documents(self._http)
        self.latents = Latents(self._http)
        self.jobs = Jobs(self._http)
        self.hypotheses = Hypotheses(self._http)
        self.encoders = Encoders(self._http)
        self.labels = Labels(self._http)

    def health(self) -> Dict[str, Any]:
        return self._http.request("GET", "/health")

    def diff(self, a: str, b: Union[str, Sequence[str]], *, limit: Optional[int] = None, min_frequency: Optional[float] = None,
             max_frequency: Optional[float] = None, metric: Optional[str] = None, direction: Optional[str] = None,
             latents: Optional[Sequence[int]] = None, pair_by: Optional[str] = None, control_length: Optional[bool] = None,
             a_where: Optional[Slice] = None, b_where: Union[Slice, Sequence[Optional[Slice]], None] = None,
             peaks: Optional[str] = None) -> m.DiffResult:
        """Latents that fire more in a than in b (each latent against the b where it is most frequent), with statistics.

        ``a_where`` restricts a to a slice; ``b_where`` is a list of slices, one per b in order (``None`` or ``""``: the
        whole dataset), or one slice for every b. a and b may be one dataset with two slices; with ``a_where`` and no
        ``b_where`` at all, a b that is a's own dataset is the rest of it (``not (a_where)``). ``peaks`` says which
        latents get ``peak``, the token they fire on in their top examples: ``"unlabelled"`` (default), ``"all"``, ``"none"``.
        """
        bs = [b] if isinstance(b, str) else list(b)
        pairs = [("a", a)] + [("b", x) for x in bs]
        if a_where is not None:
            pairs.append(("aWhere", _slice(a_where)))
        b_slices = [b_where] * len(bs) if isinstance(b_where, (str, Mapping)) else _slices(b_where)
        pairs += [("bWhere", _slice(w) or "") for w in b_slices]
        rest = _query(_params({"limit": limit, "min_frequency": min_frequency, "max_frequency": max_frequency, "metric": metric,
                               "direction": direction, "latents": latents, "pair_by": pair_by, "control_length": control_length,
                               "peaks": peaks}))
        q = urllib.parse.urlencode(pairs) + (f"&{rest}" if rest else "")
        return m.from_json(m.DiffResult, self._http.request("GET", f"/diff?{q}"))

    def correlations(self, dataset: str, *, where: Optional[Slice] = None, wait_timeout: float = 1800.0, **params: Any) -> m.CorrelationsResult:
        """Latent pairs that co-occur, by NPMI (in a slice: ``where``); when the server answers with a job, waits for it."""
        answer = self._http.request("GET", f"/correlations?{_query(_params({'dataset': dataset, 'where': _slice(where), **params}))}")
        return m.from_json(m.CorrelationsResult, self._result_of(answer, wait_timeout))

    def clusters(self, dataset: str, k: int, *, where: Optional[Slice] = None, wait_timeout: float = 1800.0, **request: Any) -> m.ClustersResult:
        """Cluster a dataset's documents, or a slice's (``where``; then ``rows`` gives each assignment's dataset row); waits on a job."""
        answer = self._http.request("POST", "/clusters", {**_params({**request, "where": where}), "dataset": dataset, "k": k})
        return m.from_json(m.ClustersResult, self._result_of(answer, wait_timeout))

    def submit_clusters(self, dataset: str, k: int, **request: Any) -> m.JobAccepted:
        """Queue a clustering as a job (202) whatever the dataset's size."""
        return m.from_json(m.JobAccepted, self._http.request("POST", "/clusters?async=true", {**_params(request), "dataset": dataset, "k": k}))

    def estimate_clusters(self, dataset: str, k: int, **request: Any) -> m.Estimate:
        return m.from_json(m.Estimate, self._http.request("POST", "/clusters", {**_params(request), "dataset": dataset, "k": k, "dryRun": True}))

    def search(self, dataset: str, q: Optional[str] = None, *, where: Optional[Slice] = None, **params: Any) -> m.SearchResult:
        """Documents with a property: method ``sae`` (latents whose labels match q), ``bm25`` or ``hybrid``; ``where``: in a slice."""
        query = _query(_params({'dataset': dataset, 'q': q, 'where': _slice(where), **params}))
        return m.from_json(m.SearchResult, self._http.request("GET", f"/search?{query}"))

    def estimate_search(self, dataset: str, q: Optional[str] = None, **params: Any) -> m.Estimate:
        return m.from_json(m.Estimate, self._http.request("GET", f"/search?{_query(_params({'dataset': dataset, 'q': q, **params, 'dry_run': True}))}"))

    def _result_of(self, answer: Dict[str, Any], timeout: float) -> Dict[str, Any]:
        job = answer.get("job") if isinstance(answer, dict) else None
        if not (isinstance(job, dict) and "id" in job and "href" in job):
            return answer
        self.jobs.wait(job["id"], timeout=timeout)
        return self.jobs.result_all(job["id"])
