/**
 * @module Targeted clustering of a dataset: chooses the latents (all, a list, or those whose labels match phrases),
 * reads the by-document shards, and runs the pure clustering in shared/analysis/clustering. No HTTP here: the route
 * (small datasets) and the analysis-job consumer call the same function.
 */
import { ZodError } from 'zod'
import { ClustersRequest, type Cluster, type ClustersResult } from '@latentbase/shared/contract/clusters'
import { binarize } from '@latentbase/shared/analysis/clustering/jaccard'
import {
  clusterDocuments,
  describeClusters,
  NothingSharedError,
  type Clustering
} from '@latentbase/shared/analysis/clustering/cluster'
import { readByDocument } from '@latentbase/shared/store/latent-shards/read-by-document'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import type { FailedItem } from '@latentbase/shared/contract/llm'
import { failedItem } from '@latentbase/shared/llm/client'
import { ApiError, issuesToErrors } from '../problem.ts'
import {
  axisPhrases,
  axisMessages,
  AXIS_ANSWER_TOKENS,
  ClusterNameAnswer,
  clusterNameMessages,
  CLUSTER_NAME_ANSWER_TOKENS,
  requireLlm
} from './llm-helpers.ts'
import type { DryRunEstimate } from '@latentbase/shared/contract/llm'
import { estimatePlan, type PlannedCall } from '@latentbase/shared/llm/cost'
import { TYPICAL_LABEL } from './relabel-service.ts'
import { NAME_DOCUMENT_CHARS, nameClusters } from './cluster-names.ts'
import { clip } from './hypotheses-service.ts'
import type { AnalysisContext } from './context.ts'
import { loadReadyDataset, readDocumentRange } from './ready-dataset.ts'
import { resultHead, sliceDataset } from './slice-service.ts'
import { loadLabelInfo } from './latent-page-service.ts'
import { labelCache, labelMatcher } from './label-match.ts'
import { countClusterLatents, sampleRows, type FittedSample } from '@latentbase/shared/analysis/clustering/assign'
import {
  assignPartBytes,
  clusterLatentRefs,
  DEFAULT_CLUSTER_PART_DOCS,
  mergeClusterParts,
  partBounds,
  readRowsInRanges,
  type ClustersPlan
} from './clusters-fanout.ts'

export type Progress = (fraction: number, phase: string) => void

function parseRequest(request: unknown): ClustersRequest {
  try {
    return ClustersRequest.parse(request)
  } catch (err) {
    if (!(err instanceof ZodError)) throw err
    const errors = issuesToErrors(err.issues)
    throw new ApiError(
      400,
      'invalid-request',
      `invalid clustering request: ${errors.map(e => `${e.path}: ${e.message}`).join('; ')}`,
      { errors }
    )
  }
}

/**
 * Cluster a dataset (or a slice of it). Up to `sampleMaxDocs` documents: exactly, in this process. More: fitted on a
 * seeded sample, then every document (of the slice) assigned part by part, here one part after another (a job fans the parts out
 * over the analysis queue instead: planClusters, clusters-fanout.ts).
 */
export async function computeClusters(
  ctx: AnalysisContext,
  input: unknown,
  progress?: Progress,
  partDocs = DEFAULT_CLUSTER_PART_DOCS
): Promise<ClustersResult> {
  const planned = await planClusters(ctx, input, progress, partDocs)
  if ('result' in planned) return planned.result
  const partials: Uint8Array[] = []
  for (let p = 0; p + 1 < planned.plan.bounds.length; p++) {
    partials.push(await assignPartBytes(ctx, planned.plan, planned.fit, p))
    ;(progress ?? ctx.progress)?.(0.9 + (0.09 * (p + 1)) / (planned.plan.bounds.length - 1), 'assigning')
  }
  return mergeClusterParts(ctx, planned.plan, planned.fit, partials)
}

export type PlannedClusters = { result: ClustersResult } | { plan: ClustersPlan; fit: FittedSample }

/** The answer when the documents fit one fit (sampleMaxDocs); else the fit on a sample and the plan of parts. */
export async function planClusters(
  ctx: AnalysisContext,
  input: unknown,
  progress: Progress | undefined,
  partDocs: number
): Promise<PlannedClusters> {
  const startedAt = Date.now()
  const started = performance.now()
  const report = progress ?? ctx.progress ?? (() => {})
  const request = parseRequest(input)
  const llm = request.axis || request.nameClusters ? requireLlm(ctx.llm, request.axis ? 'axis' : 'nameClusters') : null
  const ledger = llm?.newLedger()
  const failed: FailedItem[] = []
  const ds = await sliceDataset(
    ctx.objects,
    await loadReadyDataset(ctx.datasets, ctx.tenant, request.dataset, 'dataset'),
    request.where,
    'where'
  )
  const { manifest, prefix } = ds
  const nLatents = manifest.encoder.dSae
  const sliceRows = ds.slice?.rows
  // The documents clustered: the slice's rows or the whole dataset's; index i is dataset row sliceRows[i] (or i).
  const nDocs = sliceRows ? sliceRows.length : manifest.documents.count
  // Past sampleMaxDocs they are fitted on a seeded sample of those indexes, then assigned in parts.
  const sample = nDocs > request.sampleMaxDocs ? sampleRows(nDocs, request.sampleMaxDocs, request.seed) : null
  // The dataset rows fitted (ascending): a slice or the sample is clustered as its own matrix, local row i being
  // dataset row fitRows[i].
  const fitRows = sample && sliceRows ? Int32Array.from(sample, i => sliceRows[i]) : (sample ?? sliceRows)
  const datasetRow = (i: number) => (fitRows ? fitRows[i] : i)
  if (request.k > nDocs)
    throw new ApiError(
      400,
      'invalid-request',
      `k=${request.k} is more than the ${nDocs} documents of "${ds.record.id}"${ds.slice ? ` in the slice ${ds.slice.text}` : ''}`
    )
  const bad = request.latents?.find(l => l >= nLatents)
  if (bad !== undefined)
    throw new ApiError(
      400,
      'invalid-request',
      `latent ${bad} does not exist: encoder ${manifest.encoder.id} has latents 0-${nLatents - 1}`
    )

  report(0, 'reading')
  const [csr, labels] = await Promise.all([
    // A slice or a sample keeps only its rows of each range read: memory follows its rows, not the span they cover.
    fitRows
      ? readRowsInRanges(
          (start, end) => readDocumentRange(ctx.objects, ds, start, end),
          fitRows,
          manifest.documents.count,
          partDocs
        )
      : readByDocument(ctx.objects, prefix, manifest.latents.byDocument, undefined, { nDocs, nLatents }),
    loadLabelInfo(ctx.encoders, manifest.encoder.id, nLatents, {
      objects: ctx.objects,
      tenant: ctx.tenant,
      fingerprint: manifest.encoderFingerprint
    })
  ])
  ctx.signal?.throwIfAborted()

  let chosen: number[] | null = request.latents ?? null
  let phrases: ClustersResult['phrases']
  let axis: ClustersResult['axis']
  if (request.axis) {
    report(0.03, 'axis phrases')
    axis = { text: request.axis, phrases: await axisPhrases(llm!, ledger!, request.axis) }
    request.phrases = axis.phrases
  }
  if (request.phrases) {
    report(0.05, 'matching phrases')
    const embeddings = await labelMatcher(labelCache(ctx.objects), manifest.encoderFingerprint, ctx.embedder, labels)
    const vectors = await ctx.embedder.embed(request.phrases)
    const d = embeddings.dimensions
    if (vectors.length !== request.phrases.length * d) {
      throw new Error(
        `embedder ${ctx.embedder.id} returned ${vectors.length} numbers for ${request.phrases.length} phrases of dimension ${d}`
      )
    }
    const union = new Set<number>()
    phrases = request.phrases.map((phrase, p) => {
      const top = embeddings.top(vectors.subarray(p * d, (p + 1) * d), request.latentsPerPhrase)
      for (const l of top.latents) union.add(l)
      return { phrase, latents: Array.from(top.latents) }
    })
    if (union.size === 0) {
      throw new ApiError(
        422,
        'no-labels',
        `no latent of encoder ${manifest.encoder.id} has a label, so phrases cannot choose latents; pass latents instead`
      )
    }
    chosen = [...union]
  }
  const rows = binarize(csr, chosen)
  if (rows.cols.length === 0) {
    throw new ApiError(
      422,
      'no-active-latents',
      `none of the ${rows.nCols || 'chosen'} latents is present in any document of "${ds.record.id}"`
    )
  }
  let emptyDocuments = 0
  for (let i = 0; i < rows.nDocs; i++) if (rows.indptr[i + 1] === rows.indptr[i]) emptyDocuments++

  let out: Clustering
  try {
    out = clusterDocuments(rows, {
      k: request.k,
      method: request.method,
      similarity: request.similarity,
      seed: request.seed,
      progress: (f, phase) => {
        ctx.signal?.throwIfAborted()
        report(0.1 + 0.8 * f, phase)
      }
    })
  } catch (err) {
    if (!(err instanceof NothingSharedError)) throw err
    throw new ApiError(
      422,
      'nothing-shared',
      `cannot cluster "${ds.record.id}"${ds.slice ? ` (slice ${ds.slice.text})` : ''}: ${err.message}; choose other latents, or method kmeans`
    )
  }
  ctx.signal?.throwIfAborted()
  report(0.9, 'describing')
  const refs = await clusterLatentRefs(
    ctx.objects,
    ds,
    describeClusters(rows, out.assignments, request.k, labels.labels),
    labels,
    ds.record.id
  )
  const clusters: Cluster[] = refs.map((latents, c) => ({
    id: c,
    size: out.sizes[c],
    latents,
    central: Array.from(out.central[c], datasetRow)
  }))
  // Fitted on a sample, the clusters are final only after the parts: they are named at the merge (mergeClusterParts).
  if (request.nameClusters && !sample) {
    report(0.92, 'naming clusters')
    await nameClusters(ctx.objects, ds, clusters, llm!, ledger!, failed)
  }

  const k = request.k
  // Sampled: affinities are the fit's alone, so none is answered (the parts assign, they do not score every cluster).
  const top = sample ? 0 : Math.min(request.affinityTop, k)
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
        const tmp = order[s]
        order[s] = order[best]
        order[best] = tmp
      }
      const row: Array<[number, number]> = new Array(top)
      for (let s = 0; s < top; s++) row[s] = [order[s], Math.round(a[order[s]] * 1e6) / 1e6]
      affinities[i] = row
    }
  }
  const result: ClustersResult = {
    ...resultHead(ds, nDocs),
    k,
    method: out.method,
    seed: request.seed,
    similarity: out.similarity,
    latentsUsed: Array.from(rows.latentOf),
    ...(phrases ? { phrases } : {}),
    ...(axis ? { axis } : {}),
    embedder: request.phrases ? ctx.embedder.id : null,
    emptyDocuments,
    ...(out.eigenvalues ? { eigenvalues: Array.from(out.eigenvalues) } : {}),
    seconds: (performance.now() - started) / 1000,
    clusters,
    ...(sliceRows ? { rows: Array.from(sliceRows) } : {}),
    assignments: Array.from(out.assignments),
    ...(affinities ? { affinities } : {}),
    ...(ledger ? { usage: ledger.summary(), failed } : {})
  }
  if (sample) {
    const bounds = partBounds(nDocs, partDocs)
    const { assignments: _a, rows: _r, affinities: _f, ...head } = result
    const fit: FittedSample = {
      rows: sample,
      assignments: out.assignments,
      latentOf: rows.latentOf,
      counts: countClusterLatents(rows, out.assignments, k)
    }
    const fitted = { sample: sample.length, of: nDocs, parts: bounds.length - 1, assign: 'nearest-centroid' as const }
    report(0.9, 'fitted on a sample')
    return {
      plan: {
        version: 1,
        analysis: 'clusters',
        dataset: ds.record.id,
        ...(ds.slice ? { where: ds.slice.text } : {}),
        nDocs,
        k,
        bounds,
        head: { ...head, fit: fitted },
        ...(request.nameClusters ? { nameClusters: true } : {}),
        startedAt
      },
      fit
    }
  }
  report(1, 'done')
  return { result }
}

/**
 * dryRun with axis / nameClusters: the axis call is exact; each naming call is planned with 5 typical labels and 5
 * documents spread over the dataset (cut as the namer cuts them), since the clusters do not exist yet.
 */
export async function estimateClusters(ctx: AnalysisContext, input: unknown): Promise<DryRunEstimate> {
  const request = parseRequest(input)
  const llm = requireLlm(ctx.llm, request.axis ? 'axis' : 'nameClusters')
  const ds = await loadReadyDataset(ctx.datasets, ctx.tenant, request.dataset, 'dataset')
  const plan: PlannedCall[] = []
  if (request.axis)
    plan.push({ step: 'axis', messages: axisMessages(request.axis), expectedOutputTokens: AXIS_ANSWER_TOKENS })
  if (request.nameClusters) {
    // Five documents spread over the dataset stand in for each cluster's central ones (their length and token density).
    const n = ds.manifest.documents.count
    const rows = [...new Set(Array.from({ length: Math.min(5, n) }, (_, i) => Math.floor(((i + 0.5) * n) / 5)))]
    const docs = rows.length
      ? await readDocuments(ctx.objects, ds.prefix, ds.manifest.documents.files, rows, ['text'])
      : { text: [] as string[] }
    const sample = Array.from(docs.text, t => clip(String(t), NAME_DOCUMENT_CHARS))
    const latents = new Array(5).fill({ label: TYPICAL_LABEL, frequencyIn: 0.5, frequencyOut: 0.1 })
    const messages = clusterNameMessages(latents, sample)
    for (let c = 0; c < request.k; c++)
      plan.push({ step: 'name-clusters', messages, expectedOutputTokens: CLUSTER_NAME_ANSWER_TOKENS })
  }
  return {
    dryRun: true,
    model: llm.model,
    tokenScale: llm.tokenScale(),
    ...estimatePlan(plan, llm.prices, llm.tokenScale())
  }
}

/** Characters of each central document shown to the cluster namer. */
