/**
 * @module Where chosen latents fire in one stored document, or in a text: re-encoded token by token with the encoder
 * that made the dataset, every window joined back into the document's tokens. Only where a process holds the
 * encoders (the local server, a GPU worker).
 */
import type { Manifest } from '@latentbase/shared/contract/manifest'
import type { ChatMessage } from '@latentbase/shared/contract/dataset'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { datasetFingerprint, type LoadedEncoder } from '../encode/runtime.ts'
import { packBatch } from '../prepare/batches.ts'
import { prepareDocument, type PreparedDocument } from '../prepare/tokenize.ts'

export interface DocumentTokenActivations {
  /** The document's own id (from its source). */
  id: string
  /** The document's tokens as the reader read them: BOS (when the reader has one) and every kept token. */
  tokens: string[]
  /** Per token: 1 where it counts for pooling (0: BOS, special tokens, unpooled chat roles, outlier-norm tokens). */
  pooled: Uint8Array
  /** [latents * tokens], latent-major: each asked latent's activation at each token (0 where not pooled). */
  activations: Float32Array
  truncated: boolean
}

export type DocumentActivationsReader = (
  dataset: { prefix: string; manifest: Manifest; poolRoles?: string[] },
  row: number,
  latents: Int32Array
) => Promise<DocumentTokenActivations | null>

export interface TextTokenActivations extends Omit<DocumentTokenActivations, 'id'> {
  /** The latents shown: those asked, or the text's strongest (largest activation on any token) first. */
  latents: Int32Array
  /** Latents that fire on at least one pooled token. */
  present: number
}

export type TextActivationsReader = (
  dataset: { manifest: Manifest; poolRoles?: string[] },
  /** A text, or chat messages (rendered with the chat template, pooled on the dataset's roles). */
  text: string | { messages: ChatMessage[] },
  /** `weights`: per latent, what its max is multiplied by to rank (e.g. its idf in the dataset); 1 without. */
  want: { latents?: Int32Array; top: number; weights?: Float32Array }
) => Promise<TextTokenActivations | null>

/** Windows run together, at most this many per batch: a long document in window mode has many. */
const WINDOWS_PER_BATCH = 8

/** The dataset's encoder as it was, or null: another version (pooling, token limit) would fire elsewhere. */
export function heldEncoder(encoders: Map<string, LoadedEncoder>, manifest: Manifest): LoadedEncoder | null {
  const encoder = encoders.get(manifest.encoder.id)
  if (
    !encoder ||
    datasetFingerprint(encoder.baseFingerprint, manifest.pooling, manifest.maxTokens, manifest.longDocuments) !==
      manifest.encoderFingerprint
  )
    return null
  return encoder
}

/** null when this process does not hold the dataset's encoder as it was (or the row is not stored). */
export function encoderDocumentActivations(
  objects: ObjectStore,
  encoders: Map<string, LoadedEncoder>
): DocumentActivationsReader {
  return async ({ prefix, manifest, poolRoles = ['assistant'] }, row, latents) => {
    const encoder = heldEncoder(encoders, manifest)
    if (!encoder) return null
    const columns = await readDocuments(objects, prefix, manifest.documents.files, [row], ['id', 'text', 'messages'])
    if (columns.row.length !== 1 || Number(columns.row[0]) !== row) return null
    const messages = columns.messages[0] ? JSON.parse(String(columns.messages[0])) : undefined
    const prep = prepareDocument(
      { id: String(columns.id[0]), ...(messages ? { messages } : { text: String(columns.text[0]) }), metadata: {} },
      { ...encoder.prepareContext, poolRoles }
    )
    const { max: _max, ...tokens } = await tokenActivations(encoder, prep, latents, manifest.pooling.outlierNormRatio)
    return { id: String(columns.id[0]), ...tokens }
  }
}

/** A text encoded as the dataset's documents were: its strongest latents (or those asked) and where each fires. */
export function encoderTextActivations(encoders: Map<string, LoadedEncoder>): TextActivationsReader {
  return async ({ manifest, poolRoles = ['assistant'] }, text, want) => {
    const encoder = heldEncoder(encoders, manifest)
    if (!encoder) return null
    const prep = prepareDocument(
      { id: 'text', ...(typeof text === 'string' ? { text } : { messages: text.messages }), metadata: {} },
      { ...encoder.prepareContext, poolRoles }
    )
    const outlierNormRatio = manifest.pooling.outlierNormRatio
    // "Strongest" and "present" go by each latent's largest activation over the pooled tokens, whatever the dataset's
    // pooling method; the per-token pass returns it for every latent, so chosen latents take one pass, and the text's
    // strongest two over the same (kept) session: one to find them, one for their tokens.
    if (want.latents) {
      const { max, ...tokens } = await tokenActivations(encoder, prep, want.latents, outlierNormRatio)
      return { latents: want.latents, present: countPositive(max), ...tokens }
    }
    const { max } = await tokenActivations(encoder, prep, Int32Array.of(0), outlierNormRatio)
    const weights = want.weights
    const rank = weights ? max.map((m, s) => (m > 0 ? m * weights[s] + 1e-30 : 0)) : max
    const latents = strongest(rank, want.top)
    const { max: _max, ...tokens } = await tokenActivations(encoder, prep, latents, outlierNormRatio)
    return { latents, present: countPositive(max), ...tokens }
  }
}

function countPositive(values: Float32Array): number {
  let n = 0
  for (let i = 0; i < values.length; i++) if (values[i] > 0) n++
  return n
}

/** The `k` latents with the largest values above 0, largest first (ties: lower id first). */
function strongest(values: Float32Array, k: number): Int32Array {
  const order: number[] = []
  for (let s = 0; s < values.length; s++) if (values[s] > 0) order.push(s)
  order.sort((a, b) => values[b] - values[a] || a - b)
  return Int32Array.from(order.slice(0, k))
}

/** Per-token activations of `latents` over a prepared document, its windows joined back into its tokens. */
async function tokenActivations(
  encoder: LoadedEncoder,
  prep: PreparedDocument,
  latents: Int32Array,
  outlierNormRatio: number
): Promise<Omit<DocumentTokenActivations, 'id'> & { max: Float32Array }> {
  const n = prep.ids.length
  const L = latents.length
  const activations = new Float32Array(L * n)
  const pooled = new Uint8Array(n)
  let max = new Float32Array(0)
  if (L > 0 && n > 0) {
    const lead = encoder.prepareContext.bosTokenId !== null && encoder.prepareContext.prependBos ? 1 : 0
    const session = await encoder.createTokenActivationsSession({ outlierNormRatio, selectLatents: true })
    try {
      for (let w0 = 0; w0 < prep.windows.length; w0 += WINDOWS_PER_BATCH) {
        const windows = prep.windows.slice(w0, w0 + WINDOWS_PER_BATCH)
        const batch = { ...packBatch(windows, encoder.padTokenId), latentIds: latents }
        const res = await session.run(batch)
        const T = batch.seqLen
        // Every latent's max over this batch's pooled tokens, merged over the document's windows.
        const tokenMax = res.tokenMax!
        const S = tokenMax.length / windows.length
        if (max.length !== S) max = new Float32Array(S)
        for (let i = 0; i < tokenMax.length; i++) if (tokenMax[i] > max[i % S]) max[i % S] = tokenMax[i]
        windows.forEach((w, b) => {
          // A later window's own BOS (t < lead) stands on no document token of its own.
          for (let t = w0 + b === 0 ? 0 : lead; t < w.ids.length; t++) {
            const at = w.offset + t
            if (at >= n) break
            const on = res.poolMask[b * T + t] > 0
            pooled[at] = on ? 1 : 0
            if (!on) continue
            for (let c = 0; c < L; c++) activations[c * n + at] = res.activations[(b * T + t) * L + c]
          }
        })
      }
    } finally {
      await session.release()
    }
  }
  return {
    tokens: Array.from(prep.ids, id => encoder.tokenText(id)),
    pooled,
    activations,
    truncated: prep.truncated,
    max
  }
}
