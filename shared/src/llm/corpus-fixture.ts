/** @module A labelled corpus for tests of the LLM methods: a ready dataset whose documents carry a marker phrase in a known share of rows, with a latent that fires exactly on them. */
import type { DatasetRecord } from '../contract/dataset.ts'
import type { Manifest } from '../contract/manifest.ts'
import type { ObjectStore } from '../store/object-store.ts'
import type { DatasetStore } from '../store/dataset-store.ts'
import { layout } from '../store/layout.ts'
import { writeDocumentsShard } from '../store/documents/write.ts'
import { writeLatentShards } from '../store/latent-shards/write.ts'
import { cscKey } from '../store/latent-shards/csc.ts'
import { HISTOGRAM_EDGES, statsFromCsr } from '../analysis/latent-stats.ts'
import { writeLatentStats } from '../store/stats/write.ts'
import { csrFromCoo } from '../analysis/sparse.ts'
import { StaticEncoderCatalog } from '../catalog/catalog.ts'
import { mulberry32 } from '../util/random.ts'
import { readDocuments } from '../store/documents/read.ts'
import { emptyTopExampleColumns } from '../store/top-examples/columns.ts'
import { writeTopExamples } from '../store/top-examples/write.ts'

export const MARKER = 'ZORBLAX'
export const MARKED_LATENT = 1
export const MARKED_N_LATENTS = 24
export const MARKED_ENCODER = 'marked'

const WORDS = [
  'river',
  'stone',
  'quiet',
  'market',
  'lantern',
  'harbor',
  'copper',
  'meadow',
  'signal',
  'winter',
  'ledger',
  'orchard',
  'velvet',
  'engine',
  'candle',
  'thunder'
]

/** Labels of the fixture encoder: latent 1 is the marker, the others plain words. */
export function markedLabels(): string[] {
  const labels = Array.from({ length: MARKED_N_LATENTS }, (_, l) => `the word "${WORDS[l % WORDS.length]}" (${l})`)
  labels[0] = 'sentence openings'
  labels[MARKED_LATENT] = `mentions of the ${MARKER} protocol`
  return labels
}

export function markedCatalog(): StaticEncoderCatalog {
  return new StaticEncoderCatalog([
    {
      info: {
        id: MARKED_ENCODER,
        fingerprint: 'fp-marked',
        hookName: 'h',
        dIn: 8,
        dSae: MARKED_N_LATENTS,
        architecture: 'topk',
        maxTokens: 512,
        labelled: MARKED_N_LATENTS
      },
      labels: markedLabels()
    }
  ])
}

/**
 * Writes a ready dataset of `nDocs` documents of which exactly round(markerShare * nDocs), chosen by a seeded shuffle,
 * contain MARKER; latent MARKED_LATENT fires on exactly those, latent 0 on all, the others at random (20%).
 * Returns the marked flag per row.
 */
export async function writeMarkedDataset(
  objects: ObjectStore,
  datasets: DatasetStore,
  target: { tenant: string; id: string; nDocs: number; markerShare: number; seed?: number }
): Promise<Uint8Array> {
  const { tenant, id, nDocs } = target
  const rand = mulberry32(target.seed ?? 1)
  const order = Int32Array.from({ length: nDocs }, (_, i) => i)
  for (let i = nDocs - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    const t = order[i]
    order[i] = order[j]
    order[j] = t
  }
  const marked = new Uint8Array(nDocs)
  for (let k = 0; k < Math.round(target.markerShare * nDocs); k++) marked[order[k]] = 1
  const docs: number[] = [],
    lats: number[] = [],
    vals: number[] = []
  const texts: string[] = []
  for (let i = 0; i < nDocs; i++) {
    const words: string[] = []
    docs.push(i)
    lats.push(0)
    vals.push(1)
    if (marked[i]) {
      docs.push(i)
      lats.push(MARKED_LATENT)
      vals.push(1 + rand())
    }
    for (let l = 2; l < MARKED_N_LATENTS; l++) {
      if (rand() < 0.2) {
        docs.push(i)
        lats.push(l)
        vals.push(0.5 + rand())
        words.push(WORDS[l % WORDS.length])
      }
    }
    const filler = Array.from({ length: 12 }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(' ')
    texts.push(
      `Document ${id}-${i}. The ${words.join(' and ') || 'plain'} report: ${filler}.${marked[i] ? ` It follows the ${MARKER} protocol.` : ''}`
    )
  }
  const csr = csrFromCoo(nDocs, MARKED_N_LATENTS, docs, lats, vals)
  const prefix = layout.datasetPrefix(tenant, id)
  const shards = writeLatentShards(csr)
  const docShard = writeDocumentsShard({
    row: Int32Array.from({ length: nDocs }, (_, i) => i),
    id: texts.map((_, i) => `${id}-${i}`),
    text: texts,
    metadata: texts.map(() => '{}'),
    token_count: texts.map(t => t.length >> 2),
    truncated: texts.map(() => 0),
    masked_tokens: texts.map(() => 0)
  })
  await objects.put(prefix + layout.byDocumentShard(0), shards.byDocument.bytes)
  await objects.put(prefix + layout.byLatentShard(0), shards.byLatent.bytes)
  await objects.put(prefix + cscKey(layout.byLatentShard(0)), shards.byLatent.csc!)
  await objects.put(prefix + layout.documentsShard(0), docShard.bytes)
  await objects.put(prefix + layout.latentStats(), writeLatentStats(statsFromCsr(csr)))
  const now = '2026-01-01T00:00:00.000Z'
  const record: DatasetRecord = {
    id,
    tenant,
    name: id,
    status: 'ready',
    encoder: MARKED_ENCODER,
    pooling: { method: 'max', outlierNormRatio: 100 },
    source: { inline: nDocs },
    createdAt: now,
    updatedAt: now,
    progress: { documents: { done: nDocs, total: nDocs }, tokens: 0 },
    attempts: 1
  }
  await datasets.putRecord(record)
  const manifest: Manifest = {
    storeVersion: 1,
    datasetId: id,
    tenant,
    createdAt: now,
    encoder: { id: MARKED_ENCODER, hookName: 'h', dSae: MARKED_N_LATENTS, architecture: 'topk' },
    encoderFingerprint: 'fp-marked',
    pooling: { method: 'max', outlierNormRatio: 100 },
    maxTokens: 512,
    longDocuments: 'truncate',
    documents: { count: nDocs, tokens: 0, files: [{ key: layout.documentsShard(0), ...docShard.file }] },
    latents: {
      nnz: csr.latents.length,
      byDocument: [{ key: layout.byDocumentShard(0), ...shards.byDocument.file }],
      byLatent: [{ key: layout.byLatentShard(0), ...shards.byLatent.file }]
    },
    stats: { key: layout.latentStats(), histogramEdges: Array.from(HISTOGRAM_EDGES) },
    summary: {}
  }
  await datasets.commitManifest(tenant, id, manifest)
  return marked
}

/** The word each latent of the fixture fires on (its label says it): latent 1 the marker, latents >= 2 a plain word. */
export const markedWordOf = (latent: number): string =>
  latent === MARKED_LATENT ? MARKER : (/"([^"]+)"/.exec(markedLabels()[latent])?.[1] ?? '')

/**
 * Top examples of a dataset written by writeMarkedDataset, in the store's layout, for latents 1-5: each latent's 8
 * first documents holding its word, a window of whitespace tokens around that word, activation 1.5 on it and 0
 * elsewhere. The manifest then names the file.
 */
export async function writeMarkedTopExamples(
  objects: ObjectStore,
  datasets: DatasetStore,
  target: { tenant: string; id: string }
): Promise<void> {
  const { tenant, id } = target
  const manifest = (await datasets.getManifest(tenant, id))!
  const prefix = layout.datasetPrefix(tenant, id)
  const docs = await readDocuments(objects, prefix, manifest.documents.files, undefined, ['text'])
  const col = emptyTopExampleColumns()
  for (let latent = 1; latent <= 5; latent++) {
    const word = markedWordOf(latent)
    let rank = 0
    for (let i = 0; i < docs.row.length && rank < 8; i++) {
      const words = String(docs.text[i]).split(' ')
      const at = words.findIndex(w => w.replace(/\W/g, '') === word)
      if (at < 0) continue
      const lo = Math.max(0, at - 8)
      const window = words.slice(lo, at + 9).map((w, j) => (j === 0 ? w : ` ${w}`))
      col.latent.push(latent)
      col.rank.push(rank++)
      col.doc.push(docs.row[i])
      col.value.push(2 - rank / 10)
      col.position.push(at)
      col.windowStart.push(lo)
      col.tokens.push(JSON.stringify(window))
      col.activations.push(JSON.stringify(window.map((_, j) => (lo + j === at ? 1.5 : 0))))
    }
  }
  await objects.put(prefix + layout.topExamples(), writeTopExamples(col))
  await datasets.commitManifest(tenant, id, { ...manifest, topExamples: { key: layout.topExamples(), perLatent: 8 } })
}

/** Correlations query parameters that keep every co-occurring pair of the fixture (no filter drops one). */
export function everyPairQuery(dataset: string): Record<string, string> {
  return {
    dataset,
    minNpmi: '-1',
    minFrequency: '0',
    maxFrequency: '1',
    minActivation: '0',
    maxLabelSimilarity: '1',
    dropAdjacent: 'false',
    dropPositional: 'false',
    limit: '500'
  }
}
