/** @module The search contract: query parameters and result of GET /search (property retrieval). */
import { z } from 'zod'
import { LabelScore } from '../catalog/label-overlay.ts'
import { LatentPeak } from './latents.ts'
import { FailedItem, Usage } from './llm.ts'
import { SliceParam } from './slice.ts'

/** An optional flag of the query string (absent: false). */
const bool = z
  .enum(['true', 'false'])
  .transform(v => v === 'true')
  .optional()

/**
 * The search defaults, written here only: the query schema below applies them, the service reads the rest from here,
 * and the pure scoring in shared/src/analysis/search.ts takes them as arguments.
 *
 * k, latents kept per query. The paper keeps the top 100 by label similarity and lets an LLM keep the relevant ones;
 * without that filter an embedding's ranking of labels is noisy, and the score averages that noise away over more
 * latents. With T = 0.2 the rank weights exp(-(r/k)/T) leave latents past rank k/2 at under 10% of the first, so k
 * sets both how many latents are read and how fast their weights fall. Measured (`npm run eval:retrieval`, demo
 * encoder, offline embedder, 13 queries; MMR order and MIN_RANK_WEIGHT, below): k 10 / 20 / 30 / 100 = 0.481 /
 * 0.511 / 0.520 / 0.526. At k 20 the latents past rank 9 weigh under MIN_RANK_WEIGHT and are not read, so a search
 * reads 10 latents as at k 10; see docs/demo-encoder.md.
 */
export const DEFAULT_K = 20
export const MAX_K = 200
/** The paper's best average temperature over its sweep (0.01-1.5); 0.01 is poor (one latent decides). */
export const DEFAULT_TEMPERATURE = 0.2
/**
 * Latents chosen by label similarity are taken in maximal-marginal-relevance order (shared/src/analysis/search.ts)
 * with this lambda: a near-duplicate of a label already taken (an SAE splits a concept into several latents with the
 * same label) moves behind a different label of nearly the same similarity, so the k ranks cover what else the query
 * may mean. 1 keeps the plain similarity order; 0.7 weighs similarity above novelty. Measured (`npm run
 * eval:retrieval`, k 20): 0.6 / 0.7 / 0.8 gave MAP 0.472 / 0.511 / 0.499, 1 (off) 0.475. The synthetic benchmark's
 * sae precision@20 (`npm run bench:analyses`, topics of 40 latents with near-identical labels): 0.89 before, 0.94.
 */
export const DIVERSITY_LAMBDA = 0.7
/**
 * Latents chosen by label whose rank weight exp(-(r/k)/T) is under this share of the first's are left out of the
 * score and not read: each would add at most a tenth of the first latent's weight, and reading a latent's column is
 * most of a search's cost. At k 20 and T 0.2 the first 10 are read (rank 9 weighs 0.105, rank 10 0.082); at k 100,
 * 47. Measured (`npm run eval:retrieval`, k 20): MAP 0.514 reading all 20, 0.511 reading 10. Explicit latents
 * (`latents=`) are always all read.
 */
export const MIN_RANK_WEIGHT = 0.1
/** Candidates (closest labels) the MMR ordering and an LLM selection choose from: the paper's top 100. */
export const LABEL_CANDIDATES = 100

/** Documents an LLM rerank reorders (the paper: the top 50). */
export const RERANK_TOP = 50

const csvInts = z
  .string()
  .regex(/^\d+(,\d+)*$/, 'a comma-separated list of latent ids, e.g. 12,40,977')
  .transform(s => s.split(',').map(Number))

export const SearchMethod = z.enum(['sae', 'bm25', 'hybrid'])
export type SearchMethod = z.infer<typeof SearchMethod>

export const SearchQuery = z.object({
  dataset: z.string({ error: 'dataset is required: the id of the dataset to search' }).min(1),
  q: z.string().trim().min(1).max(2000).optional().describe('the property to find, in words'),
  method: SearchMethod.default('sae').describe(
    'sae: latents whose labels match q; bm25: the text itself; hybrid: reciprocal rank fusion of the two'
  ),
  latents: csvInts
    .optional()
    .describe('query given as latents, most important first (replaces the label match of sae)'),
  k: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_K)
    .default(DEFAULT_K)
    .describe('latents kept (those whose labels are closest to q)'),
  temperature: z.coerce
    .number()
    .gt(0)
    .max(10)
    .default(DEFAULT_TEMPERATURE)
    .describe('rank weights exp(-(r/k)/T): lower favours the first latents'),
  limit: z.coerce.number().int().min(1).max(1000).default(20),
  expand: bool.describe(
    'LLM query expansion: keywords added to the BM25 query, phrases matched against labels beside q (needs an LLM; 503 llm-not-configured without one)'
  ),
  rerank: bool.describe(
    `LLM rerank of the top ${RERANK_TOP} documents; the results come in the reranked order (needs an LLM)`
  ),
  select: bool.describe(
    "sae and hybrid: from the 100 latents whose labels are closest to q, an LLM keeps and ranks the relevant ones (at most k), which then weigh by the LLM's order (the paper's LLM selection; needs an LLM)"
  ),
  dryRun: bool.describe(
    'with expand, select or rerank: answer the estimated tokens and cost of the LLM steps (a DryRunEstimate) and spend nothing'
  ),
  where: SliceParam.optional().describe(
    "search only a slice of the dataset (docs/slices.md); p90 normalization and BM25 statistics are the slice's own"
  )
})
export type SearchQuery = z.infer<typeof SearchQuery>

/** How many of a hit's latents it lists (the largest parts of its score). */
export const HIT_LATENTS = 3

export const SearchHit = z.object({
  row: z.number().int(),
  id: z.string(),
  score: z.number(),
  latents: z
    .array(
      z.object({
        latent: z.number().int(),
        value: z.number().describe("the latent's pooled value in this document"),
        share: z.number().describe("its part of the document's latent score (weight x value / p90), 0-1")
      })
    )
    .optional()
    .describe(
      `sae and hybrid: the chosen latents present in this document that make most of its latent score (at most ${HIT_LATENTS}), largest first: why it matched`
    ),
  snippet: z
    .string()
    .describe(
      'about 200 characters: sae, around the estimated place where its first latent peaks (positions are stored, character offsets are not); bm25 and hybrid, around the first query word; else the start'
    )
})
export type SearchHit = z.infer<typeof SearchHit>

export const SearchLatent = z.object({
  latent: z.number().int(),
  label: z.string().nullable(),
  weight: z.number().describe('rank weight exp(-(r/k)/T)'),
  similarity: z.number().nullable().describe('label-to-query cosine; null for latents given explicitly'),
  p90: z.number().describe("90th percentile of the latent's present values in this dataset (its normalizer)"),
  labelSource: z
    .string()
    .nullable()
    .optional()
    .describe('"imported", the catalog\'s word, or "llm:<model>" for a relabel; null without a label'),
  labelScore: LabelScore.nullable()
    .optional()
    .describe(
      'detection and fuzzing scores of the label; null for imported labels (offline labels carry an offline detection score, fuzzing null)'
    ),
  peak: LatentPeak.nullable()
    .optional()
    .describe(
      "for a latent without a label (given in latents=): what it fires on in the dataset's top examples (null when none has a visible peak token); absent for labelled latents"
    )
})
export type SearchLatent = z.infer<typeof SearchLatent>

export const SearchResult = z.object({
  dataset: z.string(),
  where: z.string().optional().describe('the slice searched (canonical text form); absent for the whole dataset'),
  sliceDocuments: z.number().int().optional().describe('documents in the slice'),
  encoder: z.string(),
  method: SearchMethod,
  query: z.string().nullable(),
  k: z.number().int(),
  temperature: z.number(),
  embedder: z.string().nullable().describe('embedder of the label similarities (null when none was used)'),
  matched: z.number().int().describe('documents with a positive score'),
  results: z.array(SearchHit),
  latents: z.array(SearchLatent),
  expansion: z
    .object({ keywords: z.array(z.string()), phrases: z.array(z.string()) })
    .nullable()
    .optional()
    .describe('expand=true: what the LLM added (null when its answer failed: see failed)'),
  selected: z
    .number()
    .int()
    .optional()
    .describe('select=true: latents the LLM kept (0: none, or its answer failed; the closest labels were used)'),
  reranked: z
    .number()
    .int()
    .optional()
    .describe('rerank=true: how many of the top documents the LLM reordered (0 when its answer failed)'),
  usage: Usage.nullable().optional().describe('tokens (and cost) the LLM steps spent; null without expand or rerank'),
  failed: z.array(FailedItem).optional().describe('LLM steps that failed: the search answered without them')
})
export type SearchResult = z.infer<typeof SearchResult>
