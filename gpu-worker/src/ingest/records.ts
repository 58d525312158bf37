/** @module Streams the documents of a dataset source (JSONL, JSON array, CSV, Parquet, plain text) as records, skipping bad ones with a reason. */
import type { input } from 'zod'
import { SourceSpec, type ChatMessage } from '@latentbase/shared/contract/dataset'
import { guardedFetch } from '@latentbase/shared/net/url-guard'
import { describeFetchError, openSource, SourceError, type OpenSourceOptions } from './open-source.ts'
import { hubHeaders, hubOptionsFromEnv, listHubDataset, sourceTarget, type HubOptions } from './hub.ts'
import { csvRecords } from './formats/csv.ts'
import { jsonRecords } from './formats/json.ts'
import { jsonlRecords } from './formats/jsonl.ts'
import { parquetRecords } from './formats/parquet.ts'
import { textRecords } from './formats/text.ts'
import { DEFAULT_MAX_RECORD_CHARS } from './formats/text-stream.ts'
import type { RawRecord, SourceDocument, SourceRecord, SourceSkip } from './source-record.ts'

export { SourceError, type SourceErrorCode } from './open-source.ts'
export { isSkip, type SkipReason, type SourceDocument, type SourceRecord, type SourceSkip } from './source-record.ts'
export { JsonValueSplitter } from './formats/json.ts'

export interface ReadSourceOptions extends OpenSourceOptions {
  /** How many records in a row may lack the text (or messages) field before the field is deemed wrong (default 20). */
  wrongFieldAfter?: number
  /** Largest single record, in characters (default 64 Mi). */
  maxRecordChars?: number
  /** Where Hugging Face Hub sources are read, and the token (default: HF_ENDPOINT, HF_TOKEN from the environment). */
  hub?: HubOptions
  /** Told what a source that names a whole Hub dataset was read as (config, split, files). */
  log?: (line: string) => void
}

/** A source spec as given (defaults not yet applied). */
export type SourceSpecInput = input<typeof SourceSpec>

/**
 * Reads the documents of a source, streaming: JSONL line by line, a JSON array element by element,
 * CSV record by record, Parquet row group by row group, plain text by `textUnit`. Bad records come
 * out as `{ skip }`; a source that cannot be read, or whose first records all lack the text field,
 * throws a `SourceError`.
 */
export async function* readSourceDocuments(
  input: SourceSpecInput,
  opts: ReadSourceOptions
): AsyncGenerator<SourceRecord> {
  const spec = SourceSpec.parse(input)
  const maxRecordChars = opts.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS
  const hub = opts.hub ?? hubOptionsFromEnv()
  const target = sourceTarget(spec.url, hub)
  let urls = [target.kind === 'file' ? target.url : '']
  let name: string | undefined
  let format = spec.format
  if (target.kind === 'hub-dataset') {
    if (format && format !== 'parquet')
      throw new SourceError(
        'bad-format',
        `a whole Hub dataset is read from the Parquet files the Hub converts it to: leave format out, or give one of its files (hf://datasets/${target.dataset}/<path>) to read it as ${format}`
      )
    const listing = await listHubDataset(target, hub, hubJsonGetter(opts))
    urls = listing.urls
    format = 'parquet'
    name = `hf://datasets/${target.dataset} (config "${listing.config}", split "${listing.split}")`
    opts.log?.(
      `${name}: ${urls.length} Parquet file(s) of the Hub's conversion${listing.partial ? ' (partial: the Hub converted only the first 5 GB of this split)' : ''}`
    )
  }
  const headersFor = (url: string) => hubHeaders(url, hub)
  // Every file's records in turn, numbered on from the previous file's (rows are positions in the whole source).
  async function* records(): AsyncGenerator<RawRecord> {
    let rowOffset = 0
    for (const url of urls) {
      const source = await openSource({ url, format, textField: spec.textField }, { ...opts, headersFor })
      name ??= source.name
      let rows = 0
      try {
        let raw: AsyncIterable<RawRecord>
        if (source.kind === 'file') raw = parquetRecords(source, spec)
        else if (source.format === 'jsonl') raw = jsonlRecords(source, maxRecordChars)
        else if (source.format === 'json') raw = jsonRecords(source, maxRecordChars)
        else if (source.format === 'csv') raw = csvRecords(source, url, maxRecordChars)
        else raw = textRecords(source, spec.textUnit, spec.textField, maxRecordChars)
        for await (const r of raw) {
          rows = Math.max(rows, r.row + 1)
          yield rowOffset ? { ...r, row: r.row + rowOffset } : r
        }
      } finally {
        await source.close()
      }
      rowOffset += rows
    }
  }
  yield* guardWrongField(
    extractDocuments(records(), spec, opts.signal),
    spec,
    () => name ?? spec.url,
    opts.wrongFieldAfter ?? 20
  )
}

/** GET a JSON document from the Hub's viewer, through the URL guard in cloud mode. */
function hubJsonGetter(opts: ReadSourceOptions) {
  return async (url: string, headers: Record<string, string>) => {
    const get = opts.guard ? guardedFetch(opts.guard) : fetch
    let res: Response
    try {
      res = await get(url, { headers: { 'user-agent': 'latentbase-worker', ...headers }, signal: opts.signal })
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason
      throw new SourceError('unreachable', `${describeFetchError(err, new URL(url).host)} (${url})`, { cause: err })
    }
    return { status: res.status, body: await res.json().catch(() => null) }
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
  if (typeof value === 'bigint')
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value.toString()
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
      else if (part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string')
        texts.push((part as { text: string }).text)
      else return undefined
    }
    return texts.join('')
  }
  return undefined
}

function parseMessages(value: unknown): ChatMessage[] | string {
  let v = value
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v)
    } catch {
      return 'the messages cell is a string that is not JSON'
    }
  }
  if (!Array.isArray(v)) return 'messages is not a list'
  if (v.length === 0) return 'messages is an empty list'
  const out: ChatMessage[] = []
  for (let i = 0; i < v.length; i++) {
    const m = v[i] as { role?: unknown; content?: unknown; from?: unknown; value?: unknown } | null
    if (!m || typeof m !== 'object') return `message ${i} is not an object`
    // ShareGPT-style turns ({ from: "human" | "gpt", value }) are common in published chat data: read as role/content.
    const sharegpt = m.role === undefined && m.content === undefined && typeof m.from === 'string'
    const from = m.from as string
    const role = sharegpt ? (Object.hasOwn(SHAREGPT_ROLES, from) ? SHAREGPT_ROLES[from] : from) : m.role
    if (typeof role !== 'string' || role === '') return `message ${i} has no role`
    const content = contentString(sharegpt ? m.value : m.content)
    if (content === undefined) return `message ${i} has no text content`
    out.push({ role, content })
  }
  return out
}

const SHAREGPT_ROLES: Record<string, string> = { human: 'user', gpt: 'assistant', system: 'system' }

/** A field that holds chat messages (a non-empty list of role/content turns, or a JSON string of one), for hints. */
function looksLikeChat(value: unknown): boolean {
  if (typeof value === 'string' && !value.trimStart().startsWith('[')) return false
  if (!Array.isArray(value) && typeof value !== 'string') return false
  return Array.isArray(parseMessages(value))
}

/** What to set when the records hold chat messages in `field` (said with a wrong-field error). */
function chatHint(field: string): string {
  return `"${field}" holds chat messages: give it as messagesField ({ "messagesField": ${JSON.stringify(field)} }; poolRoles says whose turns are pooled, default ["assistant"])`
}

interface Extracted {
  doc?: SourceDocument
  skip?: SourceSkip
  lacksField?: Record<string, unknown>
  /** The text field holds chat messages, not text. */
  chatInText?: boolean
}

async function* extractDocuments(
  raw: AsyncIterable<RawRecord>,
  spec: SourceSpec,
  signal: AbortSignal | undefined
): AsyncGenerator<Extracted> {
  const chat = spec.messagesField !== undefined
  for await (const r of raw) {
    signal?.throwIfAborted()
    if ('skip' in r) {
      yield { skip: r }
      continue
    }
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
      if (m === undefined) {
        yield { skip: { skip: 'missing-messages-field', row }, lacksField: rec }
        continue
      }
      const messages = parseMessages(m)
      if (typeof messages === 'string') {
        yield { skip: { skip: 'bad-messages', row, detail: messages } }
        continue
      }
      yield { doc: { id, messages, metadata, row } }
      continue
    }
    const text = getField(rec, spec.textField)
    if (text === undefined) {
      yield { skip: { skip: 'missing-text-field', row }, lacksField: rec }
      continue
    }
    if (text === null) {
      yield { skip: { skip: 'empty-text', row } }
      continue
    }
    if (typeof text !== 'string') {
      const chat = looksLikeChat(text)
      yield { skip: { skip: 'text-not-a-string', row, detail: chat ? 'chat messages' : typeof text }, chatInText: chat }
      continue
    }
    if (text.trim() === '') {
      yield { skip: { skip: 'empty-text', row } }
      continue
    }
    yield { doc: { id, text, metadata, row } }
  }
}

/**
 * The field a user most likely meant: one spelled like `field` but for case, else the field holding the most
 * characters of strings, when it is a string in most records and long enough to be prose rather than a label.
 */
function likelyTextField(
  field: string,
  seen: Map<string, number>,
  stringChars: Map<string, number>,
  records: number
): string | undefined {
  const lower = field.toLowerCase()
  const sameButCase = [...seen.keys()].find(k => k.toLowerCase() === lower)
  if (sameButCase !== undefined) return sameButCase
  let best: string | undefined
  let bestChars = 0
  for (const [k, chars] of stringChars) if (chars > bestChars) [best, bestChars] = [k, chars]
  if (best === undefined || (seen.get(best) ?? 0) < records / 2) return undefined
  return bestChars / records >= 16 ? best : undefined
}

/**
 * Passes documents and skips through, but when the first `n` object records all lack the text
 * (or messages) field — or the whole source does — fails naming the fields the records do have:
 * the user most likely gave the wrong field name.
 */
async function* guardWrongField(
  items: AsyncIterable<Extracted>,
  spec: SourceSpec,
  nameOf: () => string,
  n: number
): AsyncGenerator<SourceRecord> {
  let found = false
  let lacking = 0
  const seen = new Map<string, number>()
  /** Characters of string values per field of the records lacking the text field: where the text most likely is. */
  const stringChars = new Map<string, number>()
  /** A field of the records lacking the text field that holds chat messages (checked on the first such record). */
  let chatField: string | undefined
  const field = spec.messagesField ?? spec.textField
  const fail = () => {
    const name = nameOf()
    const fields = [...seen.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 40)
      .map(([k]) => JSON.stringify(k))
    const what = spec.messagesField !== undefined ? 'messagesField' : 'textField'
    const likely =
      spec.messagesField === undefined && chatField === undefined
        ? likelyTextField(field, seen, stringChars, lacking)
        : undefined
    return new SourceError(
      'wrong-field',
      `${lacking === 1 ? 'the only record' : `the first ${lacking} records`} of ${name} ${lacking === 1 ? 'has' : 'have'} no field ${JSON.stringify(field)} (${what}); ` +
        (fields.length ? `the records have the fields ${fields.join(', ')}` : 'the records have no fields') +
        (chatField !== undefined && spec.messagesField === undefined ? `; ${chatHint(chatField)}` : '') +
        (likely !== undefined ? `; the text is most likely in ${JSON.stringify(likely)}: give that as textField` : '')
    )
  }
  for await (const item of items) {
    if (item.doc) {
      found = true
      yield item.doc
      continue
    }
    if (!found && item.chatInText) {
      throw new SourceError('wrong-field', `${nameOf()}: textField ${chatHint(spec.textField)}, not as textField`)
    }
    if (!found && item.lacksField) {
      if (lacking === 0) chatField = Object.keys(item.lacksField).find(k => looksLikeChat(item.lacksField![k]))
      lacking++
      for (const [k, v] of Object.entries(item.lacksField)) {
        seen.set(k, (seen.get(k) ?? 0) + 1)
        if (typeof v === 'string') stringChars.set(k, (stringChars.get(k) ?? 0) + v.length)
      }
      if (lacking >= n) throw fail()
    }
    if (item.skip) yield item.skip
  }
  if (!found && lacking > 0) throw fail()
}
