/** @module Reader of the documents shards: the documents at a list or range of rows, fetching only the pages holding them. */
import type { ShardFile } from '../../contract/manifest.ts'
import { lowerBound } from '../../util/sorted.ts'
import type { ObjectStore } from '../object-store.ts'
import { keyRangeOrSorted, type KeyRange } from '../format.ts'
import {
  allocate,
  inDocOrder,
  openShard,
  overlapTest,
  readColumns,
  wantedSlices,
  type ColumnKind,
  type ColumnOut
} from '../parquet/read.ts'
import type { DocumentColumnName, DocumentColumns } from './columns.ts'

const DOCUMENT_KINDS: Record<DocumentColumnName, ColumnKind> = {
  row: 'i32',
  id: 'str',
  text: 'str',
  metadata: 'str',
  token_count: 'i32',
  truncated: 'bool',
  masked_tokens: 'i32',
  messages: 'str'
}
/** Wanted document rows this close together are read as one span. */
const DOCUMENTS_GAP_ROWS = 16
/**
 * The same without the text columns (token counts, metadata of a slice's rows): their pages hold thousands of rows,
 * so a span per scattered row decoded the same page again and again (a 5% slice of 1M documents: 100k spans).
 */
const NARROW_GAP_ROWS = 1024
const WIDE_COLUMNS: ReadonlySet<DocumentColumnName> = new Set(['text', 'messages'])
const BASE_DOCUMENT_COLUMNS: DocumentColumnName[] = [
  'row',
  'id',
  'text',
  'metadata',
  'token_count',
  'truncated',
  'masked_tokens'
]

/**
 * Documents at the requested rows (a list of rows, a range `{ start, end }`, or every row when left out), ascending
 * by row, each once; rows that no shard holds are left out, so compare `row` with what was asked. Reads only the
 * pages holding those rows. `messages` comes back as '' from shards written without it.
 */
export async function readDocuments<C extends DocumentColumnName = DocumentColumnName>(
  store: ObjectStore,
  datasetPrefix: string,
  files: ShardFile[],
  rows?: ArrayLike<number> | KeyRange,
  columns?: readonly C[]
): Promise<Pick<Required<DocumentColumns>, C | 'row'>> {
  const want: Int32Array | KeyRange =
    rows === undefined ? { start: 0, end: Number.MAX_SAFE_INTEGER } : keyRangeOrSorted(rows)
  const names = [...new Set<DocumentColumnName>(['row', ...(columns ?? BASE_DOCUMENT_COLUMNS)])]
  const overlaps = overlapTest(want)
  const gap = names.some(n => WIDE_COLUMNS.has(n)) ? DOCUMENTS_GAP_ROWS : NARROW_GAP_ROWS
  const pieces: Array<Record<string, ColumnOut>> = []
  for (const file of inDocOrder(files)) {
    const groups = file.rowGroups.filter(g => g.rowCount > 0 && overlaps(g.first, g.last))
    if (!groups.length) continue
    const shard = await openShard(store, datasetPrefix, file)
    const present = new Set(shard.metadata.schema.map(e => e.name))
    const wanted: Record<string, ColumnKind> = {}
    for (const name of names) if (present.has(name)) wanted[name] = DOCUMENT_KINDS[name]
    // Within a group whose rows are dense, read only the spans of wanted rows (close ones merged): with small pages
    // and the offset index, hyparquet then fetches just the pages holding them.
    const spans: Array<[number, number]> = []
    for (const g of groups) {
      if (g.last - g.first + 1 !== g.rowCount) {
        spans.push([g.rowStart, g.rowStart + g.rowCount])
        continue
      }
      if (!(want instanceof Int32Array)) {
        spans.push([
          g.rowStart + Math.max(want.start, g.first) - g.first,
          g.rowStart + Math.min(want.end - 1, g.last) - g.first + 1
        ])
        continue
      }
      const before = spans.length
      for (let i = lowerBound(want, g.first); i < want.length && want[i] <= g.last; i++) {
        const at = g.rowStart + want[i] - g.first
        const last = spans.length > before ? spans[spans.length - 1] : undefined
        if (last && at - last[1] <= gap) last[1] = at + 1
        else spans.push([at, at + 1])
      }
    }
    const reads = await Promise.all(spans.map(([a, b]) => readColumns(shard, wanted, a, b, true)))
    for (const cols of reads) {
      const row = cols.row as Int32Array
      for (const [lo, hi] of wantedSlices(row, want)) {
        const piece: Record<string, ColumnOut> = {}
        for (const [name, col] of Object.entries(cols))
          piece[name] = Array.isArray(col) ? col.slice(lo, hi) : col.subarray(lo, hi)
        for (const name of names) {
          // a column this shard was written without (messages): empty values
          if (!piece[name]) {
            const blank = allocate(DOCUMENT_KINDS[name], hi - lo)
            if (Array.isArray(blank)) blank.fill('')
            piece[name] = blank
          }
        }
        pieces.push(piece)
      }
    }
  }
  const total = pieces.reduce((s, p) => s + p.row.length, 0)
  const out: Record<string, ColumnOut> = {}
  for (const name of names) {
    const dest = allocate(DOCUMENT_KINDS[name], total)
    let at = 0
    for (const p of pieces) {
      const src = p[name]
      if (Array.isArray(dest)) for (let i = 0; i < src.length; i++) dest[at + i] = (src as string[])[i]
      else dest.set(src as Int32Array, at)
      at += src.length
    }
    out[name] = dest
  }
  return out as unknown as Pick<Required<DocumentColumns>, C | 'row'>
}
