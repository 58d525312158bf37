/** @module Correlations: latent pairs that co-occur (NPMI), with the API's filters and a text filter over labels; an analysis job's progress when the dataset is large. */
import { useState } from 'preact/hooks'
import type { CorrelationsResult } from '@latentbase/shared/contract/correlations'
import { query, runAnalysis, type JobView } from '../api.ts'
import {
  DatasetSelect,
  ErrorBox,
  Field,
  LatentLink,
  Page,
  ProgressBar,
  WhereField,
  fmt,
  href,
  setParams,
  sliceError,
  useAction,
  useDatasets,
  type Route
} from '../ui.tsx'

export function CorrelationsView({ route }: { route: Route }) {
  const p = route.params
  const datasets = useDatasets()
  const [form, setForm] = useState(() => ({
    dataset: p.get('dataset') ?? '',
    where: p.get('where') ?? '',
    minNpmi: '0.5',
    minCount: '5',
    minFrequency: '0',
    maxFrequency: '0.5',
    maxLabelSimilarity: '0.2',
    limit: '100',
    dropAdjacent: true,
    dropPositional: true
  }))
  const [filter, setFilter] = useState('')
  const [job, setJob] = useState<JobView | null>(null)
  const [result, setResult] = useState<CorrelationsResult | null>(null)
  const set = (k: keyof typeof form) => (e: Event) => {
    const t = e.target as HTMLInputElement
    setForm({ ...form, [k]: t.type === 'checkbox' ? t.checked : t.value })
  }
  const run = useAction(async () => {
    setParams('correlations', { dataset: form.dataset, where: form.where.trim() })
    setJob(null)
    setResult(
      await runAnalysis<CorrelationsResult>(
        `/correlations?${query({ ...form, where: form.where.trim(), dropAdjacent: String(form.dropAdjacent), dropPositional: String(form.dropPositional) })}`,
        {},
        setJob
      )
    )
  })
  const whereError = sliceError(run.error, 'where')
  const needle = filter.trim().toLowerCase()
  const pairs = (result?.pairs ?? []).filter(
    x =>
      !needle ||
      `${x.a.latent} ${x.a.label ?? x.a.peak?.token ?? ''} ${x.b.latent} ${x.b.label ?? x.b.peak?.token ?? ''}`
        .toLowerCase()
        .includes(needle)
  )
  return (
    <Page
      title="Correlations"
      intro="Latent pairs present in the same documents more often than chance (NPMI), without adjacent-token, positional and same-label pairs."
    >
      <form
        class="card"
        onSubmit={e => {
          e.preventDefault()
          void run.run()
        }}
        aria-label="correlation options"
      >
        <div class="grid">
          <DatasetSelect
            value={form.dataset}
            onChange={v => setForm({ ...form, dataset: v })}
            datasets={datasets.data?.datasets ?? []}
            id="corr-dataset"
          />
          <Field label="Min NPMI">
            <input type="number" min="-1" max="1" step="0.05" value={form.minNpmi} onInput={set('minNpmi')} />
          </Field>
          <Field label="Min count" hint="documents with both">
            <input type="number" min="1" value={form.minCount} onInput={set('minCount')} />
          </Field>
          <Field label="Min frequency">
            <input type="number" min="0" max="1" step="0.01" value={form.minFrequency} onInput={set('minFrequency')} />
          </Field>
          <Field label="Max frequency">
            <input type="number" min="0" max="1" step="0.01" value={form.maxFrequency} onInput={set('maxFrequency')} />
          </Field>
          <Field label="Max label similarity">
            <input
              type="number"
              min="-1"
              max="1"
              step="0.05"
              value={form.maxLabelSimilarity}
              onInput={set('maxLabelSimilarity')}
            />
          </Field>
          <WhereField
            value={form.where}
            onInput={v => setForm({ ...form, where: v })}
            error={whereError}
            dataset={form.dataset || undefined}
          />
          <Field label="Pairs">
            <input type="number" min="1" max="5000" value={form.limit} onInput={set('limit')} />
          </Field>
        </div>
        <label class="check">
          <input type="checkbox" checked={form.dropAdjacent} onChange={set('dropAdjacent')} /> drop adjacent-token pairs
        </label>{' '}
        <label class="check">
          <input type="checkbox" checked={form.dropPositional} onChange={set('dropPositional')} /> drop positional
          latents
        </label>
        <div class="row-actions">
          <button type="submit" disabled={!form.dataset || run.pending}>
            Find pairs
          </button>
        </div>
        {run.pending && job ? (
          <ProgressBar value={job.progress.fraction} label={`job ${job.id}: ${job.status}, ${job.progress.phase}`} />
        ) : run.pending ? (
          <span class="muted" role="status">
            computing…
          </span>
        ) : null}
      </form>
      <ErrorBox error={whereError ? datasets.error : (run.error ?? datasets.error)} />
      {result ? (
        <div class="card">
          <div class="row-actions spread">
            <p class="muted">
              {result.documents} documents{result.where ? ` of ${result.where}` : ''} · {result.latentsConsidered}{' '}
              latents considered · {result.pairsCounted.toLocaleString('en')} pairs counted · dropped{' '}
              {result.dropped.adjacent} adjacent, {result.dropped.positional} positional, {result.dropped.similarLabels}{' '}
              similar-label · {result.seconds.toFixed(2)} s
            </p>
            <Field label="Filter">
              <input
                type="search"
                value={filter}
                onInput={e => setFilter((e.target as HTMLInputElement).value)}
                placeholder="latent id or label words"
              />
            </Field>
          </div>
          <div class="table-wrap">
            <table data-testid="correlations">
              <thead>
                <tr>
                  <th>Latent a</th>
                  <th>Latent b</th>
                  <th class="num">NPMI</th>
                  <th class="num">Both</th>
                  <th class="num">P(a|b)</th>
                  <th class="num">P(b|a)</th>
                </tr>
              </thead>
              <tbody>
                {pairs.map(x => (
                  <tr key={`${x.a.latent}-${x.b.latent}`}>
                    <td>
                      <LatentLink latent={x.a.latent} dataset={result.dataset} label={x.a.label} peak={x.a.peak} />{' '}
                      <span class="muted small">{fmt.pct(x.a.frequency)}</span>
                    </td>
                    <td>
                      <LatentLink latent={x.b.latent} dataset={result.dataset} label={x.b.label} peak={x.b.peak} />{' '}
                      <span class="muted small">{fmt.pct(x.b.frequency)}</span>
                    </td>
                    <td class="num">{x.npmi.toFixed(3)}</td>
                    <td class="num">
                      <a
                        href={href('search', {
                          dataset: result.dataset,
                          latents: `${x.a.latent},${x.b.latent}`,
                          where: `latent ${x.a.latent} and latent ${x.b.latent}`
                        })}
                        title="the documents where both fire, strongest first"
                      >
                        {x.count}
                      </a>
                    </td>
                    <td class="num">{fmt.pct(x.pAGivenB)}</td>
                    <td class="num">{fmt.pct(x.pBGivenA)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {pairs.length === 0 ? (
            <p class="muted">No pair {needle ? 'matches the filter' : 'passed the thresholds'}.</p>
          ) : null}
        </div>
      ) : null}
    </Page>
  )
}
