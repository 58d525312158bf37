/**
 * @module A dataset's encoder fingerprint computed where no encoder is loaded (the API, in any runtime: Web Crypto):
 * the same digest as the worker's datasetFingerprint (gpu-worker/src/encode/runtime.ts), from the catalog's base
 * fingerprint and the dataset's pooling and reader settings. An append checks it before queueing a batch.
 */
import type { PoolingSpec } from '../contract/dataset.ts'

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

export async function datasetFingerprintOf(
  baseFingerprint: string,
  pooling: PoolingSpec,
  maxTokens: number,
  longDocuments: 'truncate' | 'window'
): Promise<string> {
  const text = canonicalJson({
    base: baseFingerprint,
    pooling: { method: pooling.method, outlierNormRatio: pooling.outlierNormRatio },
    maxTokens,
    longDocuments,
    sparsification: null
  })
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))
  return Array.from(digest, b => b.toString(16).padStart(2, '0')).join('')
}
