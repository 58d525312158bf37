/** @module What the app is built from (AppDeps), its defaults filled in once, and the one place a request's AnalysisContext is made. */
import type { Context } from 'hono'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import type { DatasetStore } from '@latentbase/shared/store/dataset-store'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import type { JobMessage } from '@latentbase/shared/contract/job'
import type { AnalysisQueueMessage } from '@latentbase/shared/contract/analysis-job'
import type { EncoderCatalog } from '@latentbase/shared/catalog/catalog'
import type { ApiKeyStore } from '@latentbase/shared/auth/api-keys'
import type { LlmClient } from '@latentbase/shared/llm/client'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import type { RateLimit } from './rate-limit.ts'
import type { DocumentActivationsReader, TextActivationsReader } from '@latentbase/gpu-worker/job/document-activations'
import type { AnalysisContext, TextEncoder, WindowMiner } from './services/context.ts'
import { AnswerCache } from './services/answer-cache.ts'
import type { AnalysisRunners } from './services/analysis-jobs.ts'
import { llmOf } from './services/llm-helpers.ts'

export interface AppDeps {
  objects: ObjectStore
  datasets: DatasetStore
  queue: JobQueue<JobMessage>
  encoders: EncoderCatalog
  /** 'local' allows loopback and file sources and webhooks; 'cloud' will refuse them. */
  mode: 'local' | 'cloud'
  /** The tenant a request acts for when no API keys are configured (local mode: 'local'); every store key starts with it. */
  tenantOf: (c: Context) => string
  /** API keys (stored hashed), each mapping to a tenant: when given, every route but /health and /openapi.json needs one. */
  apiKeys?: ApiKeyStore
  /** Requests per tenant: over it, 429 with Retry-After. */
  rateLimit?: RateLimit
  /** The LLM for hypotheses and verification; null: none (503). Left out: read once from LLM_* in `env`. */
  llm?: LlmClient | null
  /** Where LLM_* settings are read (default process.env). */
  env?: Record<string, string | undefined>
  /** Per-token windows re-encoded on demand (the local server, which holds the encoders); see AnalysisContext. */
  windowMiner?: WindowMiner
  /** Texts encoded as a dataset was, for documents like a text (the local server, which holds the encoders). */
  textEncoder?: TextEncoder
  /** Documents re-encoded token by token, for where latents fire in one (the local server, which holds the encoders). */
  documentActivations?: DocumentActivationsReader
  /** Texts encoded token by token, for a text's latents (the local server, which holds the encoders). */
  textActivations?: TextActivationsReader
  now?: () => Date
  version?: string
  /** Label embeddings for search, correlations and targeted clustering (offline hashing by default). */
  embedder?: Embedder
  /** Heavy analyses (clustering) run as jobs on this queue; without it POST /clusters and /jobs are not served. */
  analysisQueue?: JobQueue<AnalysisQueueMessage>
  /** Analysis implementations (tests inject their own); the real services by default. */
  runners?: AnalysisRunners
  /** POST /clusters answers directly up to this many documents, else queues a job. */
  directMaxDocuments?: number
  /** GET /correlations answers directly up to this many documents, else queues a job (with an analysis queue). */
  correlationsDirectMaxDocuments?: number
  /**
   * Similar documents hold at most this many (document, latent) entries of the query's columns at once (default
   * SIMILAR_BLOCK_ENTRIES, ~1M: tens of MB, within a Worker's 128 MB); more is faster for large datasets.
   */
  similarBlockEntries?: number
  /** POST /uploads refuses bodies over this many bytes (default UPLOAD_MAX_BYTES from `env`, else 100 MB). */
  uploadMaxBytes?: number
  /** Answers over ready datasets (diff, latent page, correlations, search, documents) kept in this process; false: none. */
  answerCache?: AnswerCache | false
}

export type AppEnv = { Variables: { tenant: string } }

/** AppDeps with its defaults filled in (once, by createApp): what every route is registered with. */
export type Deps = AppDeps & { embedder: Embedder; answerCache: AnswerCache | false }

/** Deps of a server that runs analysis jobs (POST /clusters, GET /jobs). */
export type QueuedDeps = Deps & { analysisQueue: JobQueue<AnalysisQueueMessage> }

/**
 * The defaults, in one place: label embeddings are the offline hashing embedder unless the entry point passes
 * another (e.g. embedderFromEnv), and answers are cached in this process unless `answerCache: false`.
 */
export function resolveDeps(deps: AppDeps): Deps {
  return {
    ...deps,
    embedder: deps.embedder ?? new OfflineEmbedder(),
    answerCache: deps.answerCache ?? new AnswerCache()
  }
}

export function hasAnalysisQueue(deps: Deps): deps is QueuedDeps {
  return deps.analysisQueue !== undefined
}

/**
 * The AnalysisContext of one request: what every analysis service takes. The LLM is the app's one client (resolved
 * once per deps object, see llmOf); services use it only for the options that ask for one.
 */
export function analysisContext(deps: Deps, tenant: string, signal?: AbortSignal): AnalysisContext {
  return {
    objects: deps.objects,
    datasets: deps.datasets,
    encoders: deps.encoders,
    embedder: deps.embedder,
    tenant,
    signal,
    llm: llmOf(deps).llm,
    windowMiner: deps.windowMiner,
    textEncoder: deps.textEncoder,
    documentActivations: deps.documentActivations,
    textActivations: deps.textActivations
  }
}
