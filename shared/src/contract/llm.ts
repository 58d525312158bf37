/** @module The contract of the LLM endpoints: hypotheses from a diff, their verification by a judge, usage and cost, dry-run estimates. */
import { z } from 'zod'
import { SliceParam } from './slice.ts'

/** The paper's default question for hypotheses from a diff. */
export const DEFAULT_QUESTION = 'What are the most significant, interesting differences?'
export const MAX_HYPOTHESES = 10

/** Where the LLM lives (the API key is never echoed back). */
export const LlmConfigSchema = z.object({
  baseURL: z.string().url(),
  model: z.string().min(1),
  apiKey: z.string().optional(),
  prices: z
    .object({
      inputPerMillion: z.number().min(0),
      outputPerMillion: z.number().min(0),
      currency: z.string().optional()
    })
    .nullable()
    .optional(),
  maxRetries: z.number().int().min(0).optional(),
  timeoutMs: z.number().int().positive().optional(),
  concurrency: z.number().int().positive().optional(),
  jsonRetries: z.number().int().min(0).optional(),
  jsonMode: z.boolean().optional()
})

const tokens = { inputTokens: z.number().int().min(0), outputTokens: z.number().int().min(0) }

export const StepUsage = z.object({
  step: z.string(),
  calls: z.number().int().min(0),
  ...tokens,
  estimatedCalls: z
    .number()
    .int()
    .min(0)
    .describe('calls whose usage the server did not report, counted by our estimate rule'),
  cost: z.number().nullable()
})

/** What a request spent: tokens in and out per step, and the cost when prices are configured. */
export const Usage = z.object({
  calls: z.number().int().min(0),
  ...tokens,
  cost: z.number().nullable().describe('null when no prices are configured (LLM_PRICE_IN / LLM_PRICE_OUT)'),
  currency: z.string(),
  steps: z.array(StepUsage)
})
export type Usage = z.infer<typeof Usage>

/** A dry run: what the request would spend, before anything is spent (retries of malformed answers not included). */
export const DryRunEstimate = z.object({
  dryRun: z.literal(true),
  model: z.string(),
  tokenScale: z
    .object({ input: z.number(), output: z.number() })
    .describe(
      "the server's tokens per token of our counting rule, learnt from the usage it reported earlier (1 until it has answered)"
    ),
  calls: z.number().int().min(0),
  ...tokens,
  cost: z.number().nullable(),
  currency: z.string(),
  steps: z.array(z.object({ step: z.string(), calls: z.number().int(), ...tokens, cost: z.number().nullable() }))
})
export type DryRunEstimate = z.infer<typeof DryRunEstimate>

/** An item that failed (malformed answer after retries, or the endpoint failing): the rest of the result stands. */
export const FailedItem = z.object({
  step: z.string(),
  item: z.string().describe('what failed, e.g. "hypothesis 2 / a row 17"'),
  error: z.string(),
  kind: z.enum(['malformed-output', 'request-failed']),
  raw: z.string().optional().describe('the last raw answer, for malformed output (cut to 2000 characters)')
})
export type FailedItem = z.infer<typeof FailedItem>

const datasetIds = z
  .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
  .transform(b => (Array.isArray(b) ? b : [b]))

export const HypothesesRequest = z.object({
  a: z.string().min(1),
  b: datasetIds.describe('the dataset(s) to compare against, as in GET /diff'),
  question: z.string().min(1).max(2000).default(DEFAULT_QUESTION),
  max: z.number().int().min(1).max(MAX_HYPOTHESES).default(MAX_HYPOTHESES),
  topLatents: z.number().int().min(1).max(200).default(20).describe('top latents of the diff shown to the LLM'),
  minDifference: z
    .number()
    .min(0)
    .max(1)
    .default(0.03)
    .describe('latents with a smaller difference are not shown (the paper: 0.03)'),
  exampleChars: z
    .number()
    .int()
    .min(100)
    .max(20_000)
    .default(800)
    .describe('each example document is cut to this many characters'),
  seed: z.number().int().default(0),
  dryRun: z.boolean().default(false),
  aWhere: SliceParam.optional().describe('a slice of a (JSON form or text, docs/slices.md), as in GET /diff'),
  bWhere: z
    .array(SliceParam.optional())
    .min(1)
    .optional()
    .describe('slices of the b datasets, one per b in the same order ("" for a whole dataset)')
})
export type HypothesesRequest = z.input<typeof HypothesesRequest>

export const HypothesisSchema = z.object({
  id: z.number().int().min(0),
  text: z.string().describe('"This response ..."'),
  latents: z.array(z.number().int()).describe('latent ids the hypothesis cites')
})
export type Hypothesis = z.infer<typeof HypothesisSchema>

export const ShownLatent = z.object({
  latent: z.number().int(),
  label: z.string().nullable(),
  frequencyA: z.number(),
  frequencyB: z.number(),
  difference: z.number(),
  activatingRow: z.number().int().nullable().describe('row in a of the activating example'),
  nonActivatingRow: z.number().int().nullable().describe('row in the against dataset of the non-activating example'),
  against: z.string(),
  labelSource: z
    .string()
    .nullable()
    .optional()
    .describe('"imported", the catalog\'s word, or "llm:<model>" for a relabel'),
  labelScore: z
    .object({ detection: z.number().nullable(), fuzzing: z.number().nullable() })
    .nullable()
    .optional()
    .describe(
      'detection and fuzzing scores of the label shown to the LLM; null for imported labels (offline labels carry an offline detection score, fuzzing null)'
    )
})

export const HypothesesResult = z.object({
  dryRun: z.literal(false),
  a: z.string(),
  b: z.array(z.string()),
  question: z.string(),
  model: z.string(),
  hypotheses: z.array(HypothesisSchema),
  latents: z.array(ShownLatent),
  /** Rows used as examples: pass them to /hypotheses/verify as `exclude` so the judge sees held-out documents only. */
  usedRows: z.record(z.string(), z.array(z.number().int())),
  failed: z.array(FailedItem),
  usage: Usage
})
export type HypothesesResult = z.infer<typeof HypothesesResult>

const HypothesisInput = z.union([
  z
    .string()
    .min(1)
    .transform(text => ({ text, latents: [] as number[] })),
  z.object({ text: z.string().min(1), latents: z.array(z.number().int()).default([]) })
])

export const VerifyRequest = z.object({
  a: z.string().min(1),
  b: z.string().min(1),
  hypotheses: z.array(HypothesisInput).min(1).max(50),
  perDataset: z.number().int().min(1).max(5000).default(50).describe('documents judged per dataset'),
  seed: z.number().int().default(0),
  exclude: z
    .record(z.string(), z.array(z.number().int().min(0)))
    .default({})
    .describe('rows per dataset id held out of judging (those that produced the hypotheses)'),
  correction: z.enum(['holm', 'bonferroni']).default('holm'),
  alpha: z.number().gt(0).lt(1).default(0.05),
  documentChars: z
    .number()
    .int()
    .min(100)
    .max(50_000)
    .default(4000)
    .describe('each judged document is cut to this many characters'),
  baseline: z
    .boolean()
    .default(false)
    .describe('also run the pure-LLM baseline: the LLM compares samples of a and b directly, then summarizes'),
  baselineDocuments: z
    .number()
    .int()
    .min(2)
    .max(200)
    .default(20)
    .describe('documents per dataset the baseline proposer reads (not judged)'),
  baselineMax: z.number().int().min(1).max(MAX_HYPOTHESES).default(MAX_HYPOTHESES),
  judge: z
    .enum(['pair', 'document'])
    .default('pair')
    .describe(
      'pair: one judge call per (document, hypothesis), as in the paper; document: one call per document answering every hypothesis (about hypotheses-times fewer calls and document tokens; the judge then sees the hypotheses together)'
    ),
  aWhere: SliceParam.optional().describe('judge documents of a slice of a only (JSON form or text, docs/slices.md)'),
  bWhere: SliceParam.optional().describe('judge documents of a slice of b only'),
  maxCalls: z
    .number()
    .int()
    .min(1)
    .max(10_000_000)
    .default(20_000)
    .describe('refuse (400 too-many-calls) a verification that needs more judge calls than this'),
  dryRun: z.boolean().default(false)
})
export type VerifyRequest = z.input<typeof VerifyRequest>

export const VerifiedHypothesis = z.object({
  text: z.string(),
  latents: z.array(z.number().int()),
  yesA: z.number().int(),
  nA: z.number().int(),
  yesB: z.number().int(),
  nB: z.number().int(),
  failedA: z.number().int(),
  failedB: z.number().int(),
  shareA: z.number(),
  shareB: z.number(),
  difference: z.number().describe('share YES in a - share YES in b'),
  ci95: z.tuple([z.number(), z.number()]).describe('Newcombe (Wilson score) 95% interval on the difference'),
  pValue: z.number(),
  test: z.enum(['fisher', 'z']),
  adjustedPValue: z.number(),
  significant: z.boolean().describe('the corrected test rejects at alpha'),
  valid: z.boolean().describe('the paper: verified difference > 1 point'),
  confirmed: z.boolean().describe('valid, significant, and the interval lies above 1 point')
})
export type VerifiedHypothesis = z.infer<typeof VerifiedHypothesis>

const SampleInfo = z.object({
  id: z.string(),
  documents: z.number().int(),
  excluded: z.number().int(),
  judged: z.number().int(),
  rows: z.array(z.number().int()),
  where: z.string().optional().describe('the slice sampled (canonical text form); absent for the whole dataset')
})

export const VerifyResult = z.object({
  dryRun: z.literal(false),
  model: z.string(),
  a: SampleInfo,
  b: SampleInfo,
  correction: z.enum(['holm', 'bonferroni']),
  alpha: z.number(),
  judge: z.enum(['pair', 'document']),
  hypotheses: z.array(VerifiedHypothesis),
  validCount: z.number().int(),
  failed: z.array(FailedItem),
  usage: Usage,
  baseline: z
    .object({
      rows: z
        .record(z.string(), z.array(z.number().int()))
        .describe('rows the proposer read (disjoint from the judged rows)'),
      hypotheses: z.array(VerifiedHypothesis),
      validCount: z.number().int(),
      proposeUsage: Usage.describe('tokens spent writing the baseline hypotheses'),
      verifyUsage: Usage.describe('tokens spent judging them'),
      failed: z.array(FailedItem)
    })
    .optional()
})
export type VerifyResult = z.infer<typeof VerifyResult>

// --- relabel: LLM labels for an encoder's latents, written from a dataset's windows and scored ----------------------

/** Latents a relabel answers in the request; more need `async=true` (an analysis job). */
export const RELABEL_DIRECT_MAX = 50

export const RelabelRequest = z.object({
  dataset: z.string().min(1).describe('the dataset (encoded with this encoder) whose windows the LLM reads'),
  latents: z
    .array(z.number().int().min(0))
    .min(1)
    .max(2000)
    .optional()
    .describe('latents to relabel (default: the `limit` most frequent in the dataset with stored examples)'),
  limit: z.number().int().min(1).max(2000).default(20),
  explainExamples: z
    .number()
    .int()
    .min(1)
    .max(40)
    .default(10)
    .describe(
      'activating windows shown to the explainer (the stored top examples at even ranks, spanning their range)'
    ),
  scoreExamples: z
    .number()
    .int()
    .min(1)
    .max(20)
    .default(5)
    .describe('held-out activating windows (odd ranks) and as many non-activating ones, for detection and fuzzing'),
  seed: z.number().int().default(0),
  dryRun: z.boolean().default(false),
  labeler: z
    .enum(['llm', 'offline'])
    .default('llm')
    .describe(
      'llm: the configured LLM explains and scores; offline: no LLM and no cost: the words the latent fires on in its windows, by how much more often they are there than in windows where it is silent, scored by "a window with a label word fires" (source "offline-examples")'
    )
})
export type RelabelRequest = z.input<typeof RelabelRequest>

export const RelabelledLatent = z.object({
  latent: z.number().int(),
  label: z.string().nullable().describe('the new label; null when the explainer failed (see failed)'),
  previous: z.object({ label: z.string().nullable(), source: z.string().nullable() }),
  source: z.string().describe('"llm:<model>", or "offline-examples" for the offline labeler'),
  detection: z
    .number()
    .nullable()
    .describe(
      'balanced accuracy: activating vs non-activating windows told apart from the label alone (0.5 chance, 1 perfect)'
    ),
  fuzzing: z
    .number()
    .nullable()
    .describe('balanced accuracy: correctly vs wrongly marked firing tokens told apart from the label'),
  examples: z.object({ explain: z.number().int(), activating: z.number().int(), nonActivating: z.number().int() })
})
export type RelabelledLatent = z.infer<typeof RelabelledLatent>

export const RelabelResult = z.object({
  dryRun: z.literal(false),
  encoder: z.string(),
  dataset: z.string(),
  model: z.string(),
  source: z.string(),
  overlayKey: z.string().nullable().describe('the label overlay file written (null when no label was written)'),
  sampling: z
    .enum(['quantiles', 'top-examples'])
    .optional()
    .describe(
      "quantiles: scored on windows sampled across each latent's activation quantiles (re-encoded); top-examples: on held-out stored top examples"
    ),
  labels: z.array(RelabelledLatent),
  skipped: z
    .array(z.object({ latent: z.number().int(), reason: z.string() }))
    .describe('latents without stored examples in this dataset'),
  failed: z.array(FailedItem),
  usage: Usage
})
export type RelabelResult = z.infer<typeof RelabelResult>
