/**
 * @module Per-token windows of chosen (document, latent) pairs, re-encoded with the encoder that made the dataset:
 * what relabelling needs to score labels on documents sampled across activation quantiles. Only where a process
 * holds the encoders (the local server, a GPU worker).
 */
import type { Manifest } from '@latentbase/shared/contract/manifest'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import type { LoadedEncoder } from '../encode/runtime.ts'
import { heldEncoder } from './document-activations.ts'
import { mineWindows } from './top-examples.ts'

export interface MinedWindow {
  latent: number
  doc: number
  tokens: string[]
  activations: number[]
}

export function encoderWindowMiner(objects: ObjectStore, encoders: Map<string, LoadedEncoder>) {
  return async (
    { prefix, manifest, poolRoles = ['assistant'] }: { prefix: string; manifest: Manifest; poolRoles?: string[] },
    pairs: Array<{ latent: number; doc: number }>
  ): Promise<MinedWindow[]> => {
    // Another encoder (or another version of it) would give other activations: nothing rather than wrong windows.
    const encoder = heldEncoder(encoders, manifest)
    if (!encoder) return []
    const wanted = new Map<number, Array<[number, number]>>()
    const nextRank = new Map<number, number>()
    for (const { latent, doc } of pairs) {
      const rank = nextRank.get(latent) ?? 0
      nextRank.set(latent, rank + 1)
      wanted.set(doc, [...(wanted.get(doc) ?? []), [latent, rank]])
    }
    const ranks = Math.max(1, ...nextRank.values())
    const mined = await mineWindows(
      { objects, prefix, encoder, documentFiles: manifest.documents.files, poolRoles },
      wanted,
      ranks
    )
    return mined.latent.map((latent, i) => ({
      latent,
      doc: mined.doc[i],
      tokens: JSON.parse(mined.tokens[i]) as string[],
      activations: JSON.parse(mined.activations[i]) as number[]
    }))
  }
}
