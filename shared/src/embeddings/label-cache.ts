/** @module Embeddings of an encoder's latent labels, cached in the ObjectStore and in memory, and the top latents for a query. */
/**
 * Stored as int8 with one float scale per label (`_encoders/{fingerprint}/label-embeddings/{embedder}.bin`, plus a
 * `.json` header): a 65k-latent encoder with 1536-d embeddings is 100 MB in int8 and 400 MB in float32, and an edge
 * function has 128 MB. Quantization moves a cosine by about 1/127 of a label's largest coordinate, which reorders
 * only near-ties.
 */
import { sha256Hex } from '../util/sha256.ts'
import type { ObjectStore } from '../store/object-store.ts'
import type { Embedder } from './embedder.ts'

export const LABEL_EMBEDDINGS_FORMAT = 'int8-rowscale-v1'
/**
 * The same codes stored by row without their zeros (dimension uint16 + code int8 each): hashed-feature embedders (the
 * offline one) set ~65 of 512 dimensions per label, so a 16k-label set is 3.4 MB instead of 8.5 MB, which a fresh
 * process reads before its first search. Chosen when it is at most half the dense size; dense files stay readable.
 */
export const LABEL_EMBEDDINGS_SPARSE_FORMAT = 'int8-rowscale-sparse-v1'
type LabelEmbeddingsFormat = typeof LABEL_EMBEDDINGS_FORMAT | typeof LABEL_EMBEDDINGS_SPARSE_FORMAT
/** Labels embedded per call to the embedder (the OpenAI embedder batches further itself). */
const EMBED_CHUNK = 1024

export interface LabelEmbeddings {
  embedderId: string
  dimensions: number
  /** Number of latents (labels), including unlabelled ones. */
  count: number
  /**
   * count x dimensions, row-major; a row is the label's unit vector / scale[row]. With `rows`: only the non-zero
   * codes, row after row, row i's at [rows[i], rows[i + 1]) with their dimensions (ascending) in `dims`.
   */
  codes: Int8Array
  scales: Float32Array
  /** 1 when the latent has a label (unlabelled rows are zero and never chosen). */
  present: Uint8Array
  rows?: Int32Array
  dims?: Uint16Array
}

interface Header {
  format: LabelEmbeddingsFormat
  embedder: string
  dimensions: number
  count: number
  labelsSha256: string
}

/** Key-safe form of an embedder id ('openai:text-embedding-3-small' -> 'openai_text-embedding-3-small'). */
export function embedderKey(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_')
}

export function labelEmbeddingsKey(encoderFingerprint: string, embedderId: string): string {
  return `_encoders/${embedderKey(encoderFingerprint)}/label-embeddings/${embedderKey(embedderId)}.bin`
}

const digests = new WeakMap<ReadonlyArray<string | null>, string>()

/**
 * sha256 of the label list. Memoized per array: catalogs hand out the same array on every request, and hashing 65k
 * labels each time would cost more than the search itself (callers must not mutate a list they passed in).
 */
export function labelsDigest(labels: ReadonlyArray<string | null>): string {
  let d = digests.get(labels)
  if (!d) digests.set(labels, (d = sha256Hex(JSON.stringify(labels))))
  return d
}

const asyncDigests = new WeakMap<ReadonlyArray<string | null>, Promise<string>>()

/**
 * labelsDigest by Web Crypto (native in Node, workerd and Lambda): the same hex, without the plain-JavaScript hash that
 * made a fresh process's first search spend hundreds of ms on 16k labels. Memoized per array like labelsDigest.
 */
export function labelsDigestAsync(labels: ReadonlyArray<string | null>): Promise<string> {
  const known = digests.get(labels)
  if (known) return Promise.resolve(known)
  let d = asyncDigests.get(labels)
  if (!d) {
    d = crypto.subtle.digest('SHA-256', new TextEncoder().encode(JSON.stringify(labels))).then(buf => {
      let hex = ''
      for (const b of new Uint8Array(buf)) hex += b.toString(16).padStart(2, '0')
      digests.set(labels, hex)
      return hex
    })
    asyncDigests.set(labels, d)
  }
  return d
}

/** Quantize unit vectors [n x d] to int8 with a per-row scale (max |x| / 127). */
export function quantizeRows(vectors: Float32Array, n: number, d: number): { codes: Int8Array; scales: Float32Array } {
  const codes = new Int8Array(n * d)
  const scales = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    let max = 0
    for (let j = 0; j < d; j++) max = Math.max(max, Math.abs(vectors[i * d + j]))
    if (max === 0) continue
    const s = max / 127
    scales[i] = s
    for (let j = 0; j < d; j++) codes[i * d + j] = Math.round(vectors[i * d + j] / s)
  }
  return { codes, scales }
}

/**
 * The k latents whose labels are most similar (cosine) to `query` (a unit vector), best first, ties to the lower
 * latent. Unlabelled latents are never returned, so fewer than k may come back.
 */
export function topLatentsByQuery(
  embeddings: LabelEmbeddings,
  query: Float32Array,
  k: number
): { latents: Int32Array; similarities: Float32Array } {
  const { dimensions: d, count, codes, scales, present } = embeddings
  if (query.length !== d) throw new Error(`query has ${query.length} dimensions, the label embeddings ${d}`)
  const kk = Math.max(0, Math.min(k, count))
  // Sorted insertion into a k-long list: k is small (<= a few hundred) next to the latent count.
  const top = new Int32Array(kk).fill(-1)
  const sims = new Float32Array(kk).fill(-Infinity)
  let filled = 0
  // Hashed-feature queries (the offline embedder) have a few dozen non-zero dimensions of 512: the dot product then
  // visits only those, 5x faster over 65k labels (measured 40 -> 7.5 ms a query, 55 of 512 dimensions set). Dense queries take the plain loop.
  let nnz = 0
  for (let j = 0; j < d; j++) if (query[j] !== 0) nnz++
  const sparse = nnz < d / 2
  const dims = new Int32Array(sparse ? nnz : 0)
  const weights = new Float32Array(sparse ? nnz : 0)
  if (sparse)
    for (let j = 0, n = 0; j < d; j++)
      if (query[j] !== 0) {
        dims[n] = j
        weights[n++] = query[j]
      }
  const { rows, dims: rowDims } = embeddings
  for (let i = 0; i < count; i++) {
    if (!present[i]) continue
    let dot = 0
    const base = i * d
    // Every branch adds the non-zero products in ascending dimension order: the same sums whatever the layout.
    if (rows) for (let k = rows[i]; k < rows[i + 1]; k++) dot += query[rowDims![k]] * codes[k]
    else if (sparse) for (let n = 0; n < dims.length; n++) dot += weights[n] * codes[base + dims[n]]
    else for (let j = 0; j < d; j++) dot += query[j] * codes[base + j]
    const s = dot * scales[i]
    if (filled === kk && !(s > sims[kk - 1])) continue
    let at = filled < kk ? filled++ : kk - 1
    while (at > 0 && sims[at - 1] < s) {
      sims[at] = sims[at - 1]
      top[at] = top[at - 1]
      at--
    }
    sims[at] = s
    top[at] = i
  }
  return { latents: top.subarray(0, filled), similarities: sims.subarray(0, filled) }
}

/** Bytes of the sparse layout, or null when it would not be at most half the dense size. */
function sparseSize(e: LabelEmbeddings): number | null {
  const d = e.dimensions
  if (d > 65536) return null
  const limit = (e.count * 5 + e.codes.length) / 2
  const overhead = e.count * 5 + pad4(e.count * 5) + 4 * (e.count + 1)
  // Dense vectors (an API embedder's: 100 MB of codes at 65k x 1536) are ruled out by a few rows, not a full count.
  let rows = 0
  let seen = 0
  for (let i = 0; i < e.count && rows < 64; i++) {
    if (!e.present[i]) continue
    rows++
    for (let j = i * d; j < (i + 1) * d; j++) if (e.codes[j] !== 0) seen++
  }
  let labelled = 0
  for (let i = 0; i < e.count; i++) labelled += e.present[i]
  if (rows && overhead + 3 * (seen / rows) * labelled > 1.5 * limit) return null
  let nnz = 0
  for (let k = 0; k < e.codes.length; k++) if (e.codes[k] !== 0) nnz++
  const bytes = overhead + 3 * nnz
  return bytes <= limit ? bytes : null
}

const pad4 = (n: number) => (4 - (n % 4)) % 4

/** The dense embeddings with their zeros left out (rows, dims, codes), when that halves them at least; else as given. */
function sparsify(e: LabelEmbeddings): LabelEmbeddings {
  if (e.rows || sparseSize(e) === null) return e
  const d = e.dimensions
  const rows = new Int32Array(e.count + 1)
  for (let i = 0; i < e.count; i++) {
    let n = 0
    for (let j = i * d; j < (i + 1) * d; j++) if (e.codes[j] !== 0) n++
    rows[i + 1] = rows[i] + n
  }
  const dims = new Uint16Array(rows[e.count])
  const codes = new Int8Array(rows[e.count])
  for (let i = 0, k = 0; i < e.count; i++)
    for (let j = 0; j < d; j++) {
      const c = e.codes[i * d + j]
      if (c === 0) continue
      dims[k] = j
      codes[k++] = c
    }
  return { ...e, codes, rows, dims }
}

function formatOf(e: LabelEmbeddings): LabelEmbeddingsFormat {
  return e.rows ? LABEL_EMBEDDINGS_SPARSE_FORMAT : LABEL_EMBEDDINGS_FORMAT
}

function encodeBin(e: LabelEmbeddings): Uint8Array {
  const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)
  // Scales first (4-byte aligned), then presence, then the codes; sparse: padding, rows, dims, then the codes.
  if (!e.rows) {
    const out = new Uint8Array(e.count * 4 + e.count + e.codes.length)
    out.set(bytesOf(e.scales), 0)
    out.set(e.present, e.count * 4)
    out.set(bytesOf(e.codes), e.count * 5)
    return out
  }
  const at = e.count * 5 + pad4(e.count * 5)
  const dimsAt = at + 4 * (e.count + 1)
  const out = new Uint8Array(dimsAt + 3 * e.codes.length)
  out.set(bytesOf(e.scales), 0)
  out.set(e.present, e.count * 4)
  out.set(bytesOf(e.rows), at)
  out.set(bytesOf(e.dims!), dimsAt)
  out.set(bytesOf(e.codes), dimsAt + 2 * e.codes.length)
  return out
}

function decodeBin(bytes: Uint8Array, h: Header): LabelEmbeddings | null {
  // Views need 4-byte-aligned offsets; a store's buffer of its own is used as is (8 MB at 16k x 512 dense).
  const owned = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
  const head = { embedderId: h.embedder, dimensions: h.dimensions, count: h.count }
  if (h.format === LABEL_EMBEDDINGS_FORMAT) {
    if (bytes.length !== h.count * 5 + h.count * h.dimensions) return null
    const copy = owned ? bytes : bytes.slice()
    return {
      ...head,
      scales: new Float32Array(copy.buffer, 0, h.count),
      present: new Uint8Array(copy.buffer, h.count * 4, h.count),
      codes: new Int8Array(copy.buffer, h.count * 5, h.count * h.dimensions)
    }
  }
  const at = h.count * 5 + pad4(h.count * 5)
  const dimsAt = at + 4 * (h.count + 1)
  if (bytes.length < dimsAt) return null
  const copy = owned ? bytes : bytes.slice()
  const rows = new Int32Array(copy.buffer, at, h.count + 1)
  const nnz = rows[h.count]
  if (rows[0] !== 0 || bytes.length !== dimsAt + 3 * nnz) return null
  return {
    ...head,
    scales: new Float32Array(copy.buffer, 0, h.count),
    present: new Uint8Array(copy.buffer, h.count * 4, h.count),
    rows,
    dims: new Uint16Array(copy.buffer, dimsAt, nnz),
    codes: new Int8Array(copy.buffer, dimsAt + 2 * nnz, nnz)
  }
}

export interface LabelEmbeddingCacheOptions {
  /** Label sets kept in memory (least recently used goes first). */
  memoryEntries?: number
  log?: (line: string) => void
}

const knownFormat = (f: unknown) => f === LABEL_EMBEDDINGS_FORMAT || f === LABEL_EMBEDDINGS_SPARSE_FORMAT

/** Whether a stored header is for these labels (their digest and count) embedded by this embedder, in a known format. */
function describes(h: Header | null, embedderId: string, digest: string, count: number): h is Header {
  return !!h && knownFormat(h.format) && h.embedder === embedderId && h.labelsSha256 === digest && h.count === count
}

/** Label embeddings per (encoder fingerprint, embedder): memory, then the store, then the embedder (once). */
export class LabelEmbeddingCache {
  private readonly memory = new Map<string, Promise<LabelEmbeddings>>()
  /** Keys this cache has loaded (for any digest): only an unknown key is read before its digest is known. */
  private readonly loadedKeys = new Set<string>()
  constructor(
    readonly objects: ObjectStore,
    private readonly options: LabelEmbeddingCacheOptions = {}
  ) {}

  async get(
    encoderFingerprint: string,
    embedder: Embedder,
    labels: ReadonlyArray<string | null>
  ): Promise<LabelEmbeddings> {
    const key = labelEmbeddingsKey(encoderFingerprint, embedder.id)
    // A key this process has not loaded yet is read from the store while the labels are hashed: the read does not
    // need the digest, and on a cold start the two were the first search's largest waits one after the other (16k
    // labels: an 8 MB read of ~35 ms, a digest of ~15-25 ms). The digest still decides whether what was read is used.
    let stored: ReturnType<LabelEmbeddingCache['readStored']> | undefined
    if (!this.loadedKeys.has(key)) {
      this.loadedKeys.add(key)
      stored = this.readStored(key, embedder.id, labels.length)
      // Marked handled now: it may fail while the digest is awaited; load awaits it again and rethrows.
      stored.catch(() => {})
    }
    const digest = await labelsDigestAsync(labels)
    const id = `${key}\u0000${digest}`
    const hit = this.memory.get(id)
    if (hit) {
      this.memory.delete(id)
      this.memory.set(id, hit)
      return hit
    }
    const loading = this.load(key, digest, embedder, labels, stored)
    loading.catch(() => this.memory.delete(id))
    this.memory.set(id, loading)
    const max = this.options.memoryEntries ?? 4
    while (this.memory.size > max) this.memory.delete(this.memory.keys().next().value!)
    return loading
  }

  /**
   * Make sure the store holds these labels' embeddings, ahead of the first search that needs them: 'current' when it
   * already does (only the small header is read), 'embedded' when they were embedded and written now (through `get`,
   * so a search of this process that asks meanwhile waits for the same work instead of repeating it).
   */
  async warm(
    encoderFingerprint: string,
    embedder: Embedder,
    labels: ReadonlyArray<string | null>
  ): Promise<'current' | 'embedded'> {
    const key = labelEmbeddingsKey(encoderFingerprint, embedder.id)
    const [headerBytes, digest] = await Promise.all([
      this.objects.get(key.replace(/\.bin$/, '.json')),
      labelsDigestAsync(labels)
    ])
    const h = headerBytes ? (JSON.parse(new TextDecoder().decode(headerBytes)) as Header) : null
    if (describes(h, embedder.id, digest, labels.length) && (await this.objects.head(key)) !== null) return 'current'
    await this.get(encoderFingerprint, embedder, labels)
    return 'embedded'
  }

  /**
   * The stored header, then the body it describes (header first: the writer puts the body first and the header last),
   * the body only when the header's format, embedder and count fit; read errors reach the caller, as in load.
   */
  private async readStored(
    key: string,
    embedderId: string,
    count: number
  ): Promise<{ header: Header | null; body: Uint8Array | null }> {
    const bytes = await this.objects.get(key.replace(/\.bin$/, '.json'))
    const header = bytes ? (JSON.parse(new TextDecoder().decode(bytes)) as Header) : null
    const fits = knownFormat(header?.format) && header!.embedder === embedderId && header!.count === count
    return { header, body: fits ? await this.objects.get(key) : null }
  }

  private async load(
    key: string,
    digest: string,
    embedder: Embedder,
    labels: ReadonlyArray<string | null>,
    stored?: Promise<{ header: Header | null; body: Uint8Array | null }>
  ): Promise<LabelEmbeddings> {
    const headerKey = key.replace(/\.bin$/, '.json')
    let h: Header | null = null
    if (stored) h = (await stored).header
    else {
      const headerBytes = await this.objects.get(headerKey)
      h = headerBytes ? (JSON.parse(new TextDecoder().decode(headerBytes)) as Header) : null
    }
    // Labels can be regenerated without the encoder's weights changing: the digest catches that.
    if (describes(h, embedder.id, digest, labels.length)) {
      const bin = stored ? (await stored).body : await this.objects.get(key)
      const e = bin && decodeBin(bin, h)
      if (e) {
        // Dense embeddings that would be half the size sparse (written before the sparse format) are rewritten once.
        const smaller = sparsify(e)
        if (smaller !== e)
          // A store this process may not write to (or a failed write) still leaves it the embeddings it read.
          await this.write(key, smaller, digest).catch((err: unknown) =>
            this.options.log?.(`[labels] could not rewrite ${key} sparse: ${(err as Error).message}`)
          )
        return smaller
      }
    }
    const e = sparsify(await embedLabels(embedder, labels))
    await this.write(key, e, digest)
    this.options.log?.(`[labels] embedded ${e.count} labels with ${embedder.id} -> ${key}`)
    return e
  }

  private async write(key: string, e: LabelEmbeddings, digest: string): Promise<void> {
    // Body first, header last: a reader that finds the header finds a complete body of the same digest.
    await this.objects.put(key, encodeBin(e), { contentType: 'application/octet-stream' })
    const header: Header = {
      format: formatOf(e),
      embedder: e.embedderId,
      dimensions: e.dimensions,
      count: e.count,
      labelsSha256: digest
    }
    await this.objects.put(key.replace(/\.bin$/, '.json'), JSON.stringify(header), { contentType: 'application/json' })
  }
}

/** Embed every present label (in chunks, so a large encoder never holds all float vectors at once). */
export async function embedLabels(embedder: Embedder, labels: ReadonlyArray<string | null>): Promise<LabelEmbeddings> {
  const n = labels.length
  const present = new Uint8Array(n)
  const wanted: number[] = []
  for (let i = 0; i < n; i++)
    if (labels[i] && labels[i]!.trim()) {
      present[i] = 1
      wanted.push(i)
    }
  let d = embedder.dimensions
  let codes = new Int8Array(n * d)
  const scales = new Float32Array(n)
  for (let at = 0; at < wanted.length; at += EMBED_CHUNK) {
    const rows = wanted.slice(at, at + EMBED_CHUNK)
    const vectors = await embedder.embed(rows.map(i => labels[i]!))
    if (d === 0) {
      d = vectors.length / rows.length
      codes = new Int8Array(n * d)
    } // learnt from the first answer
    const q = quantizeRows(vectors, rows.length, d)
    rows.forEach((row, r) => {
      codes.set(q.codes.subarray(r * d, (r + 1) * d), row * d)
      scales[row] = q.scales[r]
    })
  }
  return { embedderId: embedder.id, dimensions: d, count: n, codes, scales, present }
}
