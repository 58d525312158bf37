/** @module The rows of examples/top-examples.parquet, as their writer takes them (no Parquet library here). */

/**
 * Columns of top examples, one entry per (latent, rank): the document row, its pooled value, the token position of
 * the max, where the window of tokens starts, and the window's tokens and activations as JSON arrays.
 */
export interface TopExampleColumns {
  latent: number[]
  rank: number[]
  doc: number[]
  value: number[]
  position: number[]
  windowStart: number[]
  tokens: string[]
  activations: string[]
}
