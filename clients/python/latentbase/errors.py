"""Errors raised by the client: API answers carry their problem+json (RFC 9457) document."""
from typing import Any, Dict, List, Optional


class LatentbaseError(Exception):
    """An error answer of the API. ``problem`` is its application/problem+json body."""

    def __init__(self, status: int, problem: Dict[str, Any]):
        self.status = status
        self.problem = problem
        title = problem.get("title") or "Error"
        detail = problem.get("detail") or ""
        super().__init__(f"{status} {title}: {detail}".strip().rstrip(":"))

    @property
    def code(self) -> Optional[str]:
        """The stable machine-readable error code (e.g. ``dataset-not-found``)."""
        return self.problem.get("code")

    @property
    def detail(self) -> Optional[str]:
        return self.problem.get("detail")

    @property
    def errors(self) -> List[Dict[str, str]]:
        """Per-field errors of an invalid request: ``[{"path": ..., "message": ...}]``."""
        return list(self.problem.get("errors") or [])


class DatasetFailedError(Exception):
    """The dataset's encoding failed; ``dataset`` holds its record with ``error``."""

    def __init__(self, dataset: Any):
        self.dataset = dataset
        error = getattr(dataset, "error", None) or {}
        super().__init__(f"dataset {dataset.id} failed: {error.get('message', 'no reason given')}")


class AppendFailedError(Exception):
    """The batch appended as ``version`` failed; the dataset stays on its previous version (``dataset.append["error"]`` says why)."""

    def __init__(self, dataset: Any, version: int):
        self.dataset = dataset
        self.version = version
        error = (getattr(dataset, "append", None) or {}).get("error") or {}
        super().__init__(f"appending version {version} to dataset {dataset.id} failed: {error.get('message', 'no reason given')}")


class AnalysisJobFailedError(Exception):
    """An analysis job failed; ``job`` holds it with ``error``."""

    def __init__(self, job: Any):
        self.job = job
        error = getattr(job, "error", None) or {}
        super().__init__(f"analysis job {job.id} failed: {error.get('message', 'no reason given')}")

    @property
    def code(self) -> Optional[str]:
        return (getattr(self.job, "error", None) or {}).get("code")


class WebhookVerificationError(Exception):
    """A webhook whose headers, timestamp or signature do not check out. ``reason`` says which."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)
