/**
 * @module Where chosen latents fire in one stored document: the document re-encoded token by token with the encoder
 * that made its dataset, every window joined back into the document's tokens. Only where a process holds the
 * encoders (the local server, a GPU worker).
 */
import type { Manifest } from '@latentbase/shared/contract/manifest'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { datasetFingerprint, type LoadedEncoder } from '../encode/runtime.ts'
import { packBatch } from '../prepare/batches.ts'
import { prepareDocument } from '../prepare/tokenize.ts'

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

/** Windows run together, at most this many per batch: a long document in window mode has many. */
const WINDOWS_PER_BATCH = 8

/** null when this process does not hold the dataset's encoder as it was (or the row is not stored). */
export function encoderDocumentActivations(
  objects: ObjectStore,
  encoders: Map<string, LoadedEncoder>
): DocumentActivationsReader {
  return async ({ prefix, manifest, poolRoles = ['assistant'] }, row, latents) => {
    const encoder = encoders.get(manifest.encoder.id)
    // Another encoder version (or pooling, or token limit) would fire elsewhere: nothing rather than wrong shading.
    if (
      !encoder ||
      datasetFingerprint(encoder.baseFingerprint, manifest.pooling, manifest.maxTokens, manifest.longDocuments) !==
        manifest.encoderFingerprint
    )
      return null
    const columns = await readDocuments(objects, prefix, manifest.documents.files, [row], ['id', 'text', 'messages'])
    if (columns.row.length !== 1 || Number(columns.row[0]) !== row) return null
    const messages = columns.messages[0] ? JSON.parse(String(columns.messages[0])) : undefined
    const prep = prepareDocument(
      { id: String(columns.id[0]), ...(messages ? { messages } : { text: String(columns.text[0]) }), metadata: {} },
      { ...encoder.prepareContext, poolRoles }
    )
    const n = prep.ids.length
    const L = latents.length
    const activations = new Float32Array(L * n)
    const pooled = new Uint8Array(n)
    if (L > 0 && n > 0) {
      const lead = encoder.prepareContext.bosTokenId !== null && encoder.prepareContext.prependBos ? 1 : 0
      const session = await encoder.createTokenActivationsSession({
        outlierNormRatio: manifest.pooling.outlierNormRatio,
        selectLatents: true
      })
      try {
        for (let w0 = 0; w0 < prep.windows.length; w0 += WINDOWS_PER_BATCH) {
          const windows = prep.windows.slice(w0, w0 + WINDOWS_PER_BATCH)
          const batch = { ...packBatch(windows, encoder.padTokenId), latentIds: latents }
          const res = await session.run(batch)
          const T = batch.seqLen
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
      id: String(columns.id[0]),
      tokens: Array.from(prep.ids, id => encoder.tokenText(id)),
      pooled,
      activations,
      truncated: prep.truncated
    }
  }
}
