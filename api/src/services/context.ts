/** @module What an analysis service needs to answer a request: store, catalog, embedder and the tenant. */
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import type { DatasetStore } from '@latentbase/shared/store/dataset-store'
import type { EncoderCatalog } from '@latentbase/shared/catalog/catalog'
import type { Embedder } from '@latentbase/shared/embeddings/embedder'
import type { LlmClient } from '@latentbase/shared/llm/client'
import type { Manifest } from '@latentbase/shared/contract/manifest'
import type { DocumentActivationsReader, TextActivationsReader } from '@latentbase/gpu-worker/job/document-activations'

export interface AnalysisContext {
  objects: ObjectStore
  datasets: DatasetStore
  encoders: EncoderCatalog
  embedder: Embedder
  tenant: string
  /** Progress of a long analysis, 0..1, with a short phase name. */
  progress?: (fraction: number, phase: string) => void
  signal?: AbortSignal
  /** The LLM for the options that need one (search expand/rerank, cluster axis and names); absent or null: none configured. */
  llm?: LlmClient | null
  /**
   * Per-token activations of chosen (document, latent) pairs, re-encoded by the encoder: where a process holds the
   * encoders (the local server, a GPU worker). Relabelling then scores labels on windows sampled across activation
   * quantiles; without it, on the stored top examples only.
   */
  windowMiner?: WindowMiner
  /**
   * A text's present latents, encoded as the dataset was (null: this process does not hold that encoder): documents
   * like a text. Where a process holds the encoders (the local server); elsewhere such a query is a 501.
   */
  textEncoder?: TextEncoder
  /** One document's per-token activations of chosen latents, re-encoded (null: the encoder is not held); as textEncoder. */
  documentActivations?: DocumentActivationsReader
  /** A text's strongest latents and their per-token activations, encoded as the dataset was; as textEncoder. */
  textActivations?: TextActivationsReader
}

export type TextEncoder = (
  dataset: { manifest: Manifest; poolRoles?: string[] },
  text: string
) => Promise<Int32Array | null>

export interface MinedWindow {
  latent: number
  doc: number
  tokens: string[]
  activations: number[]
}
export type WindowMiner = (
  /** `poolRoles`: whose chat turns the dataset pooled (default the assistant's), so windows peak where encoding did. */
  dataset: { prefix: string; manifest: Manifest; poolRoles?: string[] },
  pairs: Array<{ latent: number; doc: number }>
) => Promise<MinedWindow[]>
