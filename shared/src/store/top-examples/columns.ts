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

/** Empty columns to push rows into. */
export function emptyTopExampleColumns(): TopExampleColumns {
  return { latent: [], rank: [], doc: [], value: [], position: [], windowStart: [], tokens: [], activations: [] }
}

/**
 * One stored row (as a Parquet reader returns it: numbers may come back as bigints, the JSON columns as strings or,
 * from some writers, already parsed) appended under `rank`.
 */
export function pushTopExampleRow(out: TopExampleColumns, row: Record<string, unknown>, rank: number): void {
  const json = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v))
  out.latent.push(Number(row.latent))
  out.rank.push(rank)
  out.doc.push(Number(row.doc))
  out.value.push(Number(row.value))
  out.position.push(Number(row.position))
  out.windowStart.push(Number(row.window_start))
  out.tokens.push(json(row.tokens))
  out.activations.push(json(row.activations))
}
