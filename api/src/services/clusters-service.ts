/**
 * @module Targeted clustering of a dataset: chooses the latents (all, a list, or those whose labels match phrases),
 * reads the by-document shards, and runs the pure clustering in shared/analysis/clustering. No HTTP here: the route
 * (small datasets) and the analysis-job consumer call the same function.
 */
import { ZodError } from 'zod'
import { ClustersRequest, type Cluster, type ClustersResult } from '@latentbase/shared/contract/clusters'
import { latentRef } from '@latentbase/shared/contract/latents'
import { binarize } from '@latentbase/shared/analysis/clustering/jaccard'
import { clusterDocuments, describeClusters } from '@latentbase/shared/analysis/clustering/cluster'
import { LabelEmbeddingCache, topLatentsByQuery } from '@latentbase/shared/embeddings/label-cache'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { readByDocument } from '@latentbase/shared/store/shards'
import { ApiError, issuesToErrors } from '../problem.ts'
import type { AnalysisContext } from './context.ts'
import { loadReadyDataset } from './ready-dataset.ts'
import { loadLabelInfo } from './latent-page-service.ts'

export type Progress = (fraction: number, phase: string) => void

const labelCaches = new WeakMap<ObjectStore, LabelEmbeddingCache>()
function labelCache(objects: ObjectStore): LabelEmbeddingCache {
  let c = labelCaches.get(objects)
  if (!c) labelCaches.set(objects, (c = new LabelEmbeddingCache(objects)))
  return c
}

function parseRequest(request: unknown): ClustersRequest {
  try {
    return ClustersRequest.parse(request)
  } catch (err) {
    if (!(err instanceof ZodError)) throw err
    const errors = issuesToErrors(err.issues)
    throw new ApiError(400, 'invalid-request', `invalid clustering request: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, { errors })
  }
}

export async function computeClusters(ctx: AnalysisContext, input: unknown, progress?: Progress): Promise<ClustersResult> {
  const started = performance.now()
  const report = progress ?? ctx.progress ?? (() => {})
  const request = parseRequest(input)
  const ds = await loadReadyDataset(ctx.datasets, ctx.tenant, request.dataset, 'dataset')
  const { manifest, prefix } = ds
  const nLatents = manifest.encoder.dSae
  const nDocs = manifest.documents.count
  if (request.k > nDocs) throw new ApiError(400, 'invalid-request', `k=${request.k} is more than the ${nDocs} documents of "${ds.record.id}"`)
  const bad = request.latents?.find((l) => l >= nLatents)
  if (bad !== undefined) throw new ApiError(400, 'invalid-request', `latent ${bad} does not exist: encoder ${manifest.encoder.id} has latents 0-${nLatents - 1}`)

  report(0, 'reading')
  const [csr, labels] = await Promise.all([
    readByDocument(ctx.objects, prefix, manifest.latents.byDocument, undefined, { nDocs, nLatents }),
    loadLabelInfo(ctx.encoders, manifest.encoder.id, nLatents),
  ])
  ctx.signal?.throwIfAborted()

  let chosen: number[] | null = request.latents ?? null
  let phrases: ClustersResult['phrases']
  if (request.phrases) {
    report(0.05, 'matching phrases')
    const embeddings = await labelCache(ctx.objects).get(manifest.encoderFingerprint, ctx.embedder, labels.labels)
    const vectors = await ctx.embedder.embed(request.phrases)
    const d = embeddings.dimensions
    if (vectors.length !== request.phrases.length * d) {
      throw new Error(`embedder ${ctx.embedder.id} returned ${vectors.length} numbers for ${request.phrases.length} phrases of dimension ${d}`)
    }
    const union = new Set<number>()
    phrases = request.phrases.map((phrase, p) => {
      const top = topLatentsByQuery(embeddings, vectors.subarray(p * d, (p + 1) * d), request.latentsPerPhrase)
      for (const l of top.latents) union.add(l)
      return { phrase, latents: Array.from(top.latents) }
    })
    if (union.size === 0) {
      throw new ApiError(422, 'no-labels', `no latent of encoder ${manifest.encoder.id} has a label, so phrases cannot choose latents; pass latents instead`)
    }
    chosen = [...union]
  }
  const rows = binarize(csr, chosen)
  if (rows.cols.length === 0) {
    throw new ApiError(422, 'no-active-latents', `none of the ${rows.nCols || 'chosen'} latents is present in any document of "${ds.record.id}"`)
  }
  let emptyDocuments = 0
  for (let i = 0; i < rows.nDocs; i++) if (rows.indptr[i + 1] === rows.indptr[i]) emptyDocuments++

  const out = clusterDocuments(rows, {
    k: request.k, method: request.method, seed: request.seed,
    progress: (f, phase) => { ctx.signal?.throwIfAborted(); report(0.1 + 0.8 * f, phase) },
  })
  ctx.signal?.throwIfAborted()
  report(0.9, 'describing')
  const described = describeClusters(rows, out.assignments, request.k, labels.labels)
  const clusters: Cluster[] = described.map((latents, c) => ({
    id: c,
    size: out.sizes[c],
    latents: latents.map((l) => latentRef(labels.labels, labels.sources, l.latent, {
      dataset: ds.record.id, frequencyIn: l.frequencyIn, frequencyOut: l.frequencyOut, difference: l.difference,
    })),
    central: Array.from(out.central[c]),
  }))

  const k = request.k
  const top = Math.min(request.affinityTop, k)
  let affinities: ClustersResult['affinities']
  if (top > 0) {
    affinities = new Array(rows.nDocs)
    const order = new Int32Array(k)
    for (let i = 0; i < rows.nDocs; i++) {
      const a = out.affinities.subarray(i * k, (i + 1) * k)
      for (let c = 0; c < k; c++) order[c] = c
      // Partial selection: top is small next to k.
      for (let s = 0; s < top; s++) {
        let best = s
        for (let t = s + 1; t < k; t++) if (a[order[t]] > a[order[best]]) best = t
        const tmp = order[s]; order[s] = order[best]; order[best] = tmp
      }
      const row: Array<[number, number]> = new Array(top)
      for (let s = 0; s < top; s++) row[s] = [order[s], Math.round(a[order[s]] * 1e6) / 1e6]
      affinities[i] = row
    }
  }
  report(1, 'done')
  return {
    dataset: ds.record.id,
    encoder: manifest.encoder.id,
    documents: nDocs,
    k,
    method: out.method,
    seed: request.seed,
    similarity: out.similarity,
    latentsUsed: Array.from(rows.latentOf),
    ...(phrases ? { phrases } : {}),
    embedder: request.phrases ? ctx.embedder.id : null,
    emptyDocuments,
    ...(out.eigenvalues ? { eigenvalues: Array.from(out.eigenvalues) } : {}),
    seconds: (performance.now() - started) / 1000,
    clusters,
    assignments: Array.from(out.assignments),
    ...(affinities ? { affinities } : {}),
  }
}
