/** @module `npm run eval:retrieval`: MAP, P@10 and P@50 of sae, bm25, hybrid, example (the query encoded), random and oracle latents on a labelled corpus. */
/**
 * `npm run eval:retrieval`: encodes a labelled corpus with the demo encoder into a temporary local store and
 * prints MAP, P@10 and P@50 of sae, bm25, hybrid, example (the query encoded, no labels), a random baseline and an
 * oracle (hand-picked latents per query), so
 * that label quality (sae vs oracle) and method quality (oracle vs bm25 / random) are measured separately.
 * Every ranking is completed with the documents it did not score, in a seeded random order, so all methods are
 * measured on full rankings, like the random baseline.
 *
 * Usage: node --import tsx api/src/eval/retrieval.ts [--dataset docs.jsonl] [--queries queries.jsonl]
 *          [--k 10] [--temperature 0.2] [--limit-docs N] [--keep DIR [--reuse]] [--write-corpus out.jsonl] [--json]
 *   --reuse: with --keep, search the dataset an earlier run encoded into DIR (same documents) without encoding again
 *   docs.jsonl:    one `{ "id"?, "text", "labels": ["spam", ...] }` per line (default: corpus.ts, built on the fly)
 *   queries.jsonl: one `{ "query", "relevant_label", "latents"?: [ids] }` per line (default: fixtures/queries.jsonl)
 * The embedder is embedderFromEnv (EMBEDDINGS_BASE_URL / EMBEDDINGS_MODEL / EMBEDDINGS_API_KEY), offline otherwise.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { type SearchQuery, DEFAULT_K, DEFAULT_TEMPERATURE } from '@latentbase/shared/contract/search'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { embedderFromEnv } from '@latentbase/shared/embeddings/openai'
import { averagePrecision, precisionAtK } from '@latentbase/shared/analysis/retrieval-metrics'
import { loadEncoder } from '@latentbase/gpu-worker/encode/runtime'
import { DEMO_ENCODER_DIR, catalogOf } from '@latentbase/gpu-worker/registry'
import type { AnalysisContext } from '../services/context.ts'
import { rankDocuments, type SearchTuning } from '../services/search-service.ts'
import { buildDefaultCorpus, type LabelledDocument } from './corpus.ts'
import { encodeInline } from './encode-inline.ts'
import { rankLike } from '../services/similar-service.ts'
import { loadReadyDataset } from '../services/ready-dataset.ts'
import { encoderTextEncoder } from '@latentbase/gpu-worker/job/text-encoder'

export const DEFAULT_QUERIES = fileURLToPath(new URL('./fixtures/queries.jsonl', import.meta.url))
const TENANT = 'eval'
const DATASET = 'retrieval-eval'
const RANDOM_SHUFFLES = 20

export interface EvalQuery {
  query: string
  relevant_label: string
  latents?: number[]
}

export interface MethodRow {
  method: string
  map: number
  p10: number
  p50: number
  queries: number
  ap: number[]
  ms: number
}

async function readJsonl<T>(path: string): Promise<T[]> {
  return (await readFile(path, 'utf8'))
    .split('\n')
    .filter(l => l.trim())
    .map((l, i) => {
      try {
        return JSON.parse(l) as T
      } catch (err) {
        throw new Error(`${path}:${i + 1}: ${(err as Error).message}`)
      }
    })
}

/** A seeded permutation of 0..n-1 (mulberry32 + Fisher-Yates). */
function permutation(n: number, seed: number): Int32Array {
  let a = seed >>> 0
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const p = Int32Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    const t = p[i]
    p[i] = p[j]
    p[j] = t
  }
  return p
}

/**
 * A ranking completed with the rows it left out (score 0) in a seeded random order: every method is then scored on a
 * full ranking, like the random baseline, instead of getting nothing for relevant rows it never scored.
 */
export function completeRanking(ranking: Int32Array, nDocs: number, seed: number): Int32Array {
  if (ranking.length >= nDocs) return ranking
  const seen = new Uint8Array(nDocs)
  for (const r of ranking) seen[r] = 1
  const out = new Int32Array(nDocs)
  out.set(ranking)
  let at = ranking.length
  for (const r of permutation(nDocs, seed)) if (!seen[r]) out[at++] = r
  return out
}

export interface EvalOptions {
  docs: LabelledDocument[]
  queries: EvalQuery[]
  k?: number
  temperature?: number
  /** Store directory (kept); a temporary one, removed afterwards, when left out. */
  storeDir?: string
  log?: (line: string) => void
  /** Extra sae rows (cap at p90, larger k) to justify the defaults. */
  variants?: boolean
  /** With storeDir: reuse the dataset encoded there by an earlier run (same documents) instead of encoding again. */
  reuse?: boolean
}

export interface EvalResult {
  documents: number
  encodeSeconds: number
  embedder: string
  rows: MethodRow[]
  perQuery: Array<{ query: string; label: string; relevant: number; ap: Record<string, number> }>
}

export async function evaluateRetrieval(opts: EvalOptions): Promise<EvalResult> {
  const log = opts.log ?? (() => {})
  const dir = opts.storeDir ?? (await mkdtemp(join(tmpdir(), 'latentbase-eval-')))
  const encoder = await loadEncoder(DEMO_ENCODER_DIR, { log: () => {} })
  try {
    const objects = new FsObjectStore(dir)
    const datasets = new DatasetStore(objects)
    const ids = opts.docs.map((d, i) => d.id ?? `doc-${i}`)
    const encodeSeconds = await encodeInline(
      objects,
      datasets,
      encoder,
      {
        tenant: TENANT,
        id: DATASET,
        name: 'retrieval evaluation',
        docs: opts.docs.map((d, i) => ({ id: ids[i], text: d.text }))
      },
      opts.reuse && Boolean(opts.storeDir),
      log
    )
    if (encodeSeconds) log(`encoded in ${encodeSeconds.toFixed(1)} s into ${dir}`)

    // Relevance by document id: rows of skipped documents (nothing to pool) simply do not exist.
    const manifest = (await datasets.getManifest(TENANT, DATASET))!
    const stored = await readDocuments(
      objects,
      layout.datasetPrefix(TENANT, DATASET),
      manifest.documents.files,
      undefined,
      ['id']
    )
    const labelsById = new Map(opts.docs.map((d, i) => [ids[i], d.labels]))
    const rowLabels: string[][] = new Array(manifest.documents.count).fill([])
    for (let i = 0; i < stored.row.length; i++) rowLabels[stored.row[i]] = labelsById.get(stored.id[i]) ?? []
    const nDocs = manifest.documents.count

    const embedder = embedderFromEnv(process.env)
    const ctx: AnalysisContext = {
      objects,
      datasets,
      encoders: catalogOf(new Map([[encoder.info.id, encoder]])),
      embedder,
      tenant: TENANT,
      textEncoder: encoderTextEncoder(new Map([[encoder.info.id, encoder]]))
    }
    const target = await loadReadyDataset(datasets, TENANT, DATASET, 'dataset')
    const k = opts.k ?? DEFAULT_K
    const temperature = opts.temperature ?? DEFAULT_TEMPERATURE
    const base = { dataset: DATASET, k, temperature, limit: 50 }

    type Run = { name: string; rank: (q: EvalQuery) => Promise<Int32Array | null> }
    const search =
      (method: 'sae' | 'bm25' | 'hybrid', tuning: SearchTuning = {}, over: Partial<SearchQuery> = {}) =>
      async (q: EvalQuery) =>
        (await rankDocuments(ctx, { ...base, method, q: q.query, ...over }, { depth: nDocs, ...tuning })).ranking
    const runs: Run[] = [
      { name: 'sae', rank: search('sae') },
      { name: 'bm25', rank: search('bm25') },
      { name: 'hybrid', rank: search('hybrid') },
      { name: 'random', rank: async () => null },
      {
        // The query itself encoded by the dataset's encoder, its documents ranked as similar documents are.
        name: 'example (q encoded)',
        rank: async q => {
          const present = await ctx.textEncoder!({ manifest: target.manifest }, q.query)
          const like = await rankLike(ctx, target, Array.from(present ?? []), -1, { limit: nDocs, shared: 0 }, {})
          return Int32Array.from(like.results, r => r.row)
        }
      },
      {
        name: 'oracle latents',
        rank: async q =>
          q.latents?.length
            ? (
                await rankDocuments(
                  ctx,
                  { ...base, method: 'sae', latents: q.latents, k: q.latents.length },
                  { depth: nDocs }
                )
              ).ranking
            : null
      }
    ]
    if (opts.variants) {
      runs.push(
        { name: 'sae cap=1', rank: search('sae', { cap: 1 }) },
        { name: 'sae, every latent of k read', rank: search('sae', { minWeight: 0 }) },
        { name: 'hybrid, every latent of k read', rank: search('hybrid', { minWeight: 0 }) },
        { name: 'sae k=10', rank: search('sae', {}, { k: 10 }) },
        { name: 'sae k=10, similarity order', rank: search('sae', { diversity: 1 }, { k: 10 }) },
        { name: 'sae similarity order', rank: search('sae', { diversity: 1 }) },
        { name: 'sae MMR 0.6', rank: search('sae', { diversity: 0.6 }) },
        { name: 'sae MMR 0.8', rank: search('sae', { diversity: 0.8 }) },
        { name: 'sae k=30', rank: search('sae', {}, { k: 30 }) },
        { name: 'sae k=100', rank: search('sae', {}, { k: 100 }) },
        { name: 'sae T=1', rank: search('sae', {}, { temperature: 1 }) },
        { name: 'hybrid k=10', rank: search('hybrid', {}, { k: 10 }) },
        { name: 'hybrid similarity order', rank: search('hybrid', { diversity: 1 }) },
        {
          name: 'oracle cap=1',
          rank: async q =>
            q.latents?.length
              ? (
                  await rankDocuments(
                    ctx,
                    { ...base, method: 'sae', latents: q.latents, k: q.latents.length },
                    { depth: nDocs, cap: 1 }
                  )
                ).ranking
              : null
        }
      )
    }

    const rows: MethodRow[] = runs.map(r => ({ method: r.name, map: 0, p10: 0, p50: 0, queries: 0, ap: [], ms: 0 }))
    const perQuery: EvalResult['perQuery'] = []
    for (const [qi, q] of opts.queries.entries()) {
      const relevant = new Set<number>()
      rowLabels.forEach((ls, row) => {
        if (ls.includes(q.relevant_label)) relevant.add(row)
      })
      const entry = {
        query: q.query,
        label: q.relevant_label,
        relevant: relevant.size,
        ap: {} as Record<string, number>
      }
      for (const [ri, run] of runs.entries()) {
        const row = rows[ri]
        let ap: number, p10: number, p50: number
        if (run.name === 'random') {
          // Expected values over several shuffles: one shuffle is noisy at these sizes.
          ap = 0
          p10 = 0
          p50 = 0
          for (let s = 0; s < RANDOM_SHUFFLES; s++) {
            const perm = permutation(nDocs, 1000 * qi + s + 1)
            ap += averagePrecision(perm, relevant) / RANDOM_SHUFFLES
            p10 += precisionAtK(perm, relevant, 10) / RANDOM_SHUFFLES
            p50 += precisionAtK(perm, relevant, 50) / RANDOM_SHUFFLES
          }
        } else {
          const t = performance.now()
          const ranked = await run.rank(q)
          row.ms += performance.now() - t
          if (!ranked) {
            row.ap.push(NaN)
            continue
          }
          const ranking = completeRanking(ranked, nDocs, 7919 * (qi + 1))
          ap = averagePrecision(ranking, relevant)
          p10 = precisionAtK(ranking, relevant, 10)
          p50 = precisionAtK(ranking, relevant, 50)
        }
        row.map += ap
        row.p10 += p10
        row.p50 += p50
        row.queries++
        row.ap.push(ap)
        entry.ap[run.name] = ap
      }
      perQuery.push(entry)
      log(
        `  ${q.relevant_label.padEnd(14)} ${runs.map(r => `${r.name} ${(entry.ap[r.name] ?? NaN).toFixed(3)}`).join('  ')}`
      )
    }
    for (const row of rows)
      if (row.queries) {
        row.map /= row.queries
        row.p10 /= row.queries
        row.p50 /= row.queries
        row.ms /= row.queries
      }
    return { documents: nDocs, encodeSeconds, embedder: embedder.id, rows, perQuery }
  } finally {
    await encoder.close()
    if (!opts.storeDir) await rm(dir, { recursive: true, force: true })
  }
}

export function formatTable(result: EvalResult): string {
  const lines = [
    `${result.documents} documents, ${result.perQuery.length} queries, label embeddings: ${result.embedder}`,
    '',
    '| method | MAP | P@10 | P@50 | queries | ms/query (full ranking, first includes cache fills) |',
    '|---|---:|---:|---:|---:|---:|',
    ...result.rows.map(
      r =>
        `| ${r.method} | ${r.map.toFixed(3)} | ${r.p10.toFixed(3)} | ${r.p50.toFixed(3)} | ${r.queries} | ${r.method === 'random' ? '-' : r.ms.toFixed(1)} |`
    ),
    '',
    `| property (relevant) | ${result.rows.map(r => r.method).join(' | ')} |`,
    `|---|${result.rows.map(() => '---:').join('|')}|`,
    ...result.perQuery.map(
      q =>
        `| ${q.label} (${q.relevant}) | ${result.rows.map(r => (q.ap[r.method] === undefined ? '-' : q.ap[r.method].toFixed(3))).join(' | ')} |`
    )
  ]
  return lines.join('\n')
}

async function main() {
  const { values } = parseArgs({
    options: {
      dataset: { type: 'string' },
      queries: { type: 'string' },
      k: { type: 'string' },
      temperature: { type: 'string' },
      'limit-docs': { type: 'string' },
      keep: { type: 'string' },
      'write-corpus': { type: 'string' },
      json: { type: 'boolean' },
      'no-variants': { type: 'boolean' },
      reuse: { type: 'boolean' }
    }
  })
  let docs = values.dataset ? await readJsonl<LabelledDocument>(values.dataset) : buildDefaultCorpus()
  if (values['limit-docs']) docs = docs.slice(0, Number(values['limit-docs']))
  for (const [i, d] of docs.entries()) {
    if (typeof d.text !== 'string' || !Array.isArray(d.labels))
      throw new Error(`document ${i}: needs "text" and "labels"`)
  }
  if (values['write-corpus'])
    await writeFile(values['write-corpus'], docs.map(d => JSON.stringify(d)).join('\n') + '\n')
  const queries = await readJsonl<EvalQuery>(values.queries ?? DEFAULT_QUERIES)
  const result = await evaluateRetrieval({
    docs,
    queries,
    k: values.k ? Number(values.k) : undefined,
    temperature: values.temperature ? Number(values.temperature) : undefined,
    storeDir: values.keep,
    reuse: values.reuse,
    variants: !values['no-variants'],
    log: l => console.error(l)
  })
  console.log(values.json ? JSON.stringify(result, null, 2) : formatTable(result))
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch(err => {
    console.error(err)
    process.exitCode = 1
  })
}
