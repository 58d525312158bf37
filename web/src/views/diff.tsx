/** @module Diff: A against one or more B (or slices of them) with every option of GET /diff; the top differences as a chart with 95% intervals and q-values; CSV export. */
import { useState } from 'preact/hooks'
import type { DiffResult } from '@latentbase/shared/contract/diff'
import { query } from '../api.ts'
import { DiffChart } from '../charts.tsx'
import {
  DatasetSelect,
  ErrorBox,
  Field,
  Page,
  WhereField,
  csvCell,
  download,
  fmt,
  href,
  setParams,
  sliceError,
  useApi,
  useDatasets,
  type Route
} from '../ui.tsx'

export function DiffView({ route }: { route: Route }) {
  const p = route.params
  const datasets = useDatasets()
  const all = datasets.data?.datasets ?? []
  const [form, setForm] = useState(() => ({
    a: p.get('a') ?? '',
    b: (p.get('b') ?? '').split(',').filter(Boolean),
    aWhere: p.get('aWhere') ?? '',
    bWhere: p.get('bWhere') ?? '',
    limit: p.get('limit') ?? '30',
    minFrequency: p.get('minFrequency') ?? '0',
    maxFrequency: p.get('maxFrequency') ?? '1',
    metric: p.get('metric') ?? 'absolute',
    direction: p.get('direction') ?? 'a',
    pairBy: p.get('pairBy') ?? '',
    controlLength: p.get('controlLength') === 'true'
  }))
  const a = p.get('a'),
    b = p.get('b')?.split(','),
    bWhere = p.get('bWhere')
  // One B slice in the form applies to every B (the API takes one bWhere per b).
  const path =
    a && b
      ? `/diff?${query({
          a,
          b,
          aWhere: p.get('aWhere'),
          bWhere: bWhere ? b.map(() => bWhere) : undefined,
          limit: p.get('limit'),
          minFrequency: p.get('minFrequency'),
          maxFrequency: p.get('maxFrequency'),
          metric: p.get('metric'),
          direction: p.get('direction'),
          pairBy: p.get('pairBy'),
          controlLength: p.get('controlLength')
        })}`
      : null
  const result = useApi<DiffResult>(path)
  const set = (k: keyof typeof form) => (e: Event) => {
    const t = e.target as HTMLInputElement
    setForm({ ...form, [k]: t.type === 'checkbox' ? t.checked : t.value })
  }
  const toggleB = (id: string) =>
    setForm({ ...form, b: form.b.includes(id) ? form.b.filter(x => x !== id) : [...form.b, id] })
  const run = (e: Event) => {
    e.preventDefault()
    setParams('diff', {
      ...form,
      aWhere: form.aWhere.trim(),
      bWhere: form.bWhere.trim(),
      controlLength: form.controlLength ? 'true' : undefined,
      pairBy: form.pairBy || undefined
    })
  }
  const d = result.data
  const aError = sliceError(result.error, 'aWhere')
  const bError = sliceError(result.error, 'bWhere')
  const sliced = Boolean(form.aWhere.trim() || form.bWhere.trim())
  const side = (x: { name: string; where?: string }) => (x.where ? `${x.name} [${x.where}]` : x.name)
  const exportCsv = () => {
    if (!d) return
    const cols = [
      'latent',
      'label',
      'labelSource',
      'peakToken',
      'peakWindow',
      'frequencyA',
      'frequencyB',
      'countA',
      'countB',
      'against',
      'difference',
      'ci95Low',
      'ci95High',
      'pValue',
      'qValue',
      'test'
    ] as const
    const rows = d.latents.map(l =>
      [
        l.latent,
        l.label,
        l.labelSource,
        l.peak?.token,
        l.peak?.window,
        l.frequencyA,
        l.frequencyB,
        l.countA,
        l.countB,
        l.against,
        l.difference,
        l.ci95[0],
        l.ci95[1],
        l.pValue,
        l.qValue,
        l.test
      ]
        .map(csvCell)
        .join(',')
    )
    download(`diff-${d.a.id}-vs-${d.b.map(x => x.id).join('+')}.csv`, [cols.join(','), ...rows].join('\n') + '\n')
  }
  return (
    <Page
      title="Diff"
      intro="Latents more frequent in A than in B (each latent against the B where it is most frequent), with 95% intervals and Benjamini-Hochberg q-values."
    >
      <form class="card" onSubmit={run} aria-label="diff options">
        <div class="grid">
          <DatasetSelect
            label="A"
            value={form.a}
            onChange={v => setForm({ ...form, a: v })}
            datasets={all}
            id="diff-a"
          />
          <fieldset class="field">
            <legend class="label">B (one or more)</legend>
            <div class="checks" data-testid="diff-b">
              {all
                .filter(x => x.status === 'ready' && (x.id !== form.a || sliced))
                .map(x => (
                  <label key={x.id} class="check">
                    <input
                      type="checkbox"
                      value={x.id}
                      checked={form.b.includes(x.id)}
                      onChange={() => toggleB(x.id)}
                    />{' '}
                    {x.name} <code class="muted">{x.id}</code>
                  </label>
                ))}
            </div>
          </fieldset>
          <WhereField
            label="A where"
            name="aWhere"
            value={form.aWhere}
            onInput={v => setForm({ ...form, aWhere: v })}
            error={aError}
            dataset={form.a || undefined}
          />
          <WhereField
            label="B where (each B)"
            name="bWhere"
            placeholder={
              form.aWhere.trim() && form.b.includes(form.a)
                ? 'empty: the rest of A (not A where) for A checked as a B'
                : undefined
            }
            value={form.bWhere}
            onInput={v => setForm({ ...form, bWhere: v })}
            error={bError}
            dataset={form.b[0] ?? (form.a || undefined)}
          />
          <Field label="Direction">
            <select value={form.direction} onChange={set('direction')}>
              <option value="a">more in A</option>
              <option value="b">more in B</option>
              <option value="both">both</option>
            </select>
          </Field>
          <Field label="Metric">
            <select value={form.metric} onChange={set('metric')}>
              <option value="absolute">absolute (fA - fB)</option>
              <option value="relative">relative (over max)</option>
            </select>
          </Field>
          <Field label="Min frequency">
            <input type="number" min="0" max="1" step="0.01" value={form.minFrequency} onInput={set('minFrequency')} />
          </Field>
          <Field label="Max frequency">
            <input type="number" min="0" max="1" step="0.01" value={form.maxFrequency} onInput={set('maxFrequency')} />
          </Field>
          <Field label="Pair by" hint="metadata field matching documents of A and B (paired test)">
            <input type="text" value={form.pairBy} onInput={set('pairBy')} placeholder="e.g. prompt_id" />
          </Field>
          <Field label="Top latents">
            <input type="number" min="1" max="5000" value={form.limit} onInput={set('limit')} />
          </Field>
        </div>
        <label class="check">
          <input type="checkbox" checked={form.controlLength} onChange={set('controlLength')} /> Control for length
          (stratify by token count)
        </label>
        <div class="row-actions">
          <button type="submit" disabled={!form.a || form.b.length === 0}>
            Compare
          </button>
          {result.loading ? (
            <span class="muted" role="status">
              computing…
            </span>
          ) : null}
        </div>
      </form>
      <ErrorBox error={aError || bError ? datasets.error : (result.error ?? datasets.error)} />
      {d ? (
        <div class="card">
          <div class="row-actions spread">
            <p class="muted">
              <span data-testid="diff-sides">
                {side(d.a)} ({d.a.documents} docs) vs {d.b.map(x => `${side(x)} (${x.documents})`).join(', ')}
              </span>{' '}
              · {d.design} design{d.pairs !== undefined ? `, ${d.pairs} pairs` : ''} · {d.tested} latents tested ·{' '}
              {d.metric}
            </p>
            <button type="button" onClick={exportCsv}>
              Export CSV
            </button>
          </div>
          {d.latents.length === 0 ? (
            <p class="muted">No latent passed the filters.</p>
          ) : (
            <div class="chart-scroll">
              <DiffChart
                latents={d.latents}
                metric={d.metric}
                onOpen={l => {
                  location.hash = href(`latent/${l.latent}`, {
                    dataset: d.a.id,
                    where: d.a.where,
                    compare: d.b.map(x => x.id)
                  })
                }}
              />
            </div>
          )}
          <p class="muted small">
            Bars: difference; whiskers: 95% interval; q-values under 0.05 in bold. Click a row (or focus it and press
            Enter) for the latent's page.{' '}
            {d.latents.length ? `Largest: #${d.latents[0].latent} at ${fmt.pct(d.latents[0].difference)}.` : ''}
          </p>
        </div>
      ) : null}
    </Page>
  )
}
