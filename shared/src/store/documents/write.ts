/** @module Writer of the documents shards: document rows, text, metadata and token counts as Parquet, row groups cut by text size. */
import { STORE_VERSION } from '../../contract/manifest.ts'
import {
  DOCUMENTS_MAX_ROW_GROUP_ROWS,
  DOCUMENTS_PAGE_BYTES,
  DOCUMENTS_ROW_GROUP_BYTES,
  KV,
  type WrittenShard
} from '../format.ts'
import { int32Column, rowGroupRanges, writeTable, type ColumnSource } from '../parquet/write.ts'
import type { DocumentColumnsInput } from './columns.ts'
import { writeBm25Sidecar } from './bm25-sidecar.ts'

export interface DocumentsShardOptions {
  /** Target text + metadata bytes per row group. */
  rowGroupBytes?: number
  maxRowGroupRows?: number
  /** Also write the shard's BM25 sidecar (bm25-sidecar.ts): returned as `bm25`, its size in `file.bm25Bytes`. */
  bm25?: boolean
}

export function writeDocumentsShard(
  columns: DocumentColumnsInput,
  options: DocumentsShardOptions = {}
): WrittenShard & { bm25?: Uint8Array } {
  const n = columns.row.length
  const names = [
    'id',
    'text',
    'metadata',
    'token_count',
    'truncated',
    'masked_tokens',
    ...(columns.messages ? (['messages'] as const) : [])
  ] as const
  for (const name of names) {
    const len = (columns[name] as ArrayLike<unknown>).length
    if (len !== n) throw new Error(`documents column ${name} has ${len} rows, expected ${n}`)
  }
  for (let i = 1; i < n; i++)
    if (columns.row[i] <= columns.row[i - 1])
      throw new Error(`document rows must ascend (row ${columns.row[i]} at ${i})`)
  const targetBytes = options.rowGroupBytes ?? DOCUMENTS_ROW_GROUP_BYTES
  const maxRows = options.maxRowGroupRows ?? DOCUMENTS_MAX_ROW_GROUP_ROWS
  const sizes: number[] = []
  let rows = 0
  let bytes = 0
  for (let i = 0; i < n; i++) {
    rows++
    bytes +=
      columns.text[i].length + columns.metadata[i].length + columns.id[i].length + (columns.messages?.[i].length ?? 0)
    if (bytes >= targetBytes || rows >= maxRows) {
      sizes.push(rows)
      rows = 0
      bytes = 0
    }
  }
  if (rows) sizes.push(rows)
  const docStart = n ? columns.row[0] : 0
  const docCount = n ? columns.row[n - 1] - docStart + 1 : 0
  const out = writeTable(
    [
      int32Column('row', columns.row),
      { name: 'id', data: columns.id, type: 'STRING', nullable: false },
      { name: 'text', data: columns.text, type: 'STRING', nullable: false },
      { name: 'metadata', data: columns.metadata, type: 'JSON', nullable: false },
      { name: 'token_count', data: Int32Array.from(columns.token_count), type: 'INT32', nullable: false },
      { name: 'truncated', data: Array.from(columns.truncated, v => Boolean(v)), type: 'BOOLEAN', nullable: false },
      { name: 'masked_tokens', data: Int32Array.from(columns.masked_tokens), type: 'INT32', nullable: false },
      ...(columns.messages
        ? [{ name: 'messages', data: columns.messages, type: 'JSON', nullable: false } satisfies ColumnSource]
        : [])
    ],
    sizes,
    { [KV.storeVersion]: STORE_VERSION, [KV.shard]: 'documents', [KV.docStart]: docStart, [KV.docCount]: docCount },
    DOCUMENTS_PAGE_BYTES
  )
  const bm25 = options.bm25 ? writeBm25Sidecar(columns.row, columns.text) : undefined
  return {
    bytes: out,
    file: {
      rows: n,
      bytes: out.length,
      rowGroups: rowGroupRanges(columns.row, sizes),
      docStart,
      docCount,
      ...(bm25 ? { bm25Bytes: bm25.length } : {})
    },
    ...(bm25 ? { bm25 } : {})
  }
}
