/** @module Streams the documents of a dataset source (JSONL, JSON array, CSV, Parquet, plain text) as records, skipping bad ones with a reason. */
import { Readable } from 'node:stream'
import * as zlib from 'node:zlib'
import { parse as parseCsv, CsvError } from 'csv-parse'
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema, type Compressors } from 'hyparquet'
import type { input } from 'zod'
import { SourceSpec, type ChatMessage } from '@latentbase/shared/contract/dataset'
import { openSource, SourceError, type OpenSourceOptions, type StreamedSource, type FileSource } from './open-source.ts'

export { SourceError, type SourceErrorCode } from './open-source.ts'

/** One document read from a source. `row` is its position among the source's records (skipped ones included). */
export interface SourceDocument {
  id: string
  text?: string
  messages?: ChatMessage[]
  metadata: Record<string, unknown>
  row?: number
}

export type SkipReason =
  | 'invalid-json' | 'not-an-object' | 'missing-text-field' | 'text-not-a-string' | 'empty-text'
  | 'missing-messages-field' | 'bad-messages'

/** A record that was left out, and why (counted by the caller, never fatal). */
export interface SourceSkip {
  skip: SkipReason
  row: number
  detail?: string
}

export type SourceRecord = SourceDocument | SourceSkip

export function isSkip(r: SourceRecord | { skip: string }): r is SourceSkip {
  return 'skip' in r
}

export interface ReadSourceOptions extends OpenSourceOptions {
  /** How many records in a row may lack the text (or messages) field before the field is deemed wrong (default 20). */
  wrongFieldAfter?: number
  /** Largest single record, in characters (default 64 Mi). */
  maxRecordChars?: number
}

/** A source spec as given (defaults not yet applied). */
export type SourceSpecInput = input<typeof SourceSpec>

/** A parsed record before field extraction. */
type RawRecord = { row: number; value: unknown } | SourceSkip

const DEFAULT_MAX_RECORD_CHARS = 64 * 2 ** 20

/**
 * Reads the documents of a source, streaming: JSONL line by line, a JSON array element by element,
 * CSV record by record, Parquet row group by row group, plain text by `textUnit`. Bad records come
 * out as `{ skip }`; a source that cannot be read, or whose first records all lack the text field,
 * throws a `SourceError`.
 */
export async function* readSourceDocuments(input: SourceSpecInput, opts: ReadSourceOptions): AsyncGenerator<SourceRecord> {
  const spec = SourceSpec.parse(input)
  const maxRecordChars = opts.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS
  const source = await openSource({ url: spec.url, format: spec.format, textField: spec.textField }, opts)
  try {
    let raw: AsyncIterable<RawRecord>
    if (source.kind === 'file') raw = parquetRecords(source, spec)
    else if (source.format === 'jsonl') raw = jsonlRecords(source, maxRecordChars)
    else if (source.format === 'json') raw = jsonRecords(source, maxRecordChars)
    else if (source.format === 'csv') raw = csvRecords(source, spec.url, maxRecordChars)
    else raw = textRecords(source, spec.textUnit, spec.textField, maxRecordChars)
    yield* guardWrongField(extractDocuments(raw, spec, opts.signal), spec, source.name, opts.wrongFieldAfter ?? 20)
  } finally {
    await source.close()
  }
}

// ---------------------------------------------------------------------------------------------
// Field extraction

/** A field by name, or by a dotted path into nested objects when no field has the dotted name itself. */
export function getField(record: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(record, path)) return record[path]
  if (!path.includes('.')) return undefined
  let cur: unknown = record
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = Array.isArray(cur) && /^\d+$/.test(part) ? cur[Number(part)] : (cur as Record<string, unknown>)[part]
  }
  return cur
}

/** Plain JSON-safe values for metadata: bigint from Parquet INT64 becomes a number (or a string when too big), dates ISO strings. */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : value.toString()
  if (value instanceof Date) return value.toISOString()
  if (value === undefined) return null
  if (Array.isArray(value)) return value.map(plain)
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = plain(v)
    return out
  }
  return value
}

function idString(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value)
  return JSON.stringify(plain(value))
}

/** Message content as a string: plain strings, null (tool-call turns) as empty, and lists of text parts joined. */
function contentString(content: unknown): string | undefined {
  if (typeof content === 'string') return content
  if (content === null) return ''
  if (Array.isArray(content)) {
    const texts: string[] = []
    for (const part of content) {
      if (typeof part === 'string') texts.push(part)
      else if (part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string') texts.push((part as { text: string }).text)
      else return undefined
    }
    return texts.join('')
  }
  return undefined
}

function parseMessages(value: unknown): ChatMessage[] | string {
  let v = value
  if (typeof v === 'string') {
    try { v = JSON.parse(v) } catch { return 'the messages cell is a string that is not JSON' }
  }
  if (!Array.isArray(v)) return 'messages is not a list'
  if (v.length === 0) return 'messages is an empty list'
  const out: ChatMessage[] = []
  for (let i = 0; i < v.length; i++) {
    const m = v[i] as { role?: unknown; content?: unknown } | null
    if (!m || typeof m !== 'object') return `message ${i} is not an object`
    if (typeof m.role !== 'string' || m.role === '') return `message ${i} has no role`
    const content = contentString(m.content)
    if (content === undefined) return `message ${i} has no text content`
    out.push({ role: m.role, content })
  }
  return out
}

interface Extracted { doc?: SourceDocument; skip?: SourceSkip; lacksField?: Record<string, unknown> }

async function* extractDocuments(raw: AsyncIterable<RawRecord>, spec: SourceSpec, signal: AbortSignal | undefined): AsyncGenerator<Extracted> {
  const chat = spec.messagesField !== undefined
  for await (const r of raw) {
    signal?.throwIfAborted()
    if ('skip' in r) { yield { skip: r }; continue }
    const { row, value } = r
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      yield { skip: { skip: 'not-an-object', row, detail: Array.isArray(value) ? 'an array' : typeof value } }
      continue
    }
    const rec = value as Record<string, unknown>
    const id = (spec.idField !== undefined ? idString(getField(rec, spec.idField)) : undefined) ?? String(row)
    const metadata: Record<string, unknown> = {}
    for (const f of spec.metadataFields) metadata[f] = plain(getField(rec, f))
    if (chat) {
      const m = getField(rec, spec.messagesField!)
      if (m === undefined) { yield { skip: { skip: 'missing-messages-field', row }, lacksField: rec }; continue }
      const messages = parseMessages(m)
      if (typeof messages === 'string') { yield { skip: { skip: 'bad-messages', row, detail: messages } }; continue }
      yield { doc: { id, messages, metadata, row } }
      continue
    }
    const text = getField(rec, spec.textField)
    if (text === undefined) { yield { skip: { skip: 'missing-text-field', row }, lacksField: rec }; continue }
    if (text === null) { yield { skip: { skip: 'empty-text', row } }; continue }
    if (typeof text !== 'string') { yield { skip: { skip: 'text-not-a-string', row, detail: typeof text } }; continue }
    if (text.trim() === '') { yield { skip: { skip: 'empty-text', row } }; continue }
    yield { doc: { id, text, metadata, row } }
  }
}

/**
 * Passes documents and skips through, but when the first `n` object records all lack the text
 * (or messages) field — or the whole source does — fails naming the fields the records do have:
 * the user most likely gave the wrong field name.
 */
async function* guardWrongField(items: AsyncIterable<Extracted>, spec: SourceSpec, name: string, n: number): AsyncGenerator<SourceRecord> {
  let found = false
  let lacking = 0
  const seen = new Map<string, number>()
  const field = spec.messagesField ?? spec.textField
  const fail = () => {
    const fields = [...seen.entries()].sort((a, b) => b[1] - a[1]).slice(0, 40).map(([k]) => JSON.stringify(k))
    const what = spec.messagesField !== undefined ? 'messagesField' : 'textField'
    return new SourceError('wrong-field',
      `${lacking === 1 ? 'the only record' : `the first ${lacking} records`} of ${name} ${lacking === 1 ? 'has' : 'have'} no field ${JSON.stringify(field)} (${what}); ` +
      (fields.length ? `the records have the fields ${fields.join(', ')}` : 'the records have no fields'))
  }
  for await (const item of items) {
    if (item.doc) { found = true; yield item.doc; continue }
    if (!found && item.lacksField) {
      lacking++
      for (const k of Object.keys(item.lacksField)) seen.set(k, (seen.get(k) ?? 0) + 1)
      if (lacking >= n) throw fail()
    }
    if (item.skip) yield item.skip
  }
  if (!found && lacking > 0) throw fail()
}

// ---------------------------------------------------------------------------------------------
// Text streams

/** UTF-8 decoding across chunk boundaries, with a leading byte-order mark dropped. */
async function* decodeText(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8')
  let first = true
  for await (const chunk of chunks) {
    let s = decoder.decode(chunk, { stream: true })
    if (first && s.length) { s = s.replace(/^\uFEFF/, ''); first = false }
    if (s) yield s
  }
  const rest = decoder.decode()
  if (rest) yield rest
}

/** Lines without their terminators ('\n' or '\r\n'); the last line may lack a newline. */
async function* splitLines(strings: AsyncIterable<string>, maxChars: number, name: string): AsyncGenerator<string> {
  let carry = ''
  for await (const s of strings) {
    let start = 0
    let nl = s.indexOf('\n')
    while (nl !== -1) {
      let line = carry ? carry + s.slice(start, nl) : s.slice(start, nl)
      carry = ''
      if (line.endsWith('\r')) line = line.slice(0, -1)
      yield line
      start = nl + 1
      nl = s.indexOf('\n', start)
    }
    carry += s.slice(start)
    if (carry.length > maxChars) throw tooLarge(name, maxChars)
  }
  if (carry) yield carry.endsWith('\r') ? carry.slice(0, -1) : carry
}

function tooLarge(name: string, maxChars: number): SourceError {
  return new SourceError('too-large', `${name} has a record longer than ${maxChars.toLocaleString('en-US')} characters; split it into smaller documents`)
}

async function* jsonlRecords(source: StreamedSource, maxChars: number): AsyncGenerator<RawRecord> {
  let row = 0
  for await (const line of splitLines(decodeText(source.chunks), maxChars, source.name)) {
    if (line.trim() === '') continue
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch (err) {
      yield { skip: 'invalid-json', row: row++, detail: (err as Error).message }
      continue
    }
    yield { row: row++, value }
  }
}

/**
 * Splits a stream of JSON text into its top-level values without holding more than one value:
 * the elements of a top-level array, or a run of concatenated top-level values (one object per
 * file, pretty-printed objects one after another). It tracks only nesting depth, strings and
 * escapes; each value's text goes to JSON.parse.
 */
export class JsonValueSplitter {
  private mode: 'start' | 'array' | 'sequence' | 'done' = 'start'
  private inValue = false
  private depth = 0
  private inString = false
  private escape = false
  private scalar = false
  private parts: string[] = []
  private partsLength = 0
  constructor(private readonly maxChars = DEFAULT_MAX_RECORD_CHARS, private readonly name = 'the source') {}

  /** Feeds the next piece of text; returns the values completed by it. */
  push(chunk: string): string[] {
    const out: string[] = []
    let start = this.inValue ? 0 : -1
    const n = chunk.length
    for (let i = 0; i < n; i++) {
      const c = chunk.charCodeAt(i)
      if (this.inValue) {
        if (this.inString) {
          if (this.escape) this.escape = false
          else if (c === 92 /* \ */) this.escape = true
          else if (c === 34 /* " */) {
            this.inString = false
            if (this.depth === 0) { out.push(this.take(chunk, start, i + 1)); start = -1 }
          }
          continue
        }
        if (this.scalar) {
          if (c === 44 || c === 93 || c === 125 || c === 32 || c === 10 || c === 13 || c === 9) {
            out.push(this.take(chunk, start, i)); start = -1
            i-- // the terminator is read again outside the value
          }
          continue
        }
        if (c === 34) this.inString = true
        else if (c === 123 || c === 91) this.depth++
        else if (c === 125 || c === 93) {
          this.depth--
          if (this.depth === 0) { out.push(this.take(chunk, start, i + 1)); start = -1 }
        }
        continue
      }
      if (c === 32 || c === 10 || c === 13 || c === 9) continue
      if (this.mode === 'start') {
        if (c === 91 /* [ */) { this.mode = 'array'; continue }
        this.mode = 'sequence'
      } else if (this.mode === 'done') {
        throw new SourceError('bad-format', `${this.name}: unexpected content after the end of the top-level JSON array`)
      } else if (c === 44 /* , */) {
        continue
      } else if (c === 93 /* ] */) {
        if (this.mode === 'array') { this.mode = 'done'; continue }
        throw new SourceError('bad-format', `${this.name} is not valid JSON: an unexpected "]"`)
      }
      this.inValue = true
      start = i
      this.depth = 0
      this.scalar = false
      if (c === 123 || c === 91) this.depth = 1
      else if (c === 34) this.inString = true
      else if (c === 125) throw new SourceError('bad-format', `${this.name} is not valid JSON: an unexpected "}"`)
      else this.scalar = true
    }
    if (this.inValue && start !== -1) {
      const piece = chunk.slice(start)
      this.parts.push(piece)
      this.partsLength += piece.length
      if (this.partsLength > this.maxChars) throw tooLarge(this.name, this.maxChars)
    }
    return out
  }

  /** Ends the text; returns a trailing bare scalar, or throws when the text stops inside a value or array. */
  end(): string[] {
    if (this.inValue) {
      if (this.scalar) {
        const v = this.parts.join('')
        this.parts = []; this.partsLength = 0; this.inValue = false
        return [v]
      }
      throw new SourceError('bad-format', `${this.name} ends inside a JSON value: the file is truncated or not valid JSON`)
    }
    if (this.mode === 'array') throw new SourceError('bad-format', `${this.name} ends before its top-level JSON array is closed: the file is truncated`)
    return []
  }

  private take(chunk: string, start: number, end: number): string {
    this.inValue = false
    const tail = chunk.slice(Math.max(start, 0), end)
    if (this.parts.length === 0) return tail
    const v = this.parts.join('') + tail
    this.parts = []
    this.partsLength = 0
    return v
  }
}

async function* jsonRecords(source: StreamedSource, maxChars: number): AsyncGenerator<RawRecord> {
  const splitter = new JsonValueSplitter(maxChars, source.name)
  let row = 0
  const parse = function* (texts: string[]): Generator<RawRecord> {
    for (const text of texts) {
      try {
        yield { row: row++, value: JSON.parse(text) }
      } catch (err) {
        yield { skip: 'invalid-json', row: row++, detail: (err as Error).message }
      }
    }
  }
  for await (const s of decodeText(source.chunks)) yield* parse(splitter.push(s))
  yield* parse(splitter.end())
}

async function* textRecords(source: StreamedSource, unit: SourceSpec['textUnit'], textField: string, maxChars: number): AsyncGenerator<RawRecord> {
  let row = 0
  const doc = (text: string): RawRecord => ({ row: row++, value: { [textField]: text } })
  if (unit === 'file') {
    const parts: string[] = []
    let length = 0
    for await (const s of decodeText(source.chunks)) {
      parts.push(s)
      length += s.length
      if (length > maxChars) throw tooLarge(source.name, maxChars)
    }
    const text = parts.join('')
    if (text.trim()) yield doc(text)
    return
  }
  const lines = splitLines(decodeText(source.chunks), maxChars, source.name)
  if (unit === 'line') {
    for await (const line of lines) if (line.trim()) yield doc(line)
    return
  }
  let paragraph: string[] = []
  let length = 0
  for await (const line of lines) {
    if (line.trim() === '') {
      if (paragraph.length) { yield doc(paragraph.join('\n')); paragraph = []; length = 0 }
      continue
    }
    paragraph.push(line)
    length += line.length + 1
    if (length > maxChars) throw tooLarge(source.name, maxChars)
  }
  if (paragraph.length) yield doc(paragraph.join('\n'))
}

// ---------------------------------------------------------------------------------------------
// CSV

/** The delimiter of a header line: a tab or semicolon when they split it more than commas do. */
function guessDelimiter(headerLine: string, url: string): string {
  if (/\.tsv(\.gz)?(\?|#|$)/i.test(url)) return '\t'
  const count = (d: string) => headerLine.split(d).length - 1
  const best = [',', '\t', ';'].map((d) => [d, count(d)] as const).sort((a, b) => b[1] - a[1])[0]
  return best[1] > 0 ? best[0] : ','
}

async function* csvRecords(source: StreamedSource, url: string, maxChars: number): AsyncGenerator<RawRecord> {
  const strings = decodeText(source.chunks)[Symbol.asyncIterator]()
  let head = ''
  const buffered: string[] = []
  while (!head.includes('\n')) {
    const r = await strings.next()
    if (r.done) break
    buffered.push(r.value)
    head += r.value
    if (head.length > 1 << 20) break
  }
  const delimiter = guessDelimiter(head.split('\n', 1)[0], url)
  const input = Readable.from((async function* () {
    yield* buffered
    for (;;) {
      const r = await strings.next()
      if (r.done) return
      yield r.value
    }
  })(), { objectMode: false })
  const parser = parseCsv({
    columns: (header: string[]) => header.map((h) => h.trim()),
    bom: true,
    delimiter,
    skip_empty_lines: true,
    relax_column_count: true,
    // Quotes inside unquoted cells (JSON in a TSV) are data, not an error.
    relax_quotes: true,
    max_record_size: maxChars,
  })
  input.on('error', (err) => parser.destroy(err))
  input.pipe(parser)
  let row = 0
  try {
    for await (const record of parser) yield { row: row++, value: record as Record<string, string> }
  } catch (err) {
    if (err instanceof CsvError) {
      if (err.code === 'CSV_MAX_RECORD_SIZE') throw tooLarge(source.name, maxChars)
      throw new SourceError('bad-format', `${source.name} is not valid CSV: ${err.message}`, { cause: err })
    }
    throw err
  } finally {
    input.destroy()
    parser.destroy()
  }
}

// ---------------------------------------------------------------------------------------------
// Parquet

/** Decompressors for the codecs hyparquet does not carry itself (it does SNAPPY), from node:zlib. */
const parquetCompressors: Compressors = {
  GZIP: (input) => zlib.gunzipSync(input),
  BROTLI: (input) => zlib.brotliDecompressSync(input),
  ...(typeof (zlib as { zstdDecompressSync?: unknown }).zstdDecompressSync === 'function'
    ? { ZSTD: (input: Uint8Array) => (zlib as unknown as { zstdDecompressSync(b: Uint8Array): Uint8Array }).zstdDecompressSync(input) }
    : {}),
}

async function* parquetRecords(source: FileSource, spec: SourceSpec): AsyncGenerator<RawRecord> {
  const file = await asyncBufferFromFile(source.path)
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>
  let columnNames: string[]
  try {
    metadata = await parquetMetadataAsync(file)
    columnNames = parquetSchema(metadata).children.map((c) => c.element.name)
  } catch (err) {
    throw new SourceError('bad-format', `${source.name} is not a readable Parquet file (${(err as Error).message})`, { cause: err })
  }
  const primary = spec.messagesField ?? spec.textField
  const topOf = (f: string) => (columnNames.includes(f) ? f : f.split('.')[0])
  if (!columnNames.includes(topOf(primary))) {
    throw new SourceError('wrong-field',
      `${source.name} has no column ${JSON.stringify(primary)} (${spec.messagesField !== undefined ? 'messagesField' : 'textField'}); its columns are ${columnNames.map((c) => JSON.stringify(c)).join(', ')}`)
  }
  // Only the columns a document needs are read: the text column of a wide table can be a small part of it.
  const wanted = [primary, ...(spec.idField ? [spec.idField] : []), ...spec.metadataFields].map(topOf)
  const columns = [...new Set(wanted)].filter((c) => columnNames.includes(c))
  let rowStart = 0
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows)
    let rows: Record<string, unknown>[]
    try {
      rows = await parquetReadObjects({ file, metadata, columns, rowStart, rowEnd, compressors: parquetCompressors })
    } catch (err) {
      throw new SourceError('bad-format', `${source.name}: rows ${rowStart}-${rowEnd - 1} cannot be read (${(err as Error).message})`, { cause: err })
    }
    for (let i = 0; i < rows.length; i++) yield { row: rowStart + i, value: rows[i] }
    rowStart = rowEnd
  }
}
