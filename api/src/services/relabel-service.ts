/**
 * @module Relabel: an LLM writes a label for each latent from a dataset's windows (firing tokens marked << >>), then
 * scores it delphi-style on held-out windows: detection (which windows fire?) and fuzzing (which windows are marked
 * on the right tokens?), both balanced accuracies. Labels and scores go to the tenant's label overlay, which every
 * analysis merges over the encoder's own labels.
 *
 * Windows come from the stored top examples (examples/top-examples.parquet: the dataset's strongest documents per
 * latent, a window of tokens with per-token activations around the max). Ranks alternate between the explainer
 * (even) and scoring (odd), so both span the stored range and no window is scored that the explainer saw.
 * Non-activating windows are seeded draws of documents where the latent is absent, cut to ~20 words. Where the
 * process holds the encoder, scoring windows are sampled across the activation quantiles and re-encoded instead.
 * The offline labeler (`labeler: "offline"`) needs no LLM: the words of the firing tokens by lift over the silent
 * windows, scored on the same sets by a rule (a window with a label word fires).
 */
import { z } from 'zod'
import {
  RelabelRequest,
  type DryRunEstimate,
  type FailedItem,
  type RelabelResult,
  type RelabelledLatent
} from '@latentbase/shared/contract/llm'
import { readByLatent } from '@latentbase/shared/store/latent-shards/read-by-latent'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { readLatentStats } from '@latentbase/shared/store/stats/read'
import { writeLabelOverlay, type OverlayLine } from '@latentbase/shared/catalog/label-overlay'
import { estimatePlan, countTokens, type ChatMessage, type PlannedCall, UsageLedger } from '@latentbase/shared/llm/cost'
import { failedItem, type LlmClient } from '@latentbase/shared/llm/client'
import { mulberry32 } from '@latentbase/shared/util/random'
import { ApiError } from '../problem.ts'
import { requireLlm } from './llm-helpers.ts'
import { windowAround } from '@latentbase/shared/analysis/firing-summary'
import type { AnalysisContext } from './context.ts'
import { loadReadyDataset } from './ready-dataset.ts'
import { poolRolesOf } from '@latentbase/shared/contract/dataset'
import { loadLabelInfo } from './latent-page-service.ts'
import { readExamplesOfLatents } from '@latentbase/shared/store/top-examples/read'

/** Words of a non-activating window (a top-example window is 25 tokens, about 20 words). */
export const WINDOW_WORDS = 20
/** Non-activating windows shown to the explainer beside the activating ones, as contrast. */
export const EXPLAIN_CONTRAST = 3
export const TYPICAL_LABEL = 'mentions of refunds or returning a purchased product'
export const EXPLAIN_ANSWER_TOKENS = countTokens(JSON.stringify({ label: TYPICAL_LABEL }))
export const answersTokens = (n: number) => countTokens(JSON.stringify({ answers: new Array(n).fill(1) }))

const bit = z.union([z.number(), z.boolean(), z.string()]).transform((v, ctx) => {
  if (v === true || v === 1 || (typeof v === 'string' && /^\s*(1|yes|true)\W*$/i.test(v))) return 1
  if (v === false || v === 0 || (typeof v === 'string' && /^\s*(0|no|false)\W*$/i.test(v))) return 0
  ctx.addIssue({ code: 'custom', message: `expected 1 or 0, got ${JSON.stringify(v)}` })
  return z.NEVER
})
export const answersSchema = (n: number) =>
  z.object({ answers: z.array(bit).length(n, `exactly ${n} answers, one per text, in order`) })
export const ExplainAnswer = z.object({ label: z.string().trim().min(1).max(300) })

/** A window of tokens with the `marked` ones wrapped in << >> (runs merged; a leading space stays outside the marks). */
export function markWindow(tokens: readonly string[], marked: ArrayLike<number | boolean>): string {
  let out = ''
  let open = false
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]
    const m = Boolean(marked[i])
    if (m && !open) {
      const lead = /^\s*/.exec(t)![0]
      out += `${lead}<<${t.slice(lead.length)}`
      open = true
      continue
    }
    if (!m && open) {
      out += '>>'
      open = false
    }
    out += t
  }
  if (open) out += '>>'
  return out.replace(/\s+/g, ' ').trim()
}

export function explainMessages(activating: readonly string[], nonActivating: readonly string[]): ChatMessage[] {
  return [
    { role: 'system', content: 'You explain features of a language model. Reply with JSON only.' },
    {
      role: 'user',
      content:
        'A feature of a language model fires on some tokens of some texts. Below are texts where it fires, with the tokens it fires on marked <<like this>>, ' +
        'from its strongest examples to weaker ones, and texts where it does not fire.\n\n' +
        `Texts where it fires:\n${activating.map((t, i) => `${i + 1}. ${t}`).join('\n')}\n\n` +
        (nonActivating.length
          ? `Texts where it does not fire:\n${nonActivating.map((t, i) => `${i + 1}. ${t}`).join('\n')}\n\n`
          : '') +
        'Describe in one short phrase what the feature detects (what the marked tokens have in common, and in what context), e.g. "mentions of refunds or returns". ' +
        'Reply with JSON: {"label": "..."}'
    }
  ]
}

export function detectionMessages(label: string, texts: readonly string[]): ChatMessage[] {
  return [
    {
      role: 'system',
      content: 'You predict where a described feature of a language model fires. Reply with JSON only.'
    },
    {
      role: 'user',
      content:
        `Feature: ${label}\n\nTexts:\n${texts.map((t, i) => `${i + 1}. ${t}`).join('\n')}\n\n` +
        `For each of the ${texts.length} texts, does the feature fire somewhere in it? Reply with JSON: {"answers": [1 or 0, one per text, in order]}`
    }
  ]
}

export function fuzzingMessages(label: string, texts: readonly string[]): ChatMessage[] {
  return [
    {
      role: 'system',
      content:
        'You check whether highlighted tokens match a described feature of a language model. Reply with JSON only.'
    },
    {
      role: 'user',
      content:
        `Feature: ${label}\n\nIn each text some tokens are marked <<like this>>. In some texts they are the tokens the feature fires on; in others they were marked at random.\n\n` +
        `Texts:\n${texts.map((t, i) => `${i + 1}. ${t}`).join('\n')}\n\n` +
        `For each of the ${texts.length} texts, are the marked tokens the ones the feature fires on? Reply with JSON: {"answers": [1 or 0, one per text, in order]}`
    }
  ]
}

/** (true-positive rate + true-negative rate) / 2; a class with no items counts as its rate being unknown (the other alone). */
export function balancedAccuracy(truth: ArrayLike<number>, predicted: ArrayLike<number>): number | null {
  let tp = 0,
    p = 0,
    tn = 0,
    n = 0
  for (let i = 0; i < truth.length; i++) {
    if (truth[i]) {
      p++
      if (predicted[i]) tp++
    } else {
      n++
      if (!predicted[i]) tn++
    }
  }
  if (!p && !n) return null
  if (!p) return tn / n
  if (!n) return tp / p
  return (tp / p + tn / n) / 2
}

function shuffle<T>(items: T[], rand: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    const t = items[i]
    items[i] = items[j]
    items[j] = t
  }
  return items
}

interface Planned {
  latent: number
  explain: string[]
  /** The explaining windows unmarked: tokens and the firing mask (the offline labeler reads them). */
  explainWindows: Array<{ tokens: string[]; firing: Uint8Array }>
  contrast: string[]
  /** Held-out activating windows: tokens and the firing mask. */
  scored: Array<{ tokens: string[]; firing: Uint8Array }>
  nonActivating: string[]
}

/** A fuzzed copy of a firing mask: as many marks, on tokens that do not fire (null when there are too few of them). */
function fuzzMask(firing: Uint8Array, rand: () => number): Uint8Array | null {
  const count = firing.reduce((a, b) => a + b, 0)
  const quiet: number[] = []
  for (let i = 0; i < firing.length; i++) if (!firing[i]) quiet.push(i)
  if (!count || quiet.length < count) return null
  const out = new Uint8Array(firing.length)
  for (const i of shuffle(quiet, rand).slice(0, count)) out[i] = 1
  return out
}

function detectionSet(p: Planned, rand: () => number) {
  const items = [
    ...p.scored.map(s => ({ text: markWindow(s.tokens, new Uint8Array(s.tokens.length)), truth: 1 })),
    ...p.nonActivating.map(text => ({ text, truth: 0 }))
  ]
  return shuffle(items, rand)
}

function fuzzingSet(p: Planned, rand: () => number) {
  const items: Array<{ text: string; truth: number }> = []
  for (const s of p.scored) {
    items.push({ text: markWindow(s.tokens, s.firing), truth: 1 })
    const wrong = fuzzMask(s.firing, rand)
    if (wrong) items.push({ text: markWindow(s.tokens, wrong), truth: 0 })
  }
  return shuffle(items, rand)
}

/** The source of labels the offline labeler writes. */
export const OFFLINE_EXAMPLES_SOURCE = 'offline-examples'
/** Words in an offline label. */
const OFFLINE_LABEL_WORDS = 3

/**
 * A token as a label word: lower-cased, without the punctuation around its letters or digits ("wrote:" is "wrote");
 * a token of punctuation alone stays ("</" and ">": markup latents fire on them).
 */
const labelWord = (token: string) => {
  const t = token.trim().toLowerCase()
  return t.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '') || t
}

/**
 * The offline label of a latent: the words of its firing tokens, ranked by the share of its activating windows that
 * fire on them less the share of its silent windows that contain them (a word everywhere explains nothing), up to
 * three that at least two windows (or the only one) fire on, then one activating window: `"w1", "w2" (e.g.
 * "...window...")`, the shape of the demo encoder's offline labels. null when no word qualifies.
 */
export function offlineLabel(
  windows: ReadonlyArray<{ tokens: readonly string[]; firing: ArrayLike<number> }>,
  silent: readonly string[]
): string | null {
  return offlineLabelAndWords(windows, silent)?.label ?? null
}

/** offlineLabel, with the words it chose (which scoring tests windows for). */
function offlineLabelAndWords(
  windows: ReadonlyArray<{ tokens: readonly string[]; firing: ArrayLike<number> }>,
  silent: readonly string[]
): { label: string; words: string[] } | null {
  if (!windows.length) return null
  const firingIn = new Map<string, number>()
  for (const w of windows) {
    const words = new Set<string>()
    for (let i = 0; i < w.tokens.length; i++) if (w.firing[i]) words.add(labelWord(w.tokens[i]))
    words.delete('')
    for (const word of words) firingIn.set(word, (firingIn.get(word) ?? 0) + 1)
  }
  const quiet = silent.map(t => t.toLowerCase())
  const share = (word: string) => (quiet.length ? quiet.filter(t => containsWord(t, word)).length / quiet.length : 0)
  const need = Math.min(2, windows.length)
  const ranked = [...firingIn]
    .filter(([, n]) => n >= need)
    .map(([word, n]) => ({
      word,
      n,
      score: n / windows.length - share(word)
    }))
    .filter(w => w.score > 0)
    .sort((a, b) => b.score - a.score || b.n - a.n || (a.word < b.word ? -1 : 1))
    .slice(0, OFFLINE_LABEL_WORDS)
  if (!ranked.length) return null
  // The example: the best-ranked window around its first firing token that is the label's first word.
  let example = ''
  for (const w of windows) {
    const at = w.tokens.findIndex((t, i) => w.firing[i] && labelWord(t) === ranked[0].word)
    if (at >= 0) {
      example = windowAround(w.tokens, at)
      break
    }
  }
  const words = ranked.map(w => w.word)
  return { label: `${words.map(w => JSON.stringify(w)).join(', ')} (e.g. "${example}")`, words }
}

/**
 * Whether lower-cased `text` holds `word`: as a whole word when it is made of letters or digits ("i" is not in
 * "this"), anywhere when it holds punctuation ("</").
 */
function containsWord(text: string, word: string): boolean {
  if (!/^[\p{L}\p{N}]+$/u.test(word)) return text.includes(word)
  for (let at = text.indexOf(word); at >= 0; at = text.indexOf(word, at + 1)) {
    const before = text.slice(0, at).at(-1) ?? ''
    const after = text[at + word.length] ?? ''
    if (!/[\p{L}\p{N}]/u.test(before) && !/[\p{L}\p{N}]/u.test(after)) return true
  }
  return false
}

/**
 * Scores of an offline label on the same held-out sets the LLM's are scored on, with a rule in place of a reader:
 * detection says a window fires when it contains a label word, fuzzing that a window is marked right when a marked
 * span contains one.
 */
function scoreOffline(
  p: Planned,
  words: readonly string[],
  seed: number
): { detection: number | null; fuzzing: number | null } {
  const has = (text: string) => {
    const t = text.toLowerCase()
    return words.some(w => containsWord(t, w)) ? 1 : 0
  }
  const marked = (text: string) => [...text.matchAll(/<<(.*?)>>/g)].map(m => m[1]).join(' ')
  const rand = mulberry32((seed ^ Math.imul(p.latent + 1, 0x85ebca6b)) >>> 0)
  const det = detectionSet(p, rand)
  const fuzz = fuzzingSet(p, rand)
  const accuracy = (items: Array<{ text: string; truth: number }>, predict: (text: string) => number) =>
    items.length < 2
      ? null
      : balancedAccuracy(
          items.map(x => x.truth),
          items.map(x => predict(x.text))
        )
  return { detection: accuracy(det, has), fuzzing: accuracy(fuzz, text => has(marked(text))) }
}

/** The offline labeler on one latent: a latent no word qualifies for is reported in `skipped` and keeps its label. */
function labelOffline(
  p: Planned,
  seed: number,
  skipped: Array<{ latent: number; reason: string }>
): { label: string | null; detection: number | null; fuzzing: number | null } {
  const made = offlineLabelAndWords(p.explainWindows, [...p.contrast, ...p.nonActivating])
  if (!made) {
    skipped.push({
      latent: p.latent,
      reason: 'no word of its firing tokens is in two of its windows more often than in windows where it is silent'
    })
    return { label: null, detection: null, fuzzing: null }
  }
  return { label: made.label, ...scoreOffline(p, made.words, seed) }
}

/** One latent's label and scores; LLM failures are reported in `failed`, never thrown. */
async function relabelOne(
  llm: LlmClient,
  ledger: UsageLedger,
  p: Planned,
  seed: number,
  failed: FailedItem[]
): Promise<{ label: string | null; detection: number | null; fuzzing: number | null }> {
  let label: string
  try {
    label = (
      await llm.chatJson(
        ExplainAnswer,
        { step: 'explain', messages: explainMessages(p.explain, p.contrast), temperature: 0 },
        ledger
      )
    ).value.label
  } catch (err) {
    failed.push(failedItem(err, 'explain', `latent ${p.latent}`))
    return { label: null, detection: null, fuzzing: null }
  }
  const score = async (step: 'detection' | 'fuzzing', items: Array<{ text: string; truth: number }>) => {
    if (items.length < 2) return null
    const messages =
      step === 'detection'
        ? detectionMessages(
            label,
            items.map(x => x.text)
          )
        : fuzzingMessages(
            label,
            items.map(x => x.text)
          )
    try {
      const r = await llm.chatJson(answersSchema(items.length), { step, messages, temperature: 0 }, ledger)
      return balancedAccuracy(
        items.map(x => x.truth),
        r.value.answers
      )
    } catch (err) {
      failed.push(failedItem(err, step, `latent ${p.latent}`))
      return null
    }
  }
  const rand = mulberry32((seed ^ Math.imul(p.latent + 1, 0x85ebca6b)) >>> 0)
  const [detection, fuzzing] = await Promise.all([
    score('detection', detectionSet(p, rand)),
    score('fuzzing', fuzzingSet(p, rand))
  ])
  return { label, detection, fuzzing }
}

/** A seeded window of ~WINDOW_WORDS words of a text. */
function textWindow(text: string, rand: () => number): string {
  const words = text.split(/\s+/).filter(Boolean)
  if (words.length <= WINDOW_WORDS) return words.join(' ')
  const start = Math.floor(rand() * (words.length - WINDOW_WORDS + 1))
  return words.slice(start, start + WINDOW_WORDS).join(' ')
}

/** POST /encoders/:id/relabel (directly, or as the `relabel` analysis job). */
export async function relabelEncoder(
  ctx: AnalysisContext,
  encoderId: string,
  llm: LlmClient | null,
  input: RelabelRequest,
  progress?: (fraction: number, phase: string) => void
): Promise<RelabelResult | DryRunEstimate> {
  const req = RelabelRequest.parse(input)
  const offline = req.labeler === 'offline'
  if (!offline) requireLlm(llm, 'POST /encoders/{id}/relabel (labeler "llm"; labeler "offline" needs none)')
  const report = progress ?? ctx.progress ?? (() => {})
  const ds = await loadReadyDataset(ctx.datasets, ctx.tenant, req.dataset, 'dataset')
  const { manifest, prefix } = ds
  if (manifest.encoder.id !== encoderId) {
    throw new ApiError(
      409,
      'encoder-mismatch',
      `dataset "${ds.record.id}" was encoded with ${manifest.encoder.id}, not ${encoderId}: relabel an encoder on a dataset it encoded`
    )
  }
  if (!manifest.topExamples) {
    throw new ApiError(
      422,
      'no-examples',
      `dataset "${ds.record.id}" has no stored top examples (per-token activations), so there are no windows to label from; re-encode it with top examples`
    )
  }
  const nLatents = manifest.encoder.dSae
  const nDocs = manifest.documents.count
  const bad = req.latents?.find(l => l >= nLatents)
  if (bad !== undefined)
    throw new ApiError(
      400,
      'invalid-request',
      `latent ${bad} does not exist: encoder ${encoderId} has latents 0-${nLatents - 1}`
    )

  let latents: number[]
  if (req.latents) latents = [...new Set(req.latents)]
  else {
    const stats = await readLatentStats(ctx.objects, prefix + manifest.stats.key, ['doc_count'])
    const order = Int32Array.from({ length: nLatents }, (_, i) => i).sort(
      (x, y) => stats.docCount[y] - stats.docCount[x] || x - y
    )
    latents = Array.from(order.subarray(0, req.limit)).filter(l => stats.docCount[l] > 0)
  }
  report(0, 'reading windows')
  const examplesKey = prefix + manifest.topExamples.key
  const skipped: RelabelResult['skipped'] = []
  const byLatent = await readExamplesOfLatents(ctx.objects, examplesKey, latents)
  ctx.signal?.throwIfAborted()
  for (const l of latents)
    if (!byLatent.has(l))
      skipped.push({ latent: l, reason: 'no stored examples in this dataset (it never fires there)' })
  const kept = latents.filter(l => byLatent.has(l))

  // Non-activating windows: seeded draws of rows where the latent is absent.
  const wantQuiet = req.scoreExamples + EXPLAIN_CONTRAST
  const csc = kept.length
    ? await readByLatent(
        ctx.objects,
        prefix,
        manifest.latents.byLatent,
        kept,
        { nDocs, nLatents },
        { positions: false }
      )
    : null
  const quietRows = new Map<number, number[]>()
  for (const l of kept) {
    const present = new Set<number>()
    for (let j = csc!.indptr[l]; j < csc!.indptr[l + 1]; j++) present.add(csc!.docs[j])
    const rand = mulberry32((req.seed ^ Math.imul(l + 7, 0x9e3779b1)) >>> 0)
    const rows = new Set<number>()
    for (let t = 0; t < wantQuiet * 20 && rows.size < Math.min(wantQuiet, nDocs - present.size); t++) {
      const r = Math.floor(rand() * nDocs)
      if (!present.has(r)) rows.add(r)
    }
    quietRows.set(l, [...rows])
  }
  const allQuiet = [...new Set([...quietRows.values()].flat())].sort((a, b) => a - b)
  const texts = new Map<number, string>()
  if (allQuiet.length) {
    const docs = await readDocuments(ctx.objects, prefix, manifest.documents.files, allQuiet, ['text'])
    for (let i = 0; i < docs.row.length; i++) texts.set(docs.row[i], String(docs.text[i]))
  }
  // Scoring windows across the activation distribution (delphi): documents at evenly spaced quantiles of each
  // latent's pooled values, top examples excluded, re-encoded for per-token activations where this process holds
  // the encoder. Without one, the stored top examples are split between explaining and scoring.
  const quantileScored = new Map<number, Planned['scored']>()
  let sampling: 'quantiles' | 'top-examples' = 'top-examples'
  if (ctx.windowMiner && csc && !req.dryRun) {
    const pairs: Array<{ latent: number; doc: number }> = []
    for (const l of kept) {
      const exclude = new Set(byLatent.get(l)!.doc)
      const cand: Array<[doc: number, value: number]> = []
      for (let j = csc.indptr[l]; j < csc.indptr[l + 1]; j++)
        if (!exclude.has(csc.docs[j])) cand.push([csc.docs[j], csc.values[j]])
      cand.sort((x, y) => x[1] - y[1] || x[0] - y[0])
      const picked = new Set<number>()
      for (let i = 0; i < req.scoreExamples && cand.length; i++)
        picked.add(cand[Math.min(cand.length - 1, Math.floor(((i + 0.5) / req.scoreExamples) * cand.length))][0])
      for (const doc of picked) pairs.push({ latent: l, doc })
    }
    report(0.02, 'sampling windows across activation quantiles')
    for (const w of await ctx.windowMiner({ prefix, manifest, poolRoles: poolRolesOf(ds.record) }, pairs)) {
      const list = quantileScored.get(w.latent) ?? []
      list.push({ tokens: w.tokens, firing: Uint8Array.from(w.activations, a => (a > 0 ? 1 : 0)) })
      quantileScored.set(w.latent, list)
    }
    sampling = 'quantiles'
  }
  const planned: Planned[] = kept.map(l => {
    const ex = byLatent.get(l)!
    const rand = mulberry32((req.seed ^ Math.imul(l + 3, 0x27d4eb2d)) >>> 0)
    const explain: string[] = []
    const explainWindows: Planned['explainWindows'] = []
    let scored: Planned['scored'] = []
    for (let i = 0; i < ex.doc.length; i++) {
      const tokens = ex.tokens[i]
      const firing = Uint8Array.from(ex.activations[i], a => (a > 0 ? 1 : 0))
      // Sampled across quantiles: every top example explains. Otherwise one stored example only explains, and
      // nothing is left to score on.
      if (sampling === 'quantiles' || i % 2 === 0 || ex.doc.length === 1) {
        if (explain.length < req.explainExamples) {
          explain.push(markWindow(tokens, firing))
          explainWindows.push({ tokens, firing })
        }
      } else if (scored.length < req.scoreExamples) scored.push({ tokens, firing })
    }
    if (sampling === 'quantiles') scored = (quantileScored.get(l) ?? []).slice(0, req.scoreExamples)
    const quiet = (quietRows.get(l) ?? []).map(r => textWindow(texts.get(r) ?? '', rand)).filter(Boolean)
    return {
      latent: l,
      explain,
      explainWindows,
      contrast: quiet.slice(0, EXPLAIN_CONTRAST),
      scored,
      nonActivating: quiet.slice(EXPLAIN_CONTRAST, EXPLAIN_CONTRAST + req.scoreExamples)
    }
  })

  if (req.dryRun && offline)
    return { dryRun: true, model: 'offline', tokenScale: { input: 1, output: 1 }, ...estimatePlan([], null) }
  if (req.dryRun) {
    const plan: PlannedCall[] = []
    for (const p of planned) {
      plan.push({
        step: 'explain',
        messages: explainMessages(p.explain, p.contrast),
        expectedOutputTokens: EXPLAIN_ANSWER_TOKENS
      })
      // The label is not written yet: scoring prompts are estimated with a typical one.
      const rand = mulberry32((req.seed ^ Math.imul(p.latent + 1, 0x85ebca6b)) >>> 0)
      const det = detectionSet(p, rand)
      const fuzz = fuzzingSet(p, rand)
      if (det.length >= 2)
        plan.push({
          step: 'detection',
          messages: detectionMessages(
            TYPICAL_LABEL,
            det.map(x => x.text)
          ),
          expectedOutputTokens: answersTokens(det.length)
        })
      if (fuzz.length >= 2)
        plan.push({
          step: 'fuzzing',
          messages: fuzzingMessages(
            TYPICAL_LABEL,
            fuzz.map(x => x.text)
          ),
          expectedOutputTokens: answersTokens(fuzz.length)
        })
    }
    return {
      dryRun: true,
      model: llm!.model,
      tokenScale: llm!.tokenScale(),
      ...estimatePlan(plan, llm!.prices, llm!.tokenScale())
    }
  }

  const before = await loadLabelInfo(ctx.encoders, encoderId, nLatents, {
    objects: ctx.objects,
    tenant: ctx.tenant,
    fingerprint: manifest.encoderFingerprint
  })
  const ledger = llm && !offline ? llm.newLedger() : new UsageLedger()
  const failed: FailedItem[] = []
  const source = offline ? OFFLINE_EXAMPLES_SOURCE : `llm:${llm!.model}`
  let done = 0
  const labels: RelabelledLatent[] = await Promise.all(
    planned.map(async p => {
      const r = offline ? labelOffline(p, req.seed, skipped) : await relabelOne(llm!, ledger, p, req.seed, failed)
      report(0.05 + 0.9 * (++done / planned.length), 'labelling')
      return {
        latent: p.latent,
        label: r.label,
        previous: { label: before.labels[p.latent] ?? null, source: before.sources[p.latent] ?? null },
        source,
        detection: round4(r.detection),
        fuzzing: round4(r.fuzzing),
        examples: { explain: p.explain.length, activating: p.scored.length, nonActivating: p.nonActivating.length }
      }
    })
  )
  const written = offline ? labels.filter(l => l.label) : labels
  const lines: OverlayLine[] = written
    .filter(l => l.label)
    .map(l => ({ latent: l.latent, label: l.label!, source, detection: l.detection, fuzzing: l.fuzzing }))
  const overlayKey = await writeLabelOverlay(ctx.objects, ctx.tenant, manifest.encoderFingerprint, lines)
  report(1, 'done')
  return {
    dryRun: false,
    encoder: encoderId,
    dataset: ds.record.id,
    model: offline ? 'offline' : llm!.model,
    source,
    overlayKey,
    sampling,
    labels: written,
    skipped,
    failed,
    usage: ledger.summary()
  }
}

const round4 = (x: number | null) => (x === null ? null : Math.round(x * 1e4) / 1e4)
