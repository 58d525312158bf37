/** @module Parquet sources through hyparquet: row group by row group, only the columns a document needs. */
import * as zlib from 'node:zlib'
import {
  asyncBufferFromFile,
  parquetMetadataAsync,
  parquetReadObjects,
  parquetSchema,
  type Compressors
} from 'hyparquet'
import type { SourceSpec } from '@latentbase/shared/contract/dataset'
import { SourceError, type FileSource } from '../open-source.ts'
import type { RawRecord } from '../source-record.ts'

/** Decompressors for the codecs hyparquet does not carry itself (it does SNAPPY), from node:zlib. */
export const parquetCompressors: Compressors = {
  GZIP: input => zlib.gunzipSync(input),
  BROTLI: input => zlib.brotliDecompressSync(input),
  ...(typeof (zlib as { zstdDecompressSync?: unknown }).zstdDecompressSync === 'function'
    ? {
        ZSTD: (input: Uint8Array) =>
          (zlib as unknown as { zstdDecompressSync(b: Uint8Array): Uint8Array }).zstdDecompressSync(input)
      }
    : {})
}

export async function* parquetRecords(source: FileSource, spec: SourceSpec): AsyncGenerator<RawRecord> {
  const file = await asyncBufferFromFile(source.path)
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>
  let columnNames: string[]
  try {
    metadata = await parquetMetadataAsync(file)
    columnNames = parquetSchema(metadata).children.map(c => c.element.name)
  } catch (err) {
    throw new SourceError('bad-format', `${source.name} is not a readable Parquet file (${(err as Error).message})`, {
      cause: err
    })
  }
  const primary = spec.messagesField ?? spec.textField
  const topOf = (f: string) => (columnNames.includes(f) ? f : f.split('.')[0])
  if (!columnNames.includes(topOf(primary))) {
    throw new SourceError(
      'wrong-field',
      `${source.name} has no column ${JSON.stringify(primary)} (${spec.messagesField !== undefined ? 'messagesField' : 'textField'}); its columns are ${columnNames.map(c => JSON.stringify(c)).join(', ')}`
    )
  }
  // Only the columns a document needs are read: the text column of a wide table can be a small part of it.
  const wanted = [primary, ...(spec.idField ? [spec.idField] : []), ...spec.metadataFields].map(topOf)
  const columns = [...new Set(wanted)].filter(c => columnNames.includes(c))
  let rowStart = 0
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows)
    let rows: Record<string, unknown>[]
    try {
      rows = await parquetReadObjects({ file, metadata, columns, rowStart, rowEnd, compressors: parquetCompressors })
    } catch (err) {
      throw new SourceError(
        'bad-format',
        `${source.name}: rows ${rowStart}-${rowEnd - 1} cannot be read (${(err as Error).message})`,
        { cause: err }
      )
    }
    for (let i = 0; i < rows.length; i++) yield { row: rowStart + i, value: rows[i] }
    rowStart = rowEnd
  }
}
