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
  const classNames = classLabelNames(metadata.key_value_metadata, spec.metadataFields)
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
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]
      for (const [field, names] of classNames) {
        const v = row[field]
        const at = typeof v === 'bigint' ? Number(v) : v
        // -1 is the Hub's "no label" (unlabelled test splits): kept as it is, like any value outside the names.
        if (typeof at === 'number' && Number.isInteger(at) && at >= 0 && at < names.length) row[field] = names[at]
      }
      yield { row: rowStart + i, value: row }
    }
    rowStart = rowEnd
  }
}

/**
 * Class names of the metadata fields that a Hugging Face `datasets` Parquet file declares as ClassLabel (its
 * "huggingface" key-value metadata: `{ info: { features: { label: { _type: "ClassLabel", names: [...] } } } }`), so
 * a label reads "pos" rather than 1 in slices, facets and diffs, as the Hub's viewer shows it. Anything unreadable
 * there leaves the values as stored.
 */
export function classLabelNames(
  keyValues: Array<{ key: string; value?: string }> | undefined,
  fields: string[]
): Map<string, string[]> {
  const out = new Map<string, string[]>()
  const raw = keyValues?.find(kv => kv.key === 'huggingface')?.value
  if (!raw || !fields.length) return out
  let features: Record<string, { _type?: unknown; names?: unknown }> | undefined
  try {
    features = (JSON.parse(raw) as { info?: { features?: typeof features } }).info?.features
  } catch {
    return out
  }
  if (!features || typeof features !== 'object') return out
  for (const field of fields) {
    const f = Object.hasOwn(features, field) ? features[field] : undefined
    if (f?._type === 'ClassLabel' && Array.isArray(f.names) && f.names.every(n => typeof n === 'string'))
      out.set(field, f.names as string[])
  }
  return out
}
