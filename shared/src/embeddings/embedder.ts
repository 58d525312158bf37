/** @module The Embedder adapter: text embeddings for label-to-query and label-to-label similarity. */

export interface Embedder {
  /** Stable id of the model (part of cache keys): e.g. 'offline-hash-v1' or 'openai:text-embedding-3-small'. */
  readonly id: string
  readonly dimensions: number
  /** Unit-normalized embeddings, row-major [texts.length x dimensions]. */
  embed(texts: string[]): Promise<Float32Array>
}
