/**
 * @module A text's present latents, encoded as a dataset was (its reader, SAE, pooling and token limit): what "documents
 * like this text" ranks by. Only where a process holds the encoders (the local server, a GPU worker).
 */
import type { Manifest } from '@latentbase/shared/contract/manifest'
import type { LoadedEncoder } from '../encode/runtime.ts'
import { heldEncoder } from './document-activations.ts'
import { packBatch } from '../prepare/batches.ts'
import { prepareDocument } from '../prepare/tokenize.ts'

/** The latents present in `text` (ascending), or null when this process does not hold the dataset's encoder as it was. */
export type TextEncoder = (
  dataset: { manifest: Manifest; poolRoles?: string[] },
  text: string
) => Promise<Int32Array | null>

export function encoderTextEncoder(encoders: Map<string, LoadedEncoder>): TextEncoder {
  return async ({ manifest, poolRoles = ['assistant'] }, text) => {
    // Another encoder version (or pooling, or token limit) would give other latents: none rather than wrong ones.
    const encoder = heldEncoder(encoders, manifest)
    if (!encoder) return null
    const prep = prepareDocument({ id: 'query', text, metadata: {} }, { ...encoder.prepareContext, poolRoles })
    if (!prep.windows.length || prep.pooledTokens === 0) return new Int32Array(0)
    const session = await encoder.createPoolingSession(manifest.pooling)
    try {
      const { pooled } = await session.run(packBatch(prep.windows, encoder.padTokenId))
      // Presence is what the similarity counts: a latent above 0 in any window, whatever the pooling method.
      const nLatents = manifest.encoder.dSae
      const present = new Uint8Array(nLatents)
      for (let b = 0; b < prep.windows.length; b++)
        for (let s = 0; s < nLatents; s++) if (pooled[b * nLatents + s] > 0) present[s] = 1
      const latents: number[] = []
      for (let s = 0; s < nLatents; s++) if (present[s]) latents.push(s)
      return Int32Array.from(latents)
    } finally {
      await session.release()
    }
  }
}
