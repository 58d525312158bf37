/** @module Hypotheses from a diff: the top latents' labels with one activating and one non-activating document go to an LLM, which writes hypotheses citing latent ids. */
import { z } from 'zod'
import { DiffQuery } from '@latentbase/shared/contract/diff'
import {
  HypothesesRequest,
  type DryRunEstimate,
  type FailedItem,
  type HypothesesResult,
  type Hypothesis
} from '@latentbase/shared/contract/llm'
import { readByLatent } from '@latentbase/shared/store/latent-shards/read-by-latent'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { estimatePlan, countTokens, type ChatMessage, type PlannedCall } from '@latentbase/shared/llm/cost'
import { failedItem, type LlmClient } from '@latentbase/shared/llm/client'
import { mulberry32 } from '@latentbase/shared/util/random'
import type { AnalysisContext } from './context.ts'
import { ApiError } from '../problem.ts'
import { runDiff } from './diff-service.ts'
import { loadReadyDataset, type ReadyDataset } from './ready-dataset.ts'
import { sliceDataset, type SlicedDataset } from './slice-service.ts'
import { restOfSlice, sliceToText } from '@latentbase/shared/contract/slice'

/** Expected answer tokens per hypothesis, for dry runs: a one-sentence "This response ..." with its latent ids, as JSON. */
export const HYPOTHESIS_ANSWER_TOKENS = 36
/** Framing of the JSON answer ({"hypotheses":[ ... ]}). */
export const ANSWER_FRAME_TOKENS = 8

export const HypothesesAnswer = z.object({
  hypotheses: z.array(
    z.object({
      text: z.string().min(1),
      latents: z.array(z.coerce.number().int()).default([])
    })
  )
})

/** A document cut to `chars`, with a marker saying so (the LLM should not read a cut as the document's end). */
export function clip(text: string, chars: number): string {
  return text.length <= chars ? text : `${text.slice(0, chars)} [...cut]`
}

export interface ShownExample {
  latent: number
  label: string | null
  frequencyA: number
  frequencyB: number
  difference: number
  against: string
  activating: string | null
  nonActivating: string | null
  /** Scores of an LLM label (relabel runs): the LLM is told how far to trust the description. */
  labelScore?: { detection: number | null; fuzzing: number | null } | null
  /** For a latent without a label: the token it peaks on in its top examples (the diff's `peak`). */
  peak?: { token: string; count: number; examples: number } | null
}

export function hypothesesMessages(question: string, max: number, shown: readonly ShownExample[]): ChatMessage[] {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`
  const blocks = shown
    .map(s =>
      [
        `Latent ${s.latent}: ${s.label ?? (s.peak ? `(no label; it peaks on the token "${s.peak.token}" in ${s.peak.count} of its ${s.peak.examples} strongest examples)` : '(no label)')}${s.labelScore ? ` (how well this description predicts the latent, 0.5 = chance, 1 = perfect: detection ${s.labelScore.detection ?? 'n/a'}, fuzzing ${s.labelScore.fuzzing ?? 'n/a'})` : ''}`,
        `Present in ${pct(s.frequencyA)} of A and ${pct(s.frequencyB)} of B (difference ${(100 * s.difference).toFixed(1)} points).`,
        `Example from A where it is present:\n<example>\n${s.activating ?? '(none found)'}\n</example>`,
        `Example from B where it is absent:\n<example>\n${s.nonActivating ?? '(none found)'}\n</example>`
      ].join('\n')
    )
    .join('\n\n')
  return [
    {
      role: 'system',
      content:
        'You are a careful data analyst comparing two datasets of texts, A and B. You are shown features (latents of a sparse autoencoder) that are present in more documents of A than of B, each with its description, its frequencies, one document of A where it is present and one document of B where it is absent. Descriptions can be wrong: trust the examples. Reply with JSON only.'
    },
    {
      role: 'user',
      content: `${question}\n\n${blocks}\n\nWrite at most ${max} hypotheses about how documents of A differ from documents of B. Each is one sentence that starts with "This response" and states a property more common in A, and cites the latent ids it rests on. Merge latents that say the same thing. Reply with JSON: {"hypotheses": [{"text": "This response ...", "latents": [12, 40]}]}`
    }
  ]
}

/** The row in [0, n) of a seeded draw that is not in `present` (null when 64 draws all hit it). */
/** A seeded draw of a row without the latent, among the dataset's rows (or a slice's: `rows`). */
function drawAbsent(n: number, present: Set<number>, rand: () => number, rows?: Int32Array): number | null {
  const row = (i: number) => (rows ? rows[i] : i)
  if (!rows && present.size >= n) return null
  for (let t = 0; t < 64 && n > 0; t++) {
    const r = row(Math.floor(rand() * n))
    if (!present.has(r)) return r
  }
  for (let i = 0; i < n; i++) if (!present.has(row(i))) return row(i)
  return null
}

async function textsOf(
  ctx: AnalysisContext,
  ds: ReadyDataset,
  rows: number[],
  chars: number
): Promise<Map<number, string>> {
  const out = new Map<number, string>()
  if (!rows.length) return out
  const docs = await readDocuments(ctx.objects, ds.prefix, ds.manifest.documents.files, rows, ['text'])
  for (let i = 0; i < docs.row.length; i++) out.set(docs.row[i], clip(String(docs.text[i]), chars))
  return out
}

/** POST /diff/hypotheses: a dry run answers the estimate; otherwise one LLM call, whose failure is reported, not thrown. */
export async function generateHypotheses(
  ctx: AnalysisContext,
  llm: LlmClient,
  input: HypothesesRequest
): Promise<HypothesesResult | DryRunEstimate> {
  const parsed = HypothesesRequest.parse(input)
  // As GET /diff: no bWhere at all makes a b that is a's own dataset the rest of it.
  const req = {
    ...parsed,
    bWhere:
      parsed.bWhere ??
      (parsed.aWhere && parsed.b.includes(parsed.a)
        ? parsed.b.map(b => restOfSlice(parsed.a, parsed.aWhere, b))
        : undefined)
  }
  if (req.bWhere && req.bWhere.length !== req.b.length) {
    throw new ApiError(
      400,
      'invalid-request',
      `bWhere has ${req.bWhere.length} slice(s) for ${req.b.length} b dataset(s): give one per b, in the same order ("" for a whole dataset)`
    )
  }
  const text = (w: typeof req.aWhere) => (w ? sliceToText(w) : '')
  const diff = await runDiff(
    ctx,
    DiffQuery.parse({
      a: req.a,
      b: req.b,
      limit: req.topLatents,
      ...(req.aWhere ? { aWhere: text(req.aWhere) } : {}),
      ...(req.bWhere ? { bWhere: req.bWhere.map(text) } : {})
    })
  )
  const top = diff.latents.filter(l => l.difference >= req.minDifference)
  if (!top.length) {
    throw new ApiError(
      422,
      'no-differences',
      `no latent is more frequent in "${req.a}" than in ${req.b.map(b => `"${b}"`).join(', ')} by ${req.minDifference} or more: nothing to write hypotheses from (lower minDifference to see smaller differences)`
    )
  }
  const a: SlicedDataset = await sliceDataset(
    ctx.objects,
    await loadReadyDataset(ctx.datasets, ctx.tenant, req.a, 'a'),
    req.aWhere,
    'aWhere'
  )
  // Keyed by the b's index: two slices of one dataset are two b's.
  const sideOf = (l: (typeof top)[number]) => l.againstIndex ?? req.b.indexOf(l.against)
  const againstIndexes = [...new Set(top.map(sideOf))]
  const againstIds = [...new Set(top.map(l => l.against))]
  const against = new Map(
    await Promise.all(
      againstIndexes.map(
        async i =>
          [
            i,
            await sliceDataset(
              ctx.objects,
              await loadReadyDataset(ctx.datasets, ctx.tenant, req.b[i], 'b'),
              req.bWhere?.[i],
              'bWhere'
            )
          ] as const
      )
    )
  )
  const latents = top.map(l => l.latent)
  const inA = a.slice ? new Set(a.slice.rows) : null

  // Activating: the document of A where the latent is strongest. Non-activating: a seeded draw from the against dataset among documents without it.
  // Documents and values only: the sidecars answer without positions.
  const columnsOf = (ds: typeof a, wanted: number[]) =>
    readByLatent(
      ctx.objects,
      ds.prefix,
      ds.manifest.latents.byLatent,
      wanted,
      { nLatents: ds.manifest.encoder.dSae },
      { positions: false }
    )
  const cscA = await columnsOf(a, latents)
  const activatingRow = new Map<number, number>()
  for (const l of latents) {
    let best = -1
    let bestValue = -Infinity
    for (let j = cscA.indptr[l]; j < cscA.indptr[l + 1]; j++) {
      if (cscA.values[j] > bestValue && (!inA || inA.has(cscA.docs[j]))) {
        bestValue = cscA.values[j]
        best = cscA.docs[j]
      }
    }
    if (best >= 0) activatingRow.set(l, best)
  }
  const nonActivatingRow = new Map<number, number>()
  for (const [side, ds] of against) {
    const mine = top.filter(l => sideOf(l) === side).map(l => l.latent)
    const csc = await columnsOf(ds, mine)
    for (const l of mine) {
      const present = new Set<number>()
      for (let j = csc.indptr[l]; j < csc.indptr[l + 1]; j++) present.add(csc.docs[j])
      const rows = ds.slice?.rows
      const row = drawAbsent(
        rows ? rows.length : ds.manifest.documents.count,
        present,
        mulberry32((req.seed ^ Math.imul(l + 1, 0x9e3779b1)) >>> 0),
        rows
      )
      if (row !== null) nonActivatingRow.set(l, row)
    }
  }
  const textsA = await textsOf(ctx, a, [...new Set(activatingRow.values())], req.exampleChars)
  const textsB = new Map<number, Map<number, string>>()
  for (const [side, ds] of against) {
    const rows = top
      .filter(l => sideOf(l) === side && nonActivatingRow.has(l.latent))
      .map(l => nonActivatingRow.get(l.latent)!)
    textsB.set(side, await textsOf(ctx, ds, [...new Set(rows)], req.exampleChars))
  }
  const shown: ShownExample[] = top.map(l => ({
    latent: l.latent,
    label: l.label,
    frequencyA: l.frequencyA,
    frequencyB: l.frequencyB,
    difference: l.difference,
    against: l.against,
    labelScore: l.labelScore ?? null,
    peak: l.peak ?? null,
    activating: activatingRow.has(l.latent) ? (textsA.get(activatingRow.get(l.latent)!) ?? null) : null,
    nonActivating: nonActivatingRow.has(l.latent)
      ? (textsB.get(sideOf(l))?.get(nonActivatingRow.get(l.latent)!) ?? null)
      : null
  }))
  const messages = hypothesesMessages(req.question, req.max, shown)

  if (req.dryRun) {
    const plan: PlannedCall[] = [
      { step: 'hypotheses', messages, expectedOutputTokens: ANSWER_FRAME_TOKENS + req.max * HYPOTHESIS_ANSWER_TOKENS }
    ]
    return {
      dryRun: true,
      model: llm.model,
      tokenScale: llm.tokenScale(),
      ...estimatePlan(plan, llm.prices, llm.tokenScale())
    }
  }

  const ledger = llm.newLedger()
  const failed: FailedItem[] = []
  let hypotheses: Hypothesis[] = []
  try {
    const answer = await llm.chatJson(HypothesesAnswer, { step: 'hypotheses', messages, temperature: 0 }, ledger)
    const shownIds = new Set(latents)
    hypotheses = answer.value.hypotheses.slice(0, req.max).map((h, id) => ({
      id,
      text: h.text.trim(),
      latents: [...new Set(h.latents)].filter(l => shownIds.has(l)) // citations of latents not shown are dropped
    }))
  } catch (err) {
    failed.push(failedItem(err, 'hypotheses', 'the hypotheses call'))
  }
  const usedRows: Record<string, number[]> = {
    [a.record.id]: [...new Set(activatingRow.values())].sort((x, y) => x - y)
  }
  for (const id of againstIds) {
    const rows = top
      .filter(l => l.against === id && nonActivatingRow.has(l.latent))
      .map(l => nonActivatingRow.get(l.latent)!)
    usedRows[id] = [...new Set([...(usedRows[id] ?? []), ...rows])].sort((x, y) => x - y)
  }
  return {
    dryRun: false,
    a: req.a,
    b: req.b,
    question: req.question,
    model: llm.model,
    hypotheses,
    latents: top.map(l => ({
      latent: l.latent,
      label: l.label,
      frequencyA: l.frequencyA,
      frequencyB: l.frequencyB,
      difference: l.difference,
      against: l.against,
      activatingRow: activatingRow.get(l.latent) ?? null,
      nonActivatingRow: nonActivatingRow.get(l.latent) ?? null,
      labelSource: l.labelSource ?? null,
      labelScore: l.labelScore ?? null
    })),
    usedRows,
    failed,
    usage: ledger.summary()
  }
}

/** Tokens of a typical hypothesis sentence, for estimating prompts that will quote hypotheses not yet written. */
export const TYPICAL_HYPOTHESIS =
  'This response discusses a specific technical topic in detail, using domain vocabulary and concrete examples.'
export const TYPICAL_HYPOTHESIS_TOKENS = countTokens(TYPICAL_HYPOTHESIS)
