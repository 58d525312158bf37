/** @module Verification of hypotheses by an LLM judge on held-out documents (YES/NO per document and hypothesis), and the pure-LLM baseline that proposes hypotheses from samples directly. */
import { z } from 'zod'
import {
  VerifyRequest,
  type DryRunEstimate,
  type FailedItem,
  type VerifiedHypothesis,
  type VerifyResult
} from '@latentbase/shared/contract/llm'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import {
  estimatePlan,
  countTokens,
  type ChatMessage,
  type PlannedCall,
  type UsageLedger
} from '@latentbase/shared/llm/cost'
import { failedItem, type LlmClient } from '@latentbase/shared/llm/client'
import { verificationStatistics } from '@latentbase/shared/analysis/verification'
import { mulberry32 } from '@latentbase/shared/util/random'
import { ApiError } from '../problem.ts'
import { loadReadyDataset, type ReadyDataset } from './ready-dataset.ts'
import { documentsOf, sliceDataset, type SlicedDataset } from './slice-service.ts'
import { restOfSlice, sliceToText } from '@latentbase/shared/contract/slice'
import {
  ANSWER_FRAME_TOKENS,
  HYPOTHESIS_ANSWER_TOKENS,
  HypothesesAnswer,
  TYPICAL_HYPOTHESIS,
  clip,
  generateHypotheses
} from './hypotheses-service.ts'
import type { AnalysisContext } from './context.ts'

/** The judge's answer: "YES"/"NO", tolerant of case and punctuation ("Yes." reads as YES). */
export const JudgeAnswer = z.object({
  answer: z
    .string()
    .transform(s =>
      s
        .trim()
        .toUpperCase()
        .replace(/[^A-Z]/g, '')
    )
    .pipe(z.enum(['YES', 'NO']))
})
export const JUDGE_ANSWER_TOKENS = countTokens('{"answer":"YES"}')
/** Documents per side in one baseline proposal call (the paper's LLM-only baseline reads samples in chunks, then summarizes). */
export const BASELINE_CHUNK = 10

export function judgeMessages(hypothesis: string, document: string): ChatMessage[] {
  return [
    {
      role: 'system',
      content:
        'You judge whether a statement about a document is true of it. Answer with JSON only: {"answer": "YES"} or {"answer": "NO"}.'
    },
    {
      role: 'user',
      content: `Statement: ${hypothesis}\n\nDocument:\n<document>\n${document}\n</document>\n\nIs the statement true of this document? Answer {"answer": "YES"} or {"answer": "NO"}.`
    }
  ]
}

/** The per-document judge: every statement about one document in one call, answered in order. */
export function judgeAllMessages(hypotheses: readonly string[], document: string): ChatMessage[] {
  return [
    {
      role: 'system',
      content:
        'You judge whether statements about a document are true of it. Answer with JSON only: {"answers": ["YES" or "NO", one per statement, in order]}.'
    },
    {
      role: 'user',
      content: `Statements:\n${hypotheses.map((h, i) => `${i + 1}. ${h}`).join('\n')}\n\nDocument:\n<document>\n${document}\n</document>\n\nFor each statement, is it true of this document? Answer {"answers": [...]} with exactly ${hypotheses.length} answers, "YES" or "NO", in the order of the statements.`
    }
  ]
}

const yesNo = z
  .string()
  .transform(s =>
    s
      .trim()
      .toUpperCase()
      .replace(/[^A-Z]/g, '')
  )
  .pipe(z.enum(['YES', 'NO']))
export const judgeAllAnswer = (n: number) =>
  z.object({ answers: z.array(yesNo).length(n, `exactly ${n} answers, one per statement`) })
export const judgeAllAnswerTokens = (n: number) => countTokens(JSON.stringify({ answers: new Array(n).fill('YES') }))

export function baselineProposeMessages(
  docsA: readonly string[],
  docsB: readonly string[],
  max: number
): ChatMessage[] {
  const list = (docs: readonly string[], side: string) =>
    docs.map((d, i) => `<${side}${i + 1}>\n${d}\n</${side}${i + 1}>`).join('\n')
  return [
    {
      role: 'system',
      content:
        'You are a careful data analyst comparing two datasets of texts, A and B, from samples. Reply with JSON only.'
    },
    {
      role: 'user',
      content: `Documents sampled from A:\n${list(docsA, 'A')}\n\nDocuments sampled from B:\n${list(docsB, 'B')}\n\nWhat are the most significant, interesting differences? Write at most ${max} hypotheses about properties more common in A than in B, each one sentence starting with "This response". Reply with JSON: {"hypotheses": [{"text": "This response ..."}]}`
    }
  ]
}

export function baselineSummarizeMessages(proposals: readonly string[], max: number): ChatMessage[] {
  return [
    {
      role: 'system',
      content: 'You merge lists of hypotheses about how dataset A differs from dataset B. Reply with JSON only.'
    },
    {
      role: 'user',
      content: `Hypotheses proposed from several samples:\n${proposals.map(p => `- ${p}`).join('\n')}\n\nMerge duplicates and keep the at most ${max} most significant, interesting ones, each one sentence starting with "This response". Reply with JSON: {"hypotheses": [{"text": "This response ..."}]}`
    }
  ]
}

/**
 * k rows of [0, n) drawn without replacement in a seeded order, skipping `exclude`; a sparse Fisher-Yates, so it costs
 * O(k + |exclude|), not O(n). The first `k` of the order are judged, the next ones feed the baseline proposer.
 */
export function sampleRows(n: number, k: number, seed: number, exclude: ReadonlySet<number>): number[] {
  const rand = mulberry32(seed)
  const swapped = new Map<number, number>()
  const out: number[] = []
  for (let i = 0; i < n && out.length < k; i++) {
    const j = i + Math.floor(rand() * (n - i))
    const vi = swapped.get(i) ?? i
    const vj = swapped.get(j) ?? j
    swapped.set(j, vi)
    if (!exclude.has(vj)) out.push(vj)
  }
  return out
}

interface Side {
  ds: SlicedDataset
  rows: number[]
  texts: string[]
  excluded: number
}

async function loadTexts(ctx: AnalysisContext, ds: ReadyDataset, rows: number[], chars: number): Promise<string[]> {
  if (!rows.length) return []
  const docs = await readDocuments(ctx.objects, ds.prefix, ds.manifest.documents.files, rows, ['text'])
  const at = new Map<number, string>()
  for (let i = 0; i < docs.row.length; i++) at.set(docs.row[i], clip(String(docs.text[i]), chars))
  return rows.map(r => at.get(r) ?? '')
}

export type JudgeMode = 'pair' | 'document'

interface Tally {
  yesA: number
  nA: number
  yesB: number
  nB: number
  failedA: number
  failedB: number
}

/** Judge every (hypothesis, document) pair; a failed pair is counted and reported, never fatal. */
async function judgeAll(
  llm: LlmClient,
  ledger: UsageLedger,
  step: string,
  hypotheses: readonly string[],
  a: Side,
  b: Side,
  failed: FailedItem[],
  mode: JudgeMode,
  progress?: (done: number, total: number) => void
): Promise<Tally[]> {
  const tallies: Tally[] = hypotheses.map(() => ({ yesA: 0, nA: 0, yesB: 0, nB: 0, failedA: 0, failedB: 0 }))
  if (!hypotheses.length) return tallies
  const total = (mode === 'pair' ? hypotheses.length : 1) * (a.texts.length + b.texts.length)
  let done = 0
  const tick = () => {
    done++
    progress?.(done, total)
  }
  const jobs: Promise<void>[] = []
  if (mode === 'document') {
    const schema = judgeAllAnswer(hypotheses.length)
    for (const [sideName, side] of [
      ['a', a],
      ['b', b]
    ] as const) {
      side.texts.forEach((text, di) => {
        jobs.push(
          llm.chatJson(schema, { step, messages: judgeAllMessages(hypotheses, text), temperature: 0 }, ledger).then(
            r => {
              r.value.answers.forEach((answer, hi) => {
                const t = tallies[hi]
                if (sideName === 'a') {
                  t.nA++
                  if (answer === 'YES') t.yesA++
                } else {
                  t.nB++
                  if (answer === 'YES') t.yesB++
                }
              })
              tick()
            },
            err => {
              tick()
              failed.push(failedItem(err, step, `all hypotheses / ${side.ds.record.id} row ${side.rows[di]}`))
              for (const t of tallies) {
                if (sideName === 'a') t.failedA++
                else t.failedB++
              }
            }
          )
        )
      })
    }
    await Promise.all(jobs)
    return tallies
  }
  hypotheses.forEach((h, hi) => {
    for (const [sideName, side] of [
      ['a', a],
      ['b', b]
    ] as const) {
      side.texts.forEach((text, di) => {
        jobs.push(
          llm.chatJson(JudgeAnswer, { step, messages: judgeMessages(h, text), temperature: 0 }, ledger).then(
            r => {
              const t = tallies[hi]
              if (sideName === 'a') {
                t.nA++
                if (r.value.answer === 'YES') t.yesA++
              } else {
                t.nB++
                if (r.value.answer === 'YES') t.yesB++
              }
              tick()
            },
            err => {
              tick()
              failed.push(failedItem(err, step, `hypothesis ${hi} / ${side.ds.record.id} row ${side.rows[di]}`))
              if (sideName === 'a') tallies[hi].failedA++
              else tallies[hi].failedB++
            }
          )
        )
      })
    }
  })
  await Promise.all(jobs)
  return tallies
}

function verified(
  texts: readonly { text: string; latents: number[] }[],
  tallies: Tally[],
  req: { correction: 'holm' | 'bonferroni'; alpha: number }
): VerifiedHypothesis[] {
  const stats = verificationStatistics(tallies, { correction: req.correction, alpha: req.alpha })
  return texts.map((h, i) => ({ text: h.text, latents: h.latents, ...tallies[i], ...stats[i] }))
}

/** POST /hypotheses/verify */
export async function verifyHypotheses(
  ctx: AnalysisContext,
  llm: LlmClient,
  input: VerifyRequest,
  progress?: (fraction: number, phase: string) => void
): Promise<VerifyResult | DryRunEstimate> {
  const parsed = VerifyRequest.parse(input)
  // As GET /diff: with no bWhere at all, b naming a's own dataset is the rest of it ("" still takes the whole).
  const given = (input as { bWhere?: unknown }).bWhere !== undefined
  const req = given ? parsed : { ...parsed, bWhere: restOfSlice(parsed.a, parsed.aWhere, parsed.b) }
  const textOf = (w: typeof req.aWhere) => (w ? sliceToText(w) : '')
  if (req.a === req.b && textOf(req.aWhere) === textOf(req.bWhere)) {
    throw new ApiError(
      400,
      'invalid-request',
      `dataset "${req.a}" is both a and b${req.aWhere ? ' with the same slice' : ''}; to compare parts of one dataset, give aWhere and bWhere slices`
    )
  }
  const perDocument = req.judge === 'document'
  const judgeCalls =
    (perDocument ? 1 : req.hypotheses.length) * 2 * req.perDataset +
    (req.baseline ? (perDocument ? 1 : req.baselineMax) * 2 * req.perDataset : 0)
  if (judgeCalls > req.maxCalls) {
    throw new ApiError(
      400,
      'too-many-calls',
      `this verification needs up to ${judgeCalls} judge calls (${perDocument ? '' : 'hypotheses x '}2 x perDataset${req.baseline ? ", plus the baseline's" : ''}), above maxCalls = ${req.maxCalls}: lower perDataset, or raise maxCalls after checking the cost with dryRun: true`
    )
  }
  const [dsA, dsB] = await Promise.all([
    loadReadyDataset(ctx.datasets, ctx.tenant, req.a, 'a').then(ds =>
      sliceDataset(ctx.objects, ds, req.aWhere, 'aWhere')
    ),
    loadReadyDataset(ctx.datasets, ctx.tenant, req.b, 'b').then(ds =>
      sliceDataset(ctx.objects, ds, req.bWhere, 'bWhere')
    )
  ])
  const extra = req.baseline ? req.baselineDocuments : 0
  const pick = (ds: SlicedDataset, salt: number) => {
    const exclude = new Set(req.exclude[ds.record.id] ?? [])
    const rows = ds.slice?.rows
    // A slice samples positions in its rows (excluded rows mapped to their positions), then names dataset rows.
    const excludeAt = rows ? new Set(Array.from(rows.keys()).filter(i => exclude.has(rows[i]))) : exclude
    const order = sampleRows(documentsOf(ds), req.perDataset + extra, (req.seed ^ salt) >>> 0, excludeAt).map(i =>
      rows ? rows[i] : i
    )
    return { judged: order.slice(0, req.perDataset), proposer: order.slice(req.perDataset), excluded: excludeAt.size }
  }
  const sa = pick(dsA, 0x1a2b3c4d)
  const sb = pick(dsB, 0x5e6f7a8b)
  const [textsA, textsB, propA, propB] = await Promise.all([
    loadTexts(ctx, dsA, sa.judged, req.documentChars),
    loadTexts(ctx, dsB, sb.judged, req.documentChars),
    loadTexts(ctx, dsA, sa.proposer, req.documentChars),
    loadTexts(ctx, dsB, sb.proposer, req.documentChars)
  ])
  const a: Side = { ds: dsA, rows: sa.judged, texts: textsA, excluded: sa.excluded }
  const b: Side = { ds: dsB, rows: sb.judged, texts: textsB, excluded: sb.excluded }
  const chunks: Array<[string[], string[]]> = []
  for (let i = 0; i < Math.max(propA.length, propB.length); i += BASELINE_CHUNK)
    chunks.push([propA.slice(i, i + BASELINE_CHUNK), propB.slice(i, i + BASELINE_CHUNK)])

  if (req.dryRun) {
    const plan: PlannedCall[] = []
    const judgePlan = (step: string, hs: readonly string[]) => {
      if (perDocument) {
        for (const t of [...textsA, ...textsB])
          plan.push({ step, messages: judgeAllMessages(hs, t), expectedOutputTokens: judgeAllAnswerTokens(hs.length) })
        return
      }
      for (const h of hs)
        for (const t of [...textsA, ...textsB])
          plan.push({ step, messages: judgeMessages(h, t), expectedOutputTokens: JUDGE_ANSWER_TOKENS })
    }
    judgePlan(
      'judge',
      req.hypotheses.map(h => h.text)
    )
    // The baseline is planned as writing baselineMax hypotheses (an upper bound when it writes fewer).
    if (req.baseline) {
      const proposeOut = ANSWER_FRAME_TOKENS + req.baselineMax * HYPOTHESIS_ANSWER_TOKENS
      for (const [ca, cb] of chunks)
        plan.push({
          step: 'baseline-propose',
          messages: baselineProposeMessages(ca, cb, req.baselineMax),
          expectedOutputTokens: proposeOut
        })
      if (chunks.length > 1) {
        // Proposals are not written yet: the summary's prompt is estimated with typical hypotheses.
        const typical = new Array(chunks.length * req.baselineMax).fill(TYPICAL_HYPOTHESIS)
        plan.push({
          step: 'baseline-summarize',
          messages: baselineSummarizeMessages(typical, req.baselineMax),
          expectedOutputTokens: proposeOut
        })
      }
      judgePlan('baseline-judge', new Array(req.baselineMax).fill(TYPICAL_HYPOTHESIS))
    }
    return {
      dryRun: true,
      model: llm.model,
      tokenScale: llm.tokenScale(),
      ...estimatePlan(plan, llm.prices, llm.tokenScale())
    }
  }

  const failed: FailedItem[] = []
  const ledger = llm.newLedger()
  const share = req.baseline ? 0.6 : 1
  const tallies = await judgeAll(
    llm,
    ledger,
    'judge',
    req.hypotheses.map(h => h.text),
    a,
    b,
    failed,
    req.judge,
    (d, t) => progress?.((share * d) / t, 'judging')
  )
  const hypotheses = verified(req.hypotheses, tallies, req)
  const sideInfo = (s: Side) => ({
    id: s.ds.record.id,
    documents: documentsOf(s.ds),
    excluded: s.excluded,
    judged: s.rows.length,
    rows: s.rows,
    ...(s.ds.slice ? { where: s.ds.slice.text } : {})
  })
  const result: VerifyResult = {
    dryRun: false,
    model: llm.model,
    a: sideInfo(a),
    b: sideInfo(b),
    correction: req.correction,
    alpha: req.alpha,
    judge: req.judge,
    hypotheses,
    validCount: hypotheses.filter(h => h.valid).length,
    failed,
    usage: ledger.summary()
  }
  if (req.baseline) {
    result.baseline = await runBaseline(
      llm,
      req,
      chunks,
      a,
      b,
      { [dsA.record.id]: sa.proposer, [dsB.record.id]: sb.proposer },
      (f, phase) => progress?.(share + (1 - share) * f, phase)
    )
  }
  return result
}

/** The pure-LLM baseline on the same data: propose from samples (chunked), summarize, then judge on the same held-out documents. */
async function runBaseline(
  llm: LlmClient,
  req: ReturnType<typeof VerifyRequest.parse>,
  chunks: Array<[string[], string[]]>,
  a: Side,
  b: Side,
  rows: Record<string, number[]>,
  progress: (fraction: number, phase: string) => void
): Promise<NonNullable<VerifyResult['baseline']>> {
  progress(0, 'baseline: proposing')
  const failed: FailedItem[] = []
  const propose = llm.newLedger()
  const proposals = await Promise.all(
    chunks.map(([ca, cb], i) =>
      llm
        .chatJson(
          HypothesesAnswer,
          { step: 'baseline-propose', messages: baselineProposeMessages(ca, cb, req.baselineMax), temperature: 0 },
          propose
        )
        .then(
          r => r.value.hypotheses.map(h => h.text.trim()),
          err => {
            failed.push(failedItem(err, 'baseline-propose', `sample chunk ${i}`))
            return [] as string[]
          }
        )
    )
  )
  let texts = proposals.flat()
  if (chunks.length > 1 && texts.length) {
    try {
      const r = await llm.chatJson(
        HypothesesAnswer,
        { step: 'baseline-summarize', messages: baselineSummarizeMessages(texts, req.baselineMax), temperature: 0 },
        propose
      )
      texts = r.value.hypotheses.map(h => h.text.trim())
    } catch (err) {
      failed.push(failedItem(err, 'baseline-summarize', 'the summary call'))
    }
  }
  texts = [...new Set(texts)].slice(0, req.baselineMax)
  const verify = llm.newLedger()
  const tallies = await judgeAll(llm, verify, 'baseline-judge', texts, a, b, failed, req.judge, (d, t) =>
    progress(0.1 + (0.9 * d) / t, 'baseline: judging')
  )
  const hypotheses = texts.length
    ? verified(
        texts.map(text => ({ text, latents: [] })),
        tallies,
        req
      )
    : []
  return {
    rows,
    hypotheses,
    validCount: hypotheses.filter(h => h.valid).length,
    proposeUsage: propose.summary(),
    verifyUsage: verify.summary(),
    failed
  }
}

/**
 * The two LLM analyses in the AnalysisRunner shape of analysis-jobs.ts (`(ctx, request, progress) => result`), so they
 * can run as analysis jobs once the job contract lists them (AnalysisKind is not ours to extend).
 */
export function llmAnalysisRunners(llm: LlmClient) {
  return {
    hypotheses: (ctx: AnalysisContext, request: Record<string, unknown>) =>
      generateHypotheses(ctx, llm, request as never),
    'hypotheses-verify': (
      ctx: AnalysisContext,
      request: Record<string, unknown>,
      progress?: (fraction: number, phase: string) => void
    ) => verifyHypotheses(ctx, llm, request as never, progress ?? ctx.progress)
  }
}
