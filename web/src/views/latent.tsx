/** @module A latent's page (of a dataset, or of a slice of it): label, source and score (an unlabelled latent can be labelled offline from the dataset); its frequency in each dataset; the value histogram; top examples with every token shaded by activation; documents across its values; a text of the user's shaded by it. */
import { useEffect, useState } from 'preact/hooks'
import type { LatentIntervals, LatentPage } from '@latentbase/shared/contract/latents'
import type { TextActivations } from '@latentbase/shared/contract/dataset'
import { firingSummary } from '@latentbase/shared/analysis/firing-summary'
import { api } from '../api.ts'
import { Histogram, TokenText } from '../charts.tsx'
import {
  ErrorBox,
  Page,
  WhereField,
  fmt,
  href,
  labelMeta,
  peakText,
  setParams,
  sliceError,
  useAction,
  useApi,
  useDatasets,
  type Route
} from '../ui.tsx'
import { ShadedTokens } from './document.tsx'

export function LatentView({ latent, route }: { latent: number; route: Route }) {
  const dataset = route.params.get('dataset') ?? ''
  const where = route.params.get('where') ?? ''
  const [whereInput, setWhereInput] = useState(where)
  useEffect(() => setWhereInput(where), [where])
  const page = useApi<LatentPage>(
    dataset
      ? `/latents/${latent}?${new URLSearchParams({ dataset, examples: '20', ...(where ? { where } : {}) })}`
      : null
  )
  const whereError = sliceError(page.error, 'where')
  const datasets = useDatasets()
  const [freqs, setFreqs] = useState<
    Array<{ id: string; name: string; frequency: number | null; documents: number | null; error?: string }>
  >([])
  const l = page.data
  // Frequency in every ready dataset encoded with the same encoder (one latent page each, without examples).
  useEffect(() => {
    if (!l || !datasets.data) return
    const same = datasets.data.datasets.filter(d => d.status === 'ready' && d.encoder === l.encoder)
    let live = true
    Promise.all(
      same.map(d =>
        api<LatentPage>(`/latents/${latent}?dataset=${encodeURIComponent(d.id)}&examples=0`)
          .then(x => ({ id: d.id, name: d.name, frequency: x.frequency, documents: x.documents }))
          .catch((err: Error) => ({ id: d.id, name: d.name, frequency: null, documents: null, error: err.message }))
      )
    ).then(rows => {
      if (live) setFreqs(rows)
    })
    return () => {
      live = false
    }
  }, [l, datasets.data])
  const maxFreq = Math.max(1e-9, ...freqs.map(f => f.frequency ?? 0))
  const peak = l && !l.label ? firingSummary(l.topExamples) : null
  // The offline labeler (POST /encoders/{id}/relabel, labeler "offline"): words from this dataset's windows, no LLM.
  const [skipped, setSkipped] = useState<string | null>(null)
  const labelAction = useAction(async () => {
    setSkipped(null)
    const r = await api<{ labels: unknown[]; skipped: Array<{ reason: string }> }>(
      `/encoders/${encodeURIComponent(l!.encoder)}/relabel`,
      { method: 'POST', body: { dataset, latents: [latent], labeler: 'offline' } }
    )
    if (r.skipped.length) setSkipped(`Not labelled: ${r.skipped[0].reason}.`)
    else page.reload()
  })
  return (
    <Page title={`Latent #${latent}`}>
      {!dataset ? (
        <p class="muted">Open a latent from a diff, search, correlation or cluster: its page needs a dataset.</p>
      ) : null}
      {dataset ? (
        <form
          class="card"
          aria-label="slice"
          onSubmit={e => {
            e.preventDefault()
            setParams(`latent/${latent}`, { dataset, where: whereInput.trim() })
          }}
        >
          <div class="grid">
            <WhereField value={whereInput} onInput={setWhereInput} error={whereError} dataset={dataset || undefined} />
          </div>
          <button type="submit">Apply</button>
        </form>
      ) : null}
      <ErrorBox error={whereError ? null : page.error} />
      {l ? (
        <>
          <div class="card">
            <p class="latent-label" data-testid="latent-label">
              {l.label ?? '(no label)'}
            </p>
            {!l.label && peak ? (
              <p data-testid="latent-peak">
                {peakText(peak)} in {peak.count} of {peak.examples} top examples, e.g. <q>{peak.window}</q>
              </p>
            ) : null}
            {!l.label && l.topExamples.length ? (
              <p>
                <button
                  type="button"
                  class="small"
                  disabled={labelAction.pending}
                  onClick={() => void labelAction.run()}
                >
                  {labelAction.pending ? 'Labelling…' : 'Label it from this dataset (offline, no LLM)'}
                </button>{' '}
                {skipped ? <span class="muted">{skipped}</span> : null}
              </p>
            ) : null}
            <ErrorBox error={labelAction.error} />
            <p class="muted">
              {labelMeta(l.labelSource, l.labelScore)} · encoder {l.encoder} · in {l.documents} documents of {l.dataset}
              {l.where ? ` [${l.where}]` : ''} ({fmt.pct(l.frequency)}) · mean {l.mean === null ? '–' : fmt.num(l.mean)}{' '}
              · p90 {l.p90 === null ? '–' : fmt.num(l.p90)} · max {fmt.num(l.max)}
            </p>
            <p>
              <a
                data-testid="fires-with"
                href={href('latents', { dataset: l.dataset, where: `latent ${latent}`, sort: 'npmi' })}
              >
                Latents that fire with it
              </a>{' '}
              <span class="muted small">(by NPMI over the documents where it fires)</span>
            </p>
          </div>
          <div class="two">
            <div class="card">
              <h2>Frequency per dataset{l.where ? ' (whole datasets)' : ''}</h2>
              <table class="compact" data-testid="frequencies">
                <tbody>
                  {freqs.map(f => (
                    <tr key={f.id} class={f.id === dataset ? 'current' : undefined}>
                      <td>
                        <a href={href(`latent/${latent}`, { dataset: f.id })}>{f.name}</a>
                      </td>
                      <td class="bar-cell">
                        <span class="hbar" style={{ width: `${((f.frequency ?? 0) / maxFreq) * 100}%` }} />
                      </td>
                      <td class="num">
                        {f.frequency === null ? (
                          <span class="muted" title={f.error}>
                            n/a
                          </span>
                        ) : (
                          `${fmt.pct(f.frequency)} (${f.documents})`
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <div class="card">
              <h2>Pooled values</h2>
              <Histogram edges={l.histogram.edges} counts={l.histogram.counts} />
              <p class="muted small">
                {l.histogram.underflow ? `${l.histogram.underflow} below the first bin. ` : ''}
                {l.histogram.overflow ? `${l.histogram.overflow} above the last.` : ''}
              </p>
            </div>
          </div>
          <div class="card">
            <h2>Top examples{l.where ? " (the dataset's, in this slice)" : ''}</h2>
            {l.topExamples.length === 0 ? (
              <p class="muted">
                {l.where
                  ? "None of the dataset's stored top examples is in this slice: its strongest documents are listed below."
                  : 'No stored examples.'}
              </p>
            ) : null}
            <ol class="examples" data-testid="examples">
              {l.topExamples.map(ex => (
                <li key={ex.row}>
                  <div class="ex-head">
                    <span class="muted">max {fmt.num(ex.value)}</span>{' '}
                    <a href={href(`document/${l.dataset}/${ex.row}`, { latent })}>
                      document {ex.id} (row {ex.row})
                    </a>
                  </div>
                  <TokenText tokens={ex.tokens} activations={ex.activations} max={l.max || ex.value} />
                </li>
              ))}
            </ol>
          </div>
          <AcrossValues
            dataset={l.dataset}
            latent={latent}
            where={where}
            max={l.max}
            key={`${l.dataset} ${latent} ${where}`}
          />
          <OnYourText dataset={l.dataset} latent={latent} key={`text ${l.dataset} ${latent}`} />
          {l.sliceStrongest ? (
            <div class="card">
              <h2>Strongest in this slice</h2>
              <p class="muted small">
                The slice's documents where the latent's pooled value is largest (token windows are stored for the
                dataset's top examples only).
              </p>
              {l.sliceStrongest.length === 0 ? <p class="muted">The latent does not fire in this slice.</p> : null}
              <ol class="compact" data-testid="slice-strongest">
                {l.sliceStrongest.map(s => (
                  <li key={s.row}>
                    <span class="muted">max {fmt.num(s.value)}</span>{' '}
                    <a href={href(`document/${l.dataset}/${s.row}`, { latent })}>
                      document {s.id} (row {s.row})
                    </a>
                    {s.position >= 0 ? <span class="muted"> · token {s.position}</span> : null}
                  </li>
                ))}
              </ol>
            </div>
          ) : null}
        </>
      ) : page.loading ? (
        <p class="muted">Loading…</p>
      ) : null}
    </Page>
  )
}

/**
 * Documents sampled from equal-width intervals of the latent's value (GET /latents/{n}/intervals), on request: the
 * server re-encodes them for their windows, which costs reader passes.
 */
function AcrossValues({
  dataset,
  latent,
  where,
  max
}: {
  dataset: string
  latent: number
  where: string
  max: number
}) {
  const [answer, setAnswer] = useState<LatentIntervals | null>(null)
  const [seed, setSeed] = useState(0)
  const sample = useAction(async (next: number) => {
    const q = new URLSearchParams({
      dataset,
      intervals: '5',
      perInterval: '3',
      seed: String(next),
      ...(where ? { where } : {})
    })
    setAnswer(await api<LatentIntervals>(`/latents/${latent}/intervals?${q}`))
    setSeed(next)
  })
  return (
    <div class="card" data-testid="intervals">
      <h2>Across its values</h2>
      <p class="muted small">
        Top examples show the latent at its strongest; a label can miss what it does at a third of that. Documents
        sampled from five equal-width intervals of its pooled value{where ? ' (in this slice)' : ''}, re-encoded for
        their token windows.
      </p>
      <button type="button" disabled={sample.pending} onClick={() => sample.run(answer ? seed + 1 : 0)}>
        {sample.pending ? 'Sampling…' : answer ? 'Another sample' : 'Sample documents across its values'}
      </button>
      <ErrorBox error={sample.error} />
      {answer && !answer.windows ? (
        <p class="muted small">This deployment holds no encoder, so the documents come without token windows.</p>
      ) : null}
      {answer
        ? answer.intervals.map(iv => (
            <section key={`${iv.from}`} class="interval">
              <h3>
                {fmt.num(iv.from)} to {fmt.num(iv.to)}{' '}
                <span class="muted">
                  · {iv.documents} document{iv.documents === 1 ? '' : 's'}
                </span>
              </h3>
              <ol class="examples">
                {iv.examples.map(ex => (
                  <li key={ex.row}>
                    <div class="ex-head">
                      <span class="muted">max {fmt.num(ex.value)}</span>{' '}
                      <a href={href(`document/${dataset}/${ex.row}`, { latent })}>
                        document {ex.id} (row {ex.row})
                      </a>
                    </div>
                    {ex.tokens && ex.activations ? (
                      <TokenText tokens={ex.tokens} activations={ex.activations} max={max || ex.value} />
                    ) : (
                      <p class="snippet">{ex.snippet}</p>
                    )}
                  </li>
                ))}
              </ol>
            </section>
          ))
        : null}
    </div>
  )
}

/**
 * A text of the user's, encoded as the dataset's documents were and shaded by this latent: the quickest check of what
 * a label claims (does it fire on this? on that?). Needs the server that holds the encoder.
 */
function OnYourText({ dataset, latent }: { dataset: string; latent: number }) {
  const [text, setText] = useState('')
  const [answer, setAnswer] = useState<TextActivations | null>(null)
  const encode = useAction(async () => {
    const q = new URLSearchParams({ text, latents: String(latent) })
    setAnswer(await api<TextActivations>(`/datasets/${encodeURIComponent(dataset)}/activations?${q}`))
  })
  const shown = answer?.latents[0]
  return (
    <form
      class="card"
      data-testid="on-your-text"
      aria-label="test the latent on a text"
      onSubmit={e => {
        e.preventDefault()
        void encode.run()
      }}
    >
      <h2>On your text</h2>
      <p class="muted small">
        Write a text that should (or should not) make the latent fire: it is encoded as the dataset's documents were and
        shaded by this latent.
      </p>
      <textarea
        name="latent-text"
        rows={3}
        maxLength={4000}
        required
        value={text}
        onInput={e => setText((e.target as HTMLTextAreaElement).value)}
        placeholder="e.g. a sentence with the concept the label names, and one without"
      />
      <div class="row-actions">
        <button type="submit" disabled={encode.pending || !text.trim()}>
          {encode.pending ? 'Encoding…' : 'Encode'}
        </button>
      </div>
      <ErrorBox error={encode.error} />
      {answer && shown ? <ShadedTokens tokens={answer.tokens} latent={shown} /> : null}
    </form>
  )
}
