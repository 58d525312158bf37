/** @module Metadata keys of the statistics file (stats/latent-stats.parquet), shared by its reader and writer. */
import { HISTOGRAM_EDGES } from '../../analysis/latent-stats.ts'

export const KV_EDGES = 'latentbase.histogram_edges'
export const KV_LAYOUT = 'latentbase.histogram_layout'
export const KV_TOP_K = 'latentbase.top_k'

/** Refuses a file whose histogram edges (its KV_EDGES value) are not this code's: its counts would mean other bins. */
export function checkHistogramEdges(json: string | undefined): void {
  const edges = JSON.parse(json ?? '[]') as number[]
  if (
    edges.length !== HISTOGRAM_EDGES.length ||
    edges.some((e, i) => Math.abs(e - HISTOGRAM_EDGES[i]) > 1e-12 * HISTOGRAM_EDGES[i])
  ) {
    throw new Error('latent statistics were written with other histogram edges')
  }
}
