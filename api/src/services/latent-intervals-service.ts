/**
 * @module GET /latents/{latent}/intervals: documents sampled from equal-width intervals of a latent's pooled value,
 * with token windows re-encoded where this process holds the encoder: what the latent does below its top examples.
 */
import { activationIntervals } from '@latentbase/shared/analysis/intervals'
import { documentText, estimateCharOffset, snippet } from '@latentbase/shared/analysis/search'
import { poolRolesOf } from '@latentbase/shared/contract/dataset'
import { LatentIntervalsQuery, type LatentIntervals } from '@latentbase/shared/contract/latents'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { readByLatent, readPositionsAt } from '@latentbase/shared/store/latent-shards/read-by-latent'
import type { AnalysisContext } from './context.ts'
import { checkLatent, loadLabelInfo } from './latent-page-service.ts'
import { loadReadyDataset } from './ready-dataset.ts'
import { sliceDataset } from './slice-service.ts'

const SNIPPET = 240

export async function latentIntervals(
  ctx: AnalysisContext,
  latent: number,
  input: LatentIntervalsQuery | Record<string, unknown>
): Promise<LatentIntervals> {
  const query = LatentIntervalsQuery.parse(input)
  const whole = await loadReadyDataset(ctx.datasets, ctx.tenant, query.dataset, 'dataset')
  checkLatent(whole, latent)
  const ds = await sliceDataset(ctx.objects, whole, query.where, 'where')
  const { manifest, prefix } = ds
  const [csc, info] = await Promise.all([
    readByLatent(
      ctx.objects,
      prefix,
      manifest.latents.byLatent,
      [latent],
      { nDocs: manifest.documents.count, nLatents: manifest.encoder.dSae },
      { positions: false }
    ),
    loadLabelInfo(ctx.encoders, manifest.encoder.id, manifest.encoder.dSae, {
      objects: ctx.objects,
      tenant: ctx.tenant,
      fingerprint: manifest.encoderFingerprint
    })
  ])
  const a = csc.indptr[latent]
  const docs = csc.docs.subarray(a, csc.indptr[latent + 1])
  const values = csc.values.subarray(a, csc.indptr[latent + 1])
  let include: ((entry: number) => boolean) | undefined
  if (ds.slice) {
    const member = new Uint8Array(manifest.documents.count)
    for (const r of ds.slice.rows) member[r] = 1
    include = e => member[docs[e]] === 1
  }
  const split = activationIntervals(values, query.intervals, query.perInterval, query.seed, include)
  const picked = split.intervals.flatMap(i => i.picked)
  const rows = picked.map(e => docs[e])
  // Sidecars hold no positions: those of the picked few are read at their file rows of the by-latent shards.
  // (With fileRows, the positions slot carries each entry's row in its file.)
  const slots = Int32Array.from(picked, e => csc.positions[a + e])
  const positions = csc.fileRows
    ? await readPositionsAt(ctx.objects, prefix, manifest.latents.byLatent, rows, slots)
    : slots
  const byRow = [...new Set(rows)].sort((x, y) => x - y)
  const [texts, mined] = await Promise.all([
    readDocuments(ctx.objects, prefix, manifest.documents.files, byRow, ['id', 'text', 'messages', 'token_count']),
    ctx.windowMiner && rows.length
      ? ctx.windowMiner(
          { prefix, manifest, poolRoles: poolRolesOf(whole.record) },
          rows.map(doc => ({ latent, doc }))
        )
      : Promise.resolve([])
  ])
  const at = new Map<number, number>()
  for (let i = 0; i < texts.row.length; i++) at.set(texts.row[i], i)
  const windowOf = new Map(mined.map(w => [w.doc, w]))
  // Without a window, the text around the peak: positions are tokens, so its character is estimated.
  const snippetOf = (i: number, position: number) => {
    const text = documentText(texts.text[i], texts.messages[i])
    // A truncated document was cut at maxTokens (its truncated column has no page index: inferred, as search does).
    const tokens = Number(texts.token_count[i])
    const peakChar = estimateCharOffset(text.length, tokens, tokens >= manifest.maxTokens, position)
    return snippet(text, [], SNIPPET, peakChar)
  }
  let next = 0
  return {
    latent,
    label: info.labels[latent] ?? null,
    encoder: manifest.encoder.id,
    dataset: whole.record.id,
    ...(ds.slice ? { where: ds.slice.text } : {}),
    documents: split.count,
    max: split.max,
    // Windows when the miner gave any (another encoder version than the dataset's gives none).
    windows: mined.length > 0,
    intervals: split.intervals.map(iv => ({
      from: iv.from,
      to: iv.to,
      documents: iv.count,
      examples: iv.picked.map(e => {
        const k = next++
        const row = docs[e]
        const i = at.get(row)!
        const w = windowOf.get(row)
        return {
          row,
          id: texts.id[i] ?? String(row),
          value: values[e],
          position: positions[k],
          tokens: w ? w.tokens : null,
          activations: w ? w.activations : null,
          snippet: snippetOf(i, positions[k])
        }
      })
    }))
  }
}
