/** @module Parquet writing shared by the store's writers: typed column sources, row-group sizes and their index, one table. */
import { parquetWriteBuffer, type ColumnSource } from 'hyparquet-writer'
import type { RowGroupRange } from '../../contract/manifest.ts'

export type { ColumnSource }

export function int32Column(name: string, data: Int32Array, sortKey = false): ColumnSource {
  // Sorted and small-delta ints: DELTA_BINARY_PACKED is ~25% smaller than dictionaries here, and reads back
  // as an Int32Array rather than a plain Array. A sort key also gets a column index (min/max per page), so a
  // reader finds the pages holding a key without decoding the column.
  return { name, data, type: 'INT32', nullable: false, encoding: 'DELTA_BINARY_PACKED', columnIndex: sortKey }
}

export function floatColumn(name: string, data: Float32Array): ColumnSource {
  return { name, data, type: 'FLOAT', nullable: false, encoding: 'BYTE_STREAM_SPLIT' }
}

export function rowGroupRanges(sortKey: Int32Array, sizes: number[]): RowGroupRange[] {
  const out: RowGroupRange[] = []
  let start = 0
  for (const size of sizes) {
    out.push({ rowStart: start, rowCount: size, first: sortKey[start], last: sortKey[start + size - 1] })
    start += size
  }
  return out
}

export function fixedSizes(rows: number, per: number): number[] {
  if (!(Number.isInteger(per) && per > 0)) throw new RangeError(`rowGroupRows must be a positive integer, got ${per}`)
  const sizes: number[] = []
  for (let at = 0; at < rows; at += per) sizes.push(Math.min(per, rows - at))
  return sizes
}

export function writeTable(
  columnData: ColumnSource[],
  sizes: number[],
  kv: Record<string, string | number>,
  pageSize: number
): Uint8Array {
  const buffer = parquetWriteBuffer({
    columnData,
    pageSize,
    // hyparquet-writer repeats the last size; with no rows any size gives an empty file with the schema.
    rowGroupSize: sizes.length ? sizes : [1],
    kvMetadata: Object.entries(kv).map(([key, value]) => ({ key, value: String(value) })),
    createdBy: 'latentbase (hyparquet-writer)'
  })
  return new Uint8Array(buffer)
}
