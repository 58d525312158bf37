/** @module Clusters: targeted clustering run as an analysis job (progress shown), clusters with sizes, top latents and central documents, and a 2-D map of the documents coloured by cluster. */
import { useState } from 'preact/hooks'
import type { ClustersResult } from '@latentbase/shared/contract/clusters'
import { runAnalysis, type JobView } from '../api.ts'
import { ClusterMap, clusterColor } from '../charts.tsx'
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

export function ClustersView({ route }: { route: Route }) {
  const p = route.params
  const datasets = useDatasets()
  const [form, setForm] = useState(() => ({
    dataset: p.get('dataset') ?? '',
    where: p.get('where') ?? '',
    k: '4',
    method: 'spectral',
    phrases: '',
    seed: '0'
  }))
  const [job, setJob] = useState<JobView | null>(null)
  const [result, setResult] = useState<ClustersResult | null>(null)
  const [minSize, setMinSize] = useState('0')
  const set = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value })
  const run = useAction(async () => {
    const where = form.where.trim()
    setParams('clusters', { dataset: form.dataset, where })
    setJob(null)
    const phrases = form.phrases
      .split(',')
      .map(x => x.trim())
      .filter(Boolean)
    const body = {
      dataset: form.dataset,
      k: Number(form.k),
      // One select picks both: spectral on cosine (the default), spectral on Jaccard, or k-means.
      ...(form.method === 'jaccard' ? { method: 'spectral', similarity: 'jaccard' } : { method: form.method }),
      seed: Number(form.seed),
      affinityTop: 3,
      ...(phrases.length ? { phrases } : {}),
      ...(where ? { where } : {})
    }
    // Always as a job: the progress is shown, and large datasets would become one anyway.
    setResult(await runAnalysis<ClustersResult>('/clusters?async=true', { method: 'POST', body }, setJob))
  })
  // A slice's assignments follow `rows` (dataset rows); a whole dataset's are the rows themselves.
  const open = (i: number) => {
    if (result) location.hash = href(`document/${result.dataset}/${result.rows?.[i] ?? i}`)
  }
  const whereError = sliceError(run.error, 'where')
  const shown = (result?.clusters ?? []).filter(c => c.size >= Number(minSize || 0))
  return (
    <Page
      title="Clusters"
      intro="Group documents by the latents they share (spectral clustering on their cosine or Jaccard similarity, or k-means), optionally on the latents closest to some phrases."
    >
      <form
        class="card"
        onSubmit={e => {
          e.preventDefault()
          void run.run()
        }}
        aria-label="clustering options"
      >
        <div class="grid">
          <DatasetSelect
            value={form.dataset}
            onChange={v => setForm({ ...form, dataset: v })}
            datasets={datasets.data?.datasets ?? []}
            id="clusters-dataset"
          />
          <Field label="Clusters (k)">
            <input type="number" min="2" max="200" value={form.k} onInput={set('k')} />
          </Field>
          <Field label="Method">
            <select value={form.method} onChange={set('method')}>
              <option value="spectral">spectral (cosine)</option>
              <option value="jaccard">spectral (Jaccard, the paper's)</option>
              <option value="kmeans">k-means</option>
            </select>
          </Field>
          <Field label="Phrases" hint="optional, comma-separated: cluster on the latents closest to them">
            <input type="text" value={form.phrases} onInput={set('phrases')} placeholder="e.g. cooking, sport" />
          </Field>
          <WhereField
            value={form.where}
            onInput={v => setForm({ ...form, where: v })}
            error={whereError}
            dataset={form.dataset || undefined}
          />
          <Field label="Seed">
            <input type="number" value={form.seed} onInput={set('seed')} />
          </Field>
        </div>
        <div class="row-actions">
          <button type="submit" disabled={!form.dataset || run.pending}>
            Cluster
          </button>
        </div>
        {job && (run.pending || job.status !== 'ready') ? (
          <ProgressBar
            value={job.progress.fraction}
            label={`analysis job ${job.id}: ${job.status} · ${job.progress.phase} · ${fmt.pct(job.progress.fraction)}`}
          />
        ) : null}
        {job && !run.pending && job.status === 'ready' ? (
          <p class="muted small" role="status">
            Analysis job {job.id} done.
          </p>
        ) : null}
      </form>
      <ErrorBox error={whereError ? datasets.error : (run.error ?? datasets.error)} />
      {result ? (
        <div class="two">
          <div class="card">
            <h2>
              Map of {result.assignments.length} documents
              {result.where ? <span class="muted small"> of {result.where}</span> : null}
            </h2>
            <ClusterMap assignments={result.assignments} affinities={result.affinities} k={result.k} onOpen={open} />
            <p class="muted small">
              Each cluster sits on the circle; a document is placed at the mean of its clusters' places weighted by its
              affinities (highest three), coloured by its cluster. Click a dot to open the document.
            </p>
          </div>
          <div class="card">
            <div class="row-actions spread">
              <p class="muted">
                {result.method} · {result.similarity} · {result.latentsUsed.length} latents · {result.emptyDocuments}{' '}
                empty documents · {result.seconds.toFixed(2)} s
              </p>
              <Field label="Min size">
                <input
                  type="number"
                  min="0"
                  value={minSize}
                  onInput={e => setMinSize((e.target as HTMLInputElement).value)}
                />
              </Field>
            </div>
            <table class="compact" data-testid="clusters">
              <thead>
                <tr>
                  <th>Cluster</th>
                  <th class="num">Size</th>
                  <th>Top latents (in vs out)</th>
                  <th>Central documents</th>
                </tr>
              </thead>
              <tbody>
                {shown.map(c => (
                  <tr key={c.id}>
                    <td>
                      <span class="swatch" style={{ background: clusterColor(c.id) }} /> {c.id}
                      {c.name ? <div class="small">{c.name}</div> : null}
                    </td>
                    <td class="num">{c.size}</td>
                    <td>
                      <ul class="plain">
                        {c.latents.map(l => (
                          <li key={l.latent}>
                            <LatentLink latent={l.latent} dataset={result.dataset} label={l.label} peak={l.peak} />{' '}
                            <span class="muted small">
                              {fmt.pct(l.frequencyIn)} vs {fmt.pct(l.frequencyOut)}
                            </span>
                          </li>
                        ))}
                      </ul>
                    </td>
                    <td>
                      {c.central.map(row => (
                        <a key={row} class="pill" href={href(`document/${result.dataset}/${row}`)}>
                          row {row}
                        </a>
                      ))}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      ) : null}
    </Page>
  )
}
