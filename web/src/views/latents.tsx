/** @module Latents: a dataset's (or a slice's) latents, most frequent first or closest to a text by label, a page at a time, each linked to its page. */
import { useEffect, useState } from 'preact/hooks'
import type { LatentList } from '@latentbase/shared/contract/latents'
import { api, query } from '../api.ts'
import {
  DatasetSelect,
  ErrorBox,
  Field,
  LatentLink,
  Page,
  WhereField,
  fmt,
  setParams,
  sliceError,
  useAction,
  useDatasets,
  type Route
} from '../ui.tsx'

const PAGE = 50
const SORTS = {
  frequent: 'most frequent first',
  rare: 'rarest first',
  max: 'largest max first',
  mean: 'largest mean first',
  npmi: 'most tied to the slice first (NPMI)'
} as const

export function LatentsView({ route }: { route: Route }) {
  const p = route.params
  const datasets = useDatasets()
  const [form, setForm] = useState(() => ({
    dataset: p.get('dataset') ?? '',
    q: p.get('q') ?? '',
    sort: p.get('sort') ?? 'frequent',
    where: p.get('where') ?? ''
  }))
  const [result, setResult] = useState<LatentList | null>(null)
  const load = useAction(async (offset: number) => {
    const q = form.q.trim()
    const where = form.where.trim()
    // A label query ranks by similarity; the order applies without one.
    const sort = q || form.sort === 'frequent' ? '' : form.sort
    setParams('latents', { dataset: form.dataset, q, sort, where })
    setResult(
      await api<LatentList>(
        `/latents?${query({ dataset: form.dataset, q, sort, where, limit: String(PAGE), offset: String(offset) })}`
      )
    )
  })
  // Opened from a dataset's row (or a shared link): list at once.
  useEffect(() => {
    if (form.dataset) void load.run(0)
  }, [])
  const whereError = sliceError(load.error, 'where')
  const shown = result ? `${result.offset + 1}-${result.offset + result.latents.length} of ${result.total}` : ''
  return (
    <Page
      title="Latents"
      intro="A dataset's (or a slice's) latents, most frequent first, or the ones whose labels are closest to some words; each opens its page."
    >
      <form
        class="card"
        onSubmit={e => {
          e.preventDefault()
          void load.run(0)
        }}
        aria-label="latent list options"
      >
        <div class="grid">
          <DatasetSelect
            value={form.dataset}
            onChange={v => setForm({ ...form, dataset: v })}
            datasets={datasets.data?.datasets ?? []}
            id="latents-dataset"
          />
          <Field label="Closest to" hint="optional: words to match labels against">
            <input
              type="search"
              value={form.q}
              onInput={e => setForm({ ...form, q: (e.target as HTMLInputElement).value })}
              placeholder="e.g. prices, greetings"
            />
          </Field>
          <Field label="Order" hint="without words to match; NPMI with a where">
            <select
              name="sort"
              value={form.sort}
              onChange={e => setForm({ ...form, sort: (e.target as HTMLSelectElement).value })}
              disabled={form.q.trim() !== ''}
            >
              {Object.entries(SORTS).map(([value, words]) => (
                <option key={value} value={value}>
                  {words}
                </option>
              ))}
            </select>
          </Field>
          <WhereField
            value={form.where}
            onInput={v => setForm({ ...form, where: v })}
            error={whereError}
            dataset={form.dataset || undefined}
          />
        </div>
        <div class="row-actions">
          <button type="submit" disabled={!form.dataset || load.pending}>
            List latents
          </button>
        </div>
      </form>
      <ErrorBox error={whereError ? datasets.error : (load.error ?? datasets.error)} />
      {result ? (
        <div class="card">
          <div class="row-actions spread">
            <p class="muted">
              {shown} latents of {result.documents} documents{result.where ? ` in ${result.where}` : ''}
              {result.q ? ` · closest to "${result.q}"` : ` · ${SORTS[result.sort ?? 'frequent']}`}
            </p>
            <div class="row-actions">
              <button
                type="button"
                class="small"
                disabled={result.offset === 0 || load.pending}
                onClick={() => void load.run(Math.max(0, result.offset - PAGE))}
              >
                Previous
              </button>
              <button
                type="button"
                class="small"
                disabled={result.offset + result.latents.length >= result.total || load.pending}
                onClick={() => void load.run(result.offset + PAGE)}
              >
                Next
              </button>
            </div>
          </div>
          <div class="table-wrap">
            <table data-testid="latents">
              <thead>
                <tr>
                  <th>Latent</th>
                  <th class="num">Frequency</th>
                  <th class="num">Documents</th>
                  <th class="num">Mean</th>
                  <th class="num">Max</th>
                  {result.q ? <th class="num">Similarity</th> : null}
                  {result.where ? <th class="num">NPMI</th> : null}
                </tr>
              </thead>
              <tbody>
                {result.latents.map(l => (
                  <tr key={l.latent} data-latent={l.latent}>
                    <td>
                      <LatentLink
                        latent={l.latent}
                        dataset={result.dataset}
                        label={l.label}
                        peak={l.peak}
                        extra={result.where ? { where: result.where } : undefined}
                      />
                    </td>
                    <td class="num">{fmt.pct(l.frequency)}</td>
                    <td class="num">{l.documents}</td>
                    <td class="num">{l.mean === null ? '–' : fmt.num(l.mean, 3)}</td>
                    <td class="num">{fmt.num(l.max, 3)}</td>
                    {result.q ? <td class="num">{l.similarity === null ? '–' : fmt.num(l.similarity, 2)}</td> : null}
                    {result.where ? <td class="num">{l.npmi == null ? '–' : fmt.num(l.npmi, 2)}</td> : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {result.latents.length === 0 ? <p class="muted">No latent to list.</p> : null}
        </div>
      ) : null}
    </Page>
  )
}
