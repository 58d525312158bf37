/** @module Synthetic latent stores with realistic statistics (Zipf-like latent frequencies, hundreds of active latents per document, planted topics) for benchmarks and tests. */
import { STORE_VERSION, type Manifest, type ShardFile } from '@latentbase/shared/contract/manifest'
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import type { EncoderInfo } from '@latentbase/shared/contract/encoder'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import type { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { mulberry32 as rng } from '@latentbase/shared/util/random'
import { writeDocumentsShard } from '@latentbase/shared/store/documents/write'
import { writeLatentShards } from '@latentbase/shared/store/latent-shards/write'
import { bm25SidecarKey } from '@latentbase/shared/store/documents/bm25-sidecar'
import { cscKey } from '@latentbase/shared/store/latent-shards/csc'
import { HISTOGRAM_EDGES, mergeStats, statsFromCsr, type LatentStats } from '@latentbase/shared/analysis/latent-stats'
import { writeLatentP90, writeLatentStats } from '@latentbase/shared/store/stats/write'
import { writeFacets } from '@latentbase/shared/store/stats/facets'
import { facetsOf, FacetsMerger } from '@latentbase/shared/analysis/facets'
import { StaticEncoderCatalog } from '@latentbase/shared/catalog/catalog'
import type { PooledCsr } from '@latentbase/shared/analysis/sparse'

export interface SyntheticSpec {
  nDocs: number
  nLatents: number
  /** Mean active latents per document (log-normal spread around it). */
  meanActive?: number
  /** Zipf exponent of latent frequencies. */
  zipf?: number
  /** Planted topics: each document has one, and each topic has `topicLatents` latents firing together. */
  topics?: number
  topicLatents?: number
  /** Chance that a topic latent fires in a document of its topic. */
  topicRate?: number
  seed?: number
  /** Documents per written part (bounds the memory of writing). */
  partDocuments?: number
  rowGroupRows?: number
  /** Write the facets of the metadata keys (default true, as the worker does). */
  facets?: boolean
}

export interface SyntheticDataset {
  manifest: Manifest
  /** The planted topic of each document row. */
  topicOf: Int32Array
  /** The latents of each topic. */
  topicLatents: Int32Array[]
  nnz: number
}

function normal(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())
}

const SYLLABLES = [
  'ka',
  'lo',
  'mi',
  'ter',
  'van',
  'su',
  'rel',
  'no',
  'pa',
  'qua',
  'zen',
  'dor',
  'fi',
  'gul',
  'hex',
  'jor'
]
function word(i: number): string {
  let w = ''
  let x = i + 17
  for (let k = 0; k < 3; k++) {
    w += SYLLABLES[x % SYLLABLES.length]
    x = Math.floor(x / SYLLABLES.length)
  }
  return w
}

/** The topic latents: disjoint, spread over the frequency ranks (seeded), so they are neither all frequent nor all rare. */
function plantTopics(nLatents: number, topics: number, per: number, rand: () => number): Int32Array[] {
  if (topics * per > nLatents / 2)
    throw new RangeError(`${topics} topics of ${per} latents do not fit in half of ${nLatents} latents`)
  const taken = new Uint8Array(nLatents)
  const out: Int32Array[] = []
  for (let t = 0; t < topics; t++) {
    const ls = new Int32Array(per)
    for (let j = 0; j < per; j++) {
      let l: number
      do {
        l = Math.floor(rand() * nLatents)
      } while (taken[l])
      taken[l] = 1
      ls[j] = l
    }
    out.push(ls.sort())
  }
  return out
}

/** Labels of a synthetic encoder: topic latents say their topic, the others a made-up word. */
export function syntheticLabels(nLatents: number, topicLatents: Int32Array[]): string[] {
  const labels = Array.from({ length: nLatents }, (_, l) => `mentions ${word(l)} and ${word(l * 7 + 3)}`)
  topicLatents.forEach((ls, t) => {
    ls.forEach((l, j) => {
      labels[l] = `topic ${word(1000 + t)} aspect ${j}`
    })
  })
  return labels
}

export function syntheticEncoderInfo(id: string, nLatents: number): EncoderInfo {
  return {
    id,
    fingerprint: `synthetic-${id}`,
    hookName: 'blocks.0.hook_resid_post',
    dIn: 64,
    dSae: nLatents,
    architecture: 'topk',
    maxTokens: 512,
    labelled: nLatents
  }
}

export function syntheticCatalog(id: string, nLatents: number, topicLatents: Int32Array[]): StaticEncoderCatalog {
  return new StaticEncoderCatalog([
    { info: syntheticEncoderInfo(id, nLatents), labels: syntheticLabels(nLatents, topicLatents) }
  ])
}

/** The topic latents a spec plants (the same for every dataset written with the same nLatents, topics and topicSeed). */
export function syntheticTopics(nLatents: number, topics = 20, topicLatents = 40, topicSeed = 7): Int32Array[] {
  return plantTopics(nLatents, topics, topicLatents, rng(topicSeed))
}

/**
 * Write a ready dataset (shards, statistics, manifest, record) of synthetic pooled latents. Latent frequencies follow
 * a Zipf law over a seeded permutation of the latents; each document also fires ~topicRate of its topic's latents.
 */
export async function writeSyntheticDataset(
  objects: ObjectStore,
  datasets: DatasetStore,
  target: { tenant: string; id: string; encoderId: string; name?: string },
  spec: SyntheticSpec
): Promise<SyntheticDataset> {
  const { nDocs, nLatents } = spec
  const meanActive = spec.meanActive ?? 300
  const s = spec.zipf ?? 1.05
  const rand = rng(spec.seed ?? 1)
  const topicLatents = syntheticTopics(nLatents, spec.topics ?? 20, spec.topicLatents ?? 40)
  const topicRate = spec.topicRate ?? 0.6
  const partDocs = spec.partDocuments ?? 16_384

  // Zipf weights over a fixed permutation (seed 11, shared by every dataset of this size, so datasets are comparable).
  const perm = Int32Array.from({ length: nLatents }, (_, i) => i)
  const prand = rng(11)
  for (let i = nLatents - 1; i > 0; i--) {
    const j = Math.floor(prand() * (i + 1))
    const t = perm[i]
    perm[i] = perm[j]
    perm[j] = t
  }
  const cdf = new Float64Array(nLatents)
  let total = 0
  for (let r = 0; r < nLatents; r++) {
    total += 1 / (r + 20) ** s
    cdf[r] = total
  }
  for (let r = 0; r < nLatents; r++) cdf[r] /= total

  const prefix = layout.datasetPrefix(target.tenant, target.id)
  const topicOf = new Int32Array(nDocs)
  const documentFiles: ShardFile[] = []
  const byDocumentFiles: ShardFile[] = []
  const byLatentFiles: ShardFile[] = []
  let stats: LatentStats | null = null
  const facets = spec.facets !== false ? new FacetsMerger() : null
  let nnzTotal = 0
  let tokensTotal = 0
  const mark = new Int32Array(nLatents).fill(-1)
  const scratch = new Int32Array(nLatents)

  for (let part = 0, start = 0; start < nDocs; part++, start += partDocs) {
    const n = Math.min(partDocs, nDocs - start)
    const indptr = new Int32Array(n + 1)
    let cap = Math.ceil(n * meanActive * 1.6) + 1024
    let latents = new Int32Array(cap)
    let values = new Float32Array(cap)
    let positions = new Int32Array(cap)
    const texts: string[] = []
    const ids: string[] = []
    const tokenCounts = new Int32Array(n)
    let nnz = 0
    for (let i = 0; i < n; i++) {
      const doc = start + i
      const topic = Math.floor(rand() * topicLatents.length)
      topicOf[doc] = topic
      const m = Math.max(20, Math.min(nLatents >> 1, Math.round(meanActive * Math.exp(0.5 * normal(rand) - 0.125))))
      let k = 0
      for (let d = 0; d < m; d++) {
        const u = rand()
        let lo = 0
        let hi = nLatents - 1
        while (lo < hi) {
          const mid = (lo + hi) >> 1
          if (cdf[mid] < u) lo = mid + 1
          else hi = mid
        }
        const l = perm[lo]
        if (mark[l] !== doc) {
          mark[l] = doc
          scratch[k++] = l
        }
      }
      for (const l of topicLatents[topic])
        if (rand() < topicRate && mark[l] !== doc) {
          mark[l] = doc
          scratch[k++] = l
        }
      const row = scratch.subarray(0, k).sort()
      if (nnz + k > cap) {
        cap = Math.ceil((nnz + k) * 1.5)
        const grow = <T extends Int32Array | Float32Array>(a: T, make: (c: number) => T) => {
          const b = make(cap)
          b.set(a.subarray(0, nnz))
          return b
        }
        latents = grow(latents, c => new Int32Array(c))
        values = grow(values, c => new Float32Array(c))
        positions = grow(positions, c => new Int32Array(c))
      }
      const tokens = 40 + Math.floor(rand() * 200)
      tokenCounts[i] = tokens
      tokensTotal += tokens
      for (let j = 0; j < k; j++) {
        latents[nnz + j] = row[j]
        values[nnz + j] = Math.exp(0.7 * normal(rand))
        positions[nnz + j] = Math.floor(rand() * tokens)
      }
      nnz += k
      indptr[i + 1] = nnz
      ids.push(`doc-${doc}`)
      const words: string[] = []
      for (let w = 0; w < 4; w++) words.push(word(1000 + topic))
      for (let w = 0; w < 20; w++) words.push(word(Math.floor(rand() * 3000)))
      texts.push(words.join(' '))
    }
    const csr: PooledCsr = {
      nDocs: n,
      nLatents,
      indptr,
      latents: latents.subarray(0, nnz),
      values: values.subarray(0, nnz),
      positions: positions.subarray(0, nnz)
    }
    const shards = writeLatentShards(csr, { docOffset: start, rowGroupRows: spec.rowGroupRows })
    // item: the same in every dataset of a spec, a key for paired diffs (pairBy=item).
    const metadata = Array.from({ length: n }, (_, i) => JSON.stringify({ topic: topicOf[start + i], item: start + i }))
    facets?.add(facetsOf(csr, metadata, tokenCounts))
    const docsShard = writeDocumentsShard(
      {
        row: Int32Array.from({ length: n }, (_, i) => start + i),
        id: ids,
        text: texts,
        // item: the same in every dataset of a spec, a key for paired diffs (pairBy=item).
        metadata,
        token_count: tokenCounts,
        truncated: new Uint8Array(n),
        masked_tokens: new Int32Array(n)
      },
      { bm25: true } // as the worker writes them
    )
    const keys = {
      docs: layout.documentsShard(part),
      byDoc: layout.byDocumentShard(part),
      byLat: layout.byLatentShard(part)
    }
    await objects.put(prefix + keys.docs, docsShard.bytes)
    await objects.put(prefix + bm25SidecarKey(keys.docs), docsShard.bm25!)
    await objects.put(prefix + keys.byDoc, shards.byDocument.bytes)
    await objects.put(prefix + keys.byLat, shards.byLatent.bytes)
    await objects.put(prefix + cscKey(keys.byLat), shards.byLatent.csc!)
    documentFiles.push({ key: keys.docs, ...docsShard.file })
    byDocumentFiles.push({ key: keys.byDoc, ...shards.byDocument.file })
    byLatentFiles.push({ key: keys.byLat, ...shards.byLatent.file })
    const partStats = statsFromCsr(csr, start)
    stats = stats ? mergeStats(stats, partStats) : partStats
    nnzTotal += nnz
  }
  await objects.put(prefix + layout.latentStats(), writeLatentStats(stats!))
  await objects.put(prefix + layout.latentP90(), writeLatentP90(stats!))
  const merged = facets?.result()
  if (merged) await objects.put(prefix + layout.facets(), writeFacets(merged))

  const at = new Date(0).toISOString()
  const record: DatasetRecord = {
    id: target.id,
    tenant: target.tenant,
    name: target.name ?? target.id,
    status: 'ready',
    encoder: target.encoderId,
    pooling: { method: 'max', outlierNormRatio: 100 },
    source: { inline: nDocs },
    createdAt: at,
    updatedAt: at,
    progress: { documents: { done: nDocs, total: nDocs }, tokens: tokensTotal },
    attempts: 1
  }
  await datasets.putRecord(record)
  const manifest: Manifest = {
    storeVersion: STORE_VERSION,
    datasetId: target.id,
    tenant: target.tenant,
    createdAt: at,
    encoder: { id: target.encoderId, hookName: 'blocks.0.hook_resid_post', dSae: nLatents, architecture: 'topk' },
    encoderFingerprint: `synthetic-${target.encoderId}`,
    pooling: { method: 'max', outlierNormRatio: 100 },
    maxTokens: 512,
    longDocuments: 'truncate',
    documents: { count: nDocs, tokens: tokensTotal, files: documentFiles },
    latents: { nnz: nnzTotal, byDocument: byDocumentFiles, byLatent: byLatentFiles },
    stats: { key: layout.latentStats(), histogramEdges: Array.from(HISTOGRAM_EDGES) },
    ...(merged ? { facets: { key: layout.facets(), fields: merged.fields.map(f => f.key) } } : {}),
    summary: { documents: nDocs, synthetic: true }
  }
  await datasets.commitManifest(target.tenant, target.id, manifest)
  return { manifest, topicOf, topicLatents, nnz: nnzTotal }
}
