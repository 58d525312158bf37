"""Latentbase from Python: encode text datasets into sparse autoencoder latents, diff them, search them."""
from .client import Client
from .errors import AnalysisJobFailedError, AppendFailedError, DatasetFailedError, LatentbaseError, WebhookVerificationError
from .models import (AnalysisJob, ClustersResult, CorrelationsResult, Dataset, DiffResult, Document, DocumentActivations,
                     DocumentList, Encoder,
                     Facets, HypothesesResult, LatentIntervals, LatentPage, SearchResult, TextActivations, Upload,
                     VerifyResult)
from .webhooks import sign_webhook, verify_webhook

__version__ = "0.1.0"
__all__ = [
    "Client", "LatentbaseError", "DatasetFailedError", "AppendFailedError", "AnalysisJobFailedError", "WebhookVerificationError",
    "verify_webhook", "sign_webhook", "Dataset", "Document", "DocumentList", "DiffResult", "LatentPage", "SearchResult",
    "CorrelationsResult", "ClustersResult", "Upload", "AnalysisJob", "Encoder", "HypothesesResult", "VerifyResult", "Facets",
    "LatentIntervals", "DocumentActivations", "TextActivations",
]
