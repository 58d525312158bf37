/** @module Hypotheses: an LLM writes hypotheses from the diff and a judge verifies them; each step shows its dry-run cost estimate before anything is spent. */
import { useState } from 'preact/hooks'
import type { DryRunEstimate, HypothesesResult, VerifyResult } from '@latentbase/shared/contract/llm'
import { api } from '../api.ts'
import {
  DatasetSelect,
  ErrorBox,
  Field,
  LatentLink,
  Page,
  WhereField,
  fmt,
  sliceError,
  useAction,
  useDatasets,
  type Route
} from '../ui.tsx'

export function Estimate({
  estimate,
  onRun,
  pending,
  what = 'Run'
}: {
  estimate: DryRunEstimate
  onRun: () => void
  pending: boolean
  what?: string
}) {
  return (
    <div class="estimate" role="status" data-testid="estimate">
      <strong>Estimate (nothing spent yet):</strong> {estimate.calls} LLM calls to {estimate.model}, about{' '}
      {estimate.inputTokens.toLocaleString('en')} input and {estimate.outputTokens.toLocaleString('en')} output tokens,
      cost {fmt.cost(estimate.cost, estimate.currency)}.
      {estimate.steps.length > 1 ? (
        <ul class="small">
          {estimate.steps.map(s => (
            <li key={s.step}>
              {s.step}: {s.calls} calls, {s.inputTokens + s.outputTokens} tokens
            </li>
          ))}
        </ul>
      ) : null}
      <div class="row-actions">
        <button type="button" onClick={onRun} disabled={pending}>
          {pending ? 'Running…' : `${what} (spend)`}
        </button>
      </div>
    </div>
  )
}

export function HypothesesView({ route }: { route: Route }) {
  const datasets = useDatasets()
  const all = datasets.data?.datasets ?? []
  const [form, setForm] = useState(() => ({
    a: route.params.get('a') ?? '',
    b: route.params.get('b') ?? '',
    aWhere: route.params.get('aWhere') ?? '',
    bWhere: route.params.get('bWhere') ?? '',
    question: '',
    max: '5',
    topLatents: '20',
    perDataset: '50',
    judge: 'pair'
  }))
  const [genEstimate, setGenEstimate] = useState<DryRunEstimate | null>(null)
  const [hyps, setHyps] = useState<HypothesesResult | null>(null)
  const [verEstimate, setVerEstimate] = useState<DryRunEstimate | null>(null)
  const [verified, setVerified] = useState<VerifyResult | null>(null)
  const set = (k: keyof typeof form) => (e: Event) => {
    setForm({ ...form, [k]: (e.target as HTMLInputElement).value })
    setGenEstimate(null)
  }
  // Slices (docs/slices.md) of A and B: POST /diff/hypotheses takes one bWhere per b (a list), verification one.
  const aWhere = form.aWhere.trim(),
    bWhere = form.bWhere.trim()
  const slices = { ...(aWhere ? { aWhere } : {}), ...(bWhere ? { bWhere } : {}) }
  const genBody = (dryRun: boolean) => ({
    a: form.a,
    b: form.b,
    ...slices,
    ...(bWhere ? { bWhere: [bWhere] } : {}),
    max: Number(form.max),
    topLatents: Number(form.topLatents),
    ...(form.question ? { question: form.question } : {}),
    dryRun
  })
  const verBody = (dryRun: boolean) => ({
    a: form.a,
    b: form.b,
    ...slices,
    hypotheses: hyps!.hypotheses.map(h => ({ text: h.text, latents: h.latents })),
    exclude: hyps!.usedRows,
    perDataset: Number(form.perDataset),
    judge: form.judge,
    dryRun
  })
  const generate = useAction(async (spend: boolean) => {
    if (!spend) {
      setHyps(null)
      setVerified(null)
      setGenEstimate(await api<DryRunEstimate>('/diff/hypotheses', { method: 'POST', body: genBody(true) }))
      return
    }
    setHyps(await api<HypothesesResult>('/diff/hypotheses', { method: 'POST', body: genBody(false) }))
    setGenEstimate(null)
  })
  const aError = sliceError(generate.error, 'aWhere'),
    bError = sliceError(generate.error, 'bWhere')
  const verify = useAction(async (spend: boolean) => {
    if (!spend) {
      setVerEstimate(await api<DryRunEstimate>('/hypotheses/verify', { method: 'POST', body: verBody(true) }))
      return
    }
    setVerified(await api<VerifyResult>('/hypotheses/verify', { method: 'POST', body: verBody(false) }))
    setVerEstimate(null)
  })
  return (
    <Page
      title="Hypotheses"
      intro="An LLM reads the top latents of the diff with an example each and writes hypotheses; a judge then checks each on held-out documents. The cost is estimated before anything is spent."
    >
      <form
        class="card"
        onSubmit={e => {
          e.preventDefault()
          void generate.run(false)
        }}
        aria-label="hypotheses options"
      >
        <div class="grid">
          <DatasetSelect
            label="A"
            value={form.a}
            onChange={v => setForm({ ...form, a: v })}
            datasets={all}
            id="hyp-a"
          />
          <DatasetSelect
            label="B"
            value={form.b}
            onChange={v => setForm({ ...form, b: v })}
            datasets={all.filter(d => d.id !== form.a || aWhere || bWhere)}
            id="hyp-b"
          />
          <WhereField
            label="A where"
            name="aWhere"
            value={form.aWhere}
            onInput={v => {
              setForm({ ...form, aWhere: v })
              setGenEstimate(null)
            }}
            error={aError}
            dataset={form.a || undefined}
          />
          <WhereField
            label="B where"
            name="bWhere"
            value={form.bWhere}
            onInput={v => {
              setForm({ ...form, bWhere: v })
              setGenEstimate(null)
            }}
            error={bError}
            dataset={form.b || form.a || undefined}
          />
          <Field label="Question">
            <input
              type="text"
              value={form.question}
              onInput={set('question')}
              placeholder="What are the most significant, interesting differences?"
            />
          </Field>
          <Field label="Hypotheses">
            <input type="number" min="1" max="10" value={form.max} onInput={set('max')} />
          </Field>
          <Field label="Top latents shown">
            <input type="number" min="1" max="200" value={form.topLatents} onInput={set('topLatents')} />
          </Field>
        </div>
        <div class="row-actions">
          <button type="submit" disabled={!form.a || !form.b || generate.pending}>
            Estimate cost
          </button>
        </div>
        {genEstimate ? (
          <Estimate
            estimate={genEstimate}
            onRun={() => void generate.run(true)}
            pending={generate.pending}
            what="Generate"
          />
        ) : null}
      </form>
      <ErrorBox error={aError || bError ? datasets.error : (generate.error ?? datasets.error)} />
      {hyps ? (
        <div class="card">
          <h2>
            {hyps.hypotheses.length} hypotheses{' '}
            <span class="muted small">
              ({hyps.model}, {fmt.cost(hyps.usage.cost, hyps.usage.currency)})
            </span>
          </h2>
          <ol>
            {hyps.hypotheses.map(h => (
              <li key={h.id}>
                {h.text}{' '}
                {h.latents.map(l => (
                  <LatentLink key={l} latent={l} dataset={hyps.a} />
                ))}
              </li>
            ))}
          </ol>
          <div class="grid">
            <Field label="Documents judged per dataset">
              <input
                type="number"
                min="1"
                max="5000"
                value={form.perDataset}
                onInput={e => setForm({ ...form, perDataset: (e.target as HTMLInputElement).value })}
              />
            </Field>
            <Field label="Judge">
              <select
                value={form.judge}
                onChange={e => setForm({ ...form, judge: (e.target as HTMLSelectElement).value })}
              >
                <option value="pair">per document and hypothesis (the paper)</option>
                <option value="document">per document (fewer calls)</option>
              </select>
            </Field>
          </div>
          <div class="row-actions">
            <button type="button" onClick={() => void verify.run(false)} disabled={verify.pending}>
              Estimate verification cost
            </button>
          </div>
          {verEstimate ? (
            <Estimate
              estimate={verEstimate}
              onRun={() => void verify.run(true)}
              pending={verify.pending}
              what="Verify"
            />
          ) : null}
          <ErrorBox error={verify.error} />
        </div>
      ) : null}
      {verified ? (
        <div class="card">
          <h2>
            Verified: {verified.validCount} of {verified.hypotheses.length} valid
          </h2>
          <table>
            <thead>
              <tr>
                <th>Hypothesis</th>
                <th class="num">YES in A</th>
                <th class="num">YES in B</th>
                <th class="num">Difference [95%]</th>
                <th class="num">adj. p</th>
                <th>Verdict</th>
              </tr>
            </thead>
            <tbody>
              {verified.hypotheses.map(h => (
                <tr key={h.text}>
                  <td>{h.text}</td>
                  <td class="num">{fmt.pct(h.shareA)}</td>
                  <td class="num">{fmt.pct(h.shareB)}</td>
                  <td class="num">
                    {fmt.pct(h.difference)} [{fmt.pct(h.ci95[0])}, {fmt.pct(h.ci95[1])}]
                  </td>
                  <td class="num">{fmt.p(h.adjustedPValue)}</td>
                  <td>{h.confirmed ? 'confirmed' : h.valid ? 'valid' : 'not valid'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </Page>
  )
}
