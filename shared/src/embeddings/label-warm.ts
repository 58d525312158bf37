/**
 * @module Embeds an encoder's labels into the store when the encoder is registered (a worker or the local server
 * starting), so that no search, clustering or correlation request, in any process, is the one that pays for it.
 */
import type { PublishableEncoder } from '../catalog/store-catalog.ts'
import type { Embedder } from './embedder.ts'
import type { LabelEmbeddingCache } from './label-cache.ts'
import { encoderMatchTexts } from './label-text.ts'

export interface LabelWarmResult {
  encoder: string
  outcome: 'current' | 'embedded' | 'no-labels' | 'failed'
  labels: number
  ms: number
  error?: string
}

/**
 * LATENTBASE_WARM_LABEL_EMBEDDINGS: "on" (the default) or "off". Off where the process that registers encoders has
 * another embedder than the API's (set EMBEDDINGS_* alike on both), or where an API embedder should not be billed for
 * an encoder no one searches.
 */
export function warmLabelEmbeddingsFromEnv(value = process.env.LATENTBASE_WARM_LABEL_EMBEDDINGS): boolean {
  if (value === undefined || value === '' || value === 'on') return true
  if (value === 'off') return false
  throw new Error(`LATENTBASE_WARM_LABEL_EMBEDDINGS must be "on" or "off", got "${value}"`)
}

/**
 * One encoder after another (an API embedder is rate-limited; the offline one uses the CPU): an encoder whose labels
 * cannot be embedded is reported and the others still warmed, since a missing cache only slows the first search down.
 */
export async function warmLabelEmbeddings(
  cache: LabelEmbeddingCache,
  encoders: Iterable<PublishableEncoder>,
  embedder: Embedder,
  log: (line: string) => void = () => {}
): Promise<LabelWarmResult[]> {
  const results: LabelWarmResult[] = []
  for (const e of encoders) {
    const t = performance.now()
    const texts = encoderMatchTexts(e.labels, e.labelSources ?? [])
    const labels = texts.reduce((n, l) => (l?.trim() ? n + 1 : n), 0)
    const result: LabelWarmResult = { encoder: e.info.id, outcome: 'no-labels', labels, ms: 0 }
    try {
      if (labels > 0) result.outcome = await cache.warm(e.info.fingerprint, embedder, texts)
    } catch (err) {
      result.outcome = 'failed'
      result.error = (err as Error).message
    }
    result.ms = performance.now() - t
    if (result.outcome === 'embedded')
      log(
        `[labels] ${e.info.id}: embedded ${labels} labels with ${embedder.id} in ${(result.ms / 1000).toFixed(1)} s, ahead of the first search`
      )
    else if (result.outcome === 'failed')
      log(
        `[labels] ${e.info.id}: could not embed its labels ahead of time (the first search will try again): ${result.error}`
      )
    results.push(result)
  }
  return results
}
