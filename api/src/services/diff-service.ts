/** @module Loads what a diff needs from the store (counts, or sparse rows for paired and stratified designs) and runs the pure analysis. */
import type { DiffQuery, DiffResult } from '@latentbase/shared/contract/diff'
import { readByDocument, readDocuments } from '@latentbase/shared/store/shards'
import { readLatentStats } from '@latentbase/shared/store/latent-stats'
import { diffLatents, diffPaired, diffLengthControlled } from '@latentbase/shared/analysis/diff'
import type { AppDeps } from '../app.ts'
import { scoreAt } from '@latentbase/shared/contract/latents'
import type { LabelInfo } from '@latentbase/shared/encoders/label-overlay'
import { ApiError } from '../problem.ts'
import { loadLabelInfo } from './latent-page-service.ts'
import { loadReadyDataset, type ReadyDataset } from './ready-dataset.ts'

type Side = ReadyDataset
const loadSide = (deps: AppDeps, tenant: string, id: string, role: string) => loadReadyDataset(deps.datasets, tenant, id, role)

function sideInfo(s: Side) {
  const n = s.manifest.documents.count
  return { id: s.record.id, name: s.record.name, documents: n, meanTokens: n ? s.manifest.documents.tokens / n : 0 }
}

export async function runDiff(deps: AppDeps, tenant: string, q: DiffQuery): Promise<DiffResult> {
  if (q.b.includes(q.a)) throw new ApiError(400, 'invalid-request', `dataset "${q.a}" is both a and b`)
  if (q.minFrequency > q.maxFrequency) throw new ApiError(400, 'invalid-request', `minFrequency (${q.minFrequency}) is above maxFrequency (${q.maxFrequency})`)
  if ((q.pairBy || q.controlLength) && q.b.length > 1) {
    throw new ApiError(400, 'invalid-request', `${q.pairBy ? 'pairBy' : 'controlLength'} compares a with exactly one b; got ${q.b.length}`)
  }
  if (q.pairBy && q.controlLength) throw new ApiError(400, 'invalid-request', 'choose either pairBy or controlLength, not both')

  const a = await loadSide(deps, tenant, q.a, 'a')
  const bs = await Promise.all(q.b.map((id) => loadSide(deps, tenant, id, 'b')))
  for (const b of bs) {
    if (b.manifest.encoderFingerprint !== a.manifest.encoderFingerprint) {
      throw new ApiError(409, 'encoder-mismatch',
        `datasets were encoded differently and cannot be compared: "${a.record.id}" with ${a.manifest.encoder.id} (${a.manifest.encoderFingerprint.slice(0, 12)}, pooling ${a.manifest.pooling.method}) and "${b.record.id}" with ${b.manifest.encoder.id} (${b.manifest.encoderFingerprint.slice(0, 12)}, pooling ${b.manifest.pooling.method}); re-encode one of them with the other's encoder and pooling`)
    }
  }
  const nLatents = a.manifest.encoder.dSae
  if (q.latents) {
    const bad = q.latents.find((l) => l >= nLatents)
    if (bad !== undefined) throw new ApiError(400, 'invalid-request', `latent ${bad} does not exist: encoder ${a.manifest.encoder.id} has latents 0-${nLatents - 1}`)
  }
  const info = await loadLabelInfo(deps.encoders, a.manifest.encoder.id, nLatents, { objects: deps.objects, tenant, fingerprint: a.manifest.encoderFingerprint })
  const labels = info.labels
  const scored = <T extends { latent: number; label: string | null }>(latents: T[]) => withLabelScores(latents, info)
  const options = { limit: q.limit, minFrequency: q.minFrequency, maxFrequency: q.maxFrequency, metric: q.metric, direction: q.direction, latents: q.latents }
  const base = { a: sideInfo(a), b: bs.map(sideInfo), encoder: a.manifest.encoder.id, metric: q.metric }

  if (q.pairBy || q.controlLength) {
    // Paired and stratified designs need every document's latents and one documents column; both sides are read together.
    const b = bs[0]
    const column = q.pairBy ? 'metadata' : 'token_count'
    const [docsA, docsB, csrA, csrB] = await Promise.all([
      readDocuments(deps.objects, a.prefix, a.manifest.documents.files, undefined, [column]),
      readDocuments(deps.objects, b.prefix, b.manifest.documents.files, undefined, [column]),
      readByDocument(deps.objects, a.prefix, a.manifest.latents.byDocument),
      readByDocument(deps.objects, b.prefix, b.manifest.latents.byDocument),
    ])
    if (q.pairBy) {
      const { rowsA, rowsB } = matchPairs(docsA.metadata, docsB.metadata, q.pairBy)
      if (rowsA.length === 0) {
        throw new ApiError(422, 'no-pairs', `no document of "${a.record.id}" shares a metadata "${q.pairBy}" value with a document of "${b.record.id}"; was "${q.pairBy}" listed in metadataFields when the datasets were created?`)
      }
      const out = diffPaired({ a: csrA, b: csrB, rowsA, rowsB, labels, against: b.record.id, options })
      return { ...base, design: 'paired', pairs: rowsA.length, tested: out.tested, latents: scored(out.latents) }
    }
    const out = diffLengthControlled({
      a: csrA, b: csrB, tokensA: Int32Array.from(docsA.token_count, Number), tokensB: Int32Array.from(docsB.token_count, Number),
      labels, against: b.record.id, options,
    })
    return { ...base, design: 'length-stratified', tested: out.tested, latents: scored(out.latents) }
  }
  const stats = await Promise.all([a, ...bs].map((s) => readLatentStats(deps.objects, s.prefix + s.manifest.stats.key, ['doc_count'])))
  const out = diffLatents({
    a: { id: a.record.id, name: a.record.name, documents: a.manifest.documents.count, counts: stats[0].docCount },
    b: bs.map((s, i) => ({ id: s.record.id, name: s.record.name, documents: s.manifest.documents.count, counts: stats[i + 1].docCount })),
    labels, options,
  })
  return { ...base, design: 'independent', tested: out.tested, latents: scored(out.latents) }
}

/** Each latent with its label's source and scores (the label itself is already the merged one). */
function withLabelScores<T extends { latent: number; label: string | null }>(latents: T[], info: LabelInfo): Array<T & { labelSource: string | null; labelScore: ReturnType<typeof scoreAt> }> {
  return latents.map((l) => ({ ...l, labelSource: l.label == null ? null : (info.sources[l.latent] ?? 'imported'), labelScore: scoreAt(info, l.latent) }))
}

/** Rows of A and B whose metadata[field] values match; values that repeat within a dataset are ambiguous and left out. */
export function matchPairs(metaA: ArrayLike<unknown>, metaB: ArrayLike<unknown>, field: string): { rowsA: Int32Array; rowsB: Int32Array } {
  const index = (meta: ArrayLike<unknown>) => {
    const rows = new Map<string, number>()
    const repeated = new Set<string>()
    for (let i = 0; i < meta.length; i++) {
      const m = typeof meta[i] === 'string' ? JSON.parse(meta[i] as string) : meta[i]
      const v = m && typeof m === 'object' ? (m as Record<string, unknown>)[field] : undefined
      if (v === undefined || v === null) continue
      const key = typeof v === 'string' ? v : JSON.stringify(v)
      if (rows.has(key)) repeated.add(key)
      else rows.set(key, i)
    }
    for (const k of repeated) rows.delete(k)
    return rows
  }
  const ia = index(metaA)
  const ib = index(metaB)
  const rowsA: number[] = []
  const rowsB: number[] = []
  for (const [key, row] of ia) {
    const other = ib.get(key)
    if (other !== undefined) { rowsA.push(row); rowsB.push(other) }
  }
  return { rowsA: Int32Array.from(rowsA), rowsB: Int32Array.from(rowsB) }
}
