/** @module The columns of a documents shard, as their readers and writers see them (no Parquet library here). */

/**
 * One documents shard, columnar, under its Parquet column names (the names DuckDB or pandas users see).
 * `row` is the dataset row, ascending; `metadata` and `messages` are JSON text.
 */
export interface DocumentColumns {
  row: Int32Array
  id: string[]
  text: string[]
  metadata: string[]
  token_count: Int32Array
  /** 1 when the document was cut at the encoder's max tokens. */
  truncated: Uint8Array
  /** Tokens left out of pooling (special, outlier-norm and role-masked tokens). */
  masked_tokens: Int32Array
  /** Chat documents only: the `[{ role, content }]` list as JSON ('' for plain text), to re-render them later. */
  messages?: string[]
}
export type DocumentColumnName = keyof DocumentColumns

/** What writeDocumentsShard accepts: the same columns, with plain arrays allowed where typed ones are read back. */
export type DocumentColumnsInput = Omit<DocumentColumns, 'token_count' | 'truncated' | 'masked_tokens'> & {
  token_count: ArrayLike<number>
  truncated: ArrayLike<number | boolean>
  masked_tokens: ArrayLike<number>
}
