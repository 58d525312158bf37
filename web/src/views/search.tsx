/** @module Search: a property in words (sae, bm25 or hybrid; LLM expansion, selection and rerank with a dry run first), or by example (the query encoded by the server); snippets with the used latents' activating tokens highlighted. */
import { useEffect, useState } from 'preact/hooks'
import type { SearchResult } from '@latentbase/shared/contract/search'
import type { SimilarToText } from '@latentbase/shared/contract/similar'
import type { LatentPage } from '@latentbase/shared/contract/latents'
import type { DryRunEstimate } from '@latentbase/shared/contract/llm'
import { api, query } from '../api.ts'
import {
  DatasetSelect,
  ErrorBox,
  Field,
  LatentLink,
  Page,
  WhereField,
  fmt,
  href,
  setParams,
  sliceError,
  useAction,
  useDatasets,
  type Route
} from '../ui.tsx'
import { Estimate } from './hypotheses.tsx'

/** Latents whose activating tokens are highlighted in the snippets (the most weighted ones). */
const HIGHLIGHT_LATENTS = 5

export function SearchView({ route }: { route: Route }) {
  const p = route.params
  const datasets = useDatasets()
  const [form, setForm] = useState(() => ({
    dataset: p.get('dataset') ?? '',
    q: p.get('q') ?? '',
    latents: p.get('latents') ?? '',
    where: p.get('where') ?? '',
    method: p.get('method') ?? 'sae',
    k: p.get('k') ?? '10',
    limit: p.get('limit') ?? '20',
    expand: false,
    select: false,
    rerank: false
  }))
  const [result, setResult] = useState<SearchResult | null>(null)
  // method "example": the query encoded as the dataset's documents were, its documents ranked as similar documents are.
  const [like, setLike] = useState<SimilarToText | null>(null)
  const byExample = form.method === 'example'
  const [estimate, setEstimate] = useState<DryRunEstimate | null>(null)
  const [words, setWords] = useState<Map<string, number>>(new Map())
  const set = (k: keyof typeof form) => (e: Event) => {
    const t = e.target as HTMLInputElement
    setForm({ ...form, [k]: t.type === 'checkbox' ? t.checked : t.value })
    setEstimate(null)
  }
  const usesLlm = !byExample && (form.expand || form.select || form.rerank)
  // Latent ids given explicitly (a correlation's pair, say): the search weighs them in the order given.
  const explicit = form.latents.replace(/\s+/g, '')
  const params = (dryRun: boolean) =>
    query({
      dataset: form.dataset,
      q: form.q,
      latents: explicit || undefined,
      where: form.where.trim(),
      method: form.method,
      k: form.k,
      limit: form.limit,
      expand: form.expand || undefined,
      select: form.select || undefined,
      rerank: form.rerank || undefined,
      dryRun: dryRun || undefined
    })
  const search = useAction(async (spend: boolean) => {
    setParams('search', {
      dataset: form.dataset,
      q: form.q,
      latents: explicit,
      where: form.where.trim(),
      method: form.method,
      k: form.k,
      limit: form.limit
    })
    if (usesLlm && !spend) {
      setEstimate(await api<DryRunEstimate>(`/search?${params(true)}`))
      return
    }
    setEstimate(null)
    if (byExample) {
      const q = query({ text: form.q, where: form.where.trim(), limit: Math.min(200, Number(form.limit) || 20) })
      setLike(await api<SimilarToText>(`/datasets/${encodeURIComponent(form.dataset)}/similar?${q}`))
      setResult(null)
      return
    }
    setLike(null)
    setResult(await api<SearchResult>(`/search?${params(false)}`))
  })
  const whereError = sliceError(search.error, 'where')
  // Run the search a link describes (dataset + q in the URL).
  useEffect(() => {
    if (form.dataset && (form.q || explicit) && !result && !like) void search.run(false)
  }, [])

  // The activating tokens of the most weighted latents, from their top examples (token -> strongest share of max).
  useEffect(() => {
    if (!result || result.method === 'bm25') {
      setWords(new Map())
      return
    }
    let live = true
    const top = [...result.latents].sort((x, y) => y.weight - x.weight).slice(0, HIGHLIGHT_LATENTS)
    Promise.all(
      top.map(l =>
        api<LatentPage>(`/latents/${l.latent}?dataset=${encodeURIComponent(result.dataset)}&examples=10`).catch(
          () => null
        )
      )
    ).then(pages => {
      const m = new Map<string, number>()
      for (const page of pages) {
        if (!page) continue
        for (const ex of page.topExamples) {
          ex.tokens.forEach((t, i) => {
            const share = page.max > 0 ? ex.activations[i] / page.max : 0
            const w = t.replace(/^[\s▁Ġ]+/, '').toLowerCase()
            if (share >= 0.3 && w.length >= 2 && /\w/.test(w)) m.set(w, Math.max(m.get(w) ?? 0, share))
          })
        }
      }
      if (live) setWords(m)
    })
    return () => {
      live = false
    }
  }, [result])

  return (
    <Page
      title="Search"
      intro="Find documents with a property: sae ranks by the latents whose labels match the query; bm25 by the text; hybrid fuses both; example encodes the query itself and ranks the documents whose latents are most like its own (no labels needed)."
    >
      <form
        class="card"
        onSubmit={e => {
          e.preventDefault()
          void search.run(false)
        }}
        aria-label="search"
      >
        <div class="grid">
          <DatasetSelect
            value={form.dataset}
            onChange={v => setForm({ ...form, dataset: v })}
            datasets={datasets.data?.datasets ?? []}
            id="search-dataset"
          />
          <Field label="Query">
            <input
              type="search"
              name="q"
              value={form.q}
              onInput={set('q')}
              placeholder="e.g. baking bread"
              required={!explicit || byExample}
            />
          </Field>
          <Field label="Latents" hint="optional: ids to search by instead of labels, e.g. 12,40">
            <input
              type="text"
              name="latents"
              value={form.latents}
              onInput={set('latents')}
              placeholder="12,40"
              pattern={'\\s*\\d+(\\s*,\\s*\\d+)*\\s*'}
              disabled={byExample}
            />
          </Field>
          <Field label="Method">
            <select name="method" value={form.method} onChange={set('method')}>
              {['sae', 'bm25', 'hybrid'].map(m => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
              <option value="example">example (the query encoded)</option>
            </select>
          </Field>
          <Field label="Latents kept (k)">
            <input type="number" min="1" max="200" value={form.k} onInput={set('k')} />
          </Field>
          <WhereField
            value={form.where}
            onInput={v => {
              setForm({ ...form, where: v })
              setEstimate(null)
            }}
            error={whereError}
            dataset={form.dataset || undefined}
          />
          <Field label="Results">
            <input type="number" min="1" max="1000" value={form.limit} onInput={set('limit')} />
          </Field>
        </div>
        <fieldset class="inline">
          <legend class="label">LLM steps (need an LLM on the server; a dry run shows the cost first)</legend>
          <label class="check">
            <input type="checkbox" checked={form.expand} onChange={set('expand')} /> expand the query
          </label>
          <label class="check">
            <input type="checkbox" checked={form.select} onChange={set('select')} /> select latents
          </label>
          <label class="check">
            <input type="checkbox" checked={form.rerank} onChange={set('rerank')} /> rerank the top 50
          </label>
        </fieldset>
        <div class="row-actions">
          <button type="submit" disabled={!form.dataset || !(form.q || (explicit && !byExample)) || search.pending}>
            {usesLlm ? 'Estimate cost' : 'Search'}
          </button>
          {search.pending ? (
            <span class="muted" role="status">
              searching…
            </span>
          ) : null}
        </div>
        {estimate ? (
          <Estimate estimate={estimate} onRun={() => void search.run(true)} pending={search.pending} />
        ) : null}
      </form>
      <ErrorBox error={whereError ? datasets.error : (search.error ?? datasets.error)} />
      {like ? <LikeResults like={like} /> : null}
      {result ? (
        <div class="two wide-left">
          <div class="card">
            <h2>
              {result.matched} matching documents
              {result.where ? <span class="muted small"> in {result.where}</span> : null}
            </h2>
            <ol class="hits" data-testid="search-results">
              {result.results.map(h => (
                <li key={h.row} data-row={h.row}>
                  <div class="ex-head">
                    {/* Opened shaded by the latent that makes most of its score. */}
                    <a href={href(`document/${result.dataset}/${h.row}`, { latent: h.latents?.[0]?.latent })}>{h.id}</a>{' '}
                    <span class="muted">score {fmt.num(h.score)}</span>
                  </div>
                  <p class="snippet">{highlight(h.snippet, words)}</p>
                  {h.latents?.length ? (
                    <div class="muted small hit-latents">
                      by{' '}
                      {h.latents.map((l, i) => {
                        const used = result.latents.find(x => x.latent === l.latent)
                        return (
                          <span key={l.latent}>
                            {i ? ' · ' : ''}
                            <LatentLink
                              latent={l.latent}
                              dataset={result.dataset}
                              label={used?.label ?? null}
                              peak={used?.peak}
                            />{' '}
                            {fmt.pct(l.share)}
                          </span>
                        )
                      })}
                    </div>
                  ) : null}
                </li>
              ))}
            </ol>
          </div>
          <div class="card">
            <h2>Latents used</h2>
            {result.latents.length === 0 ? <p class="muted">None (bm25 reads the text only).</p> : null}
            <table class="compact" data-testid="search-latents">
              <thead>
                <tr>
                  <th>Latent</th>
                  <th class="num">Weight</th>
                  <th class="num">Sim.</th>
                </tr>
              </thead>
              <tbody>
                {result.latents.map(l => (
                  <tr key={l.latent}>
                    <td>
                      <LatentLink latent={l.latent} dataset={result.dataset} label={l.label} peak={l.peak} />
                    </td>
                    <td class="num">{fmt.num(l.weight, 2)}</td>
                    <td class="num">{l.similarity === null ? '–' : fmt.num(l.similarity, 2)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {result.expansion ? (
              <p class="small">
                Expansion: {result.expansion.keywords.join(', ')}; {result.expansion.phrases.join('; ')}
              </p>
            ) : null}
            {result.usage ? (
              <p class="small muted">
                LLM: {result.usage.calls} calls, {result.usage.inputTokens + result.usage.outputTokens} tokens,{' '}
                {fmt.cost(result.usage.cost, result.usage.currency)}
              </p>
            ) : null}
            <p class="small muted">
              Highlighted: tokens where the {HIGHLIGHT_LATENTS} most weighted latents fire in their top examples (at
              least 30% of their max).
            </p>
          </div>
        </div>
      ) : null}
    </Page>
  )
}

/** The snippet with every word among `words` marked (shade by the strongest share). */
function highlight(text: string, words: Map<string, number>) {
  if (words.size === 0) return text
  const out = []
  const re = /[\p{L}\p{N}_']+/gu
  let last = 0
  for (const m of text.matchAll(re)) {
    const share = words.get(m[0].toLowerCase())
    if (share === undefined) continue
    out.push(text.slice(last, m.index))
    out.push(
      <mark
        class="hl"
        title={`a used latent fires on "${m[0]}" (${fmt.pct(share)} of its max)`}
        style={{ background: `rgba(255, 140, 0, ${0.2 + 0.8 * share})` }}
      >
        {m[0]}
      </mark>
    )
    last = m.index + m[0].length
  }
  out.push(text.slice(last))
  return out
}

/**
 * Documents like the query text (GET /datasets/{id}/similar?text=): each with the latents it shares with the query,
 * and the latents shared most across them, by their summed part of the likeness.
 */
function LikeResults({ like }: { like: SimilarToText }) {
  const totals = new Map<number, { ref: SimilarToText['results'][number]['shared'][number]; share: number }>()
  for (const r of like.results)
    for (const s of r.shared) {
      const t = totals.get(s.latent)
      if (t) t.share += s.share
      else totals.set(s.latent, { ref: s, share: s.share })
    }
  const shared = [...totals.values()].sort((x, y) => y.share - x.share || x.ref.latent - y.ref.latent).slice(0, 20)
  return (
    <div class="two wide-left">
      <div class="card">
        <h2>
          {like.results.length} documents most like the query
          {like.where ? <span class="muted small"> in {like.where}</span> : null}
        </h2>
        <p class="muted small">
          The query encoded as the dataset's documents were: {like.latents} latents, compared by the cosine of
          sqrt-idf-weighted latent sets (as similar documents are).
        </p>
        <ol class="hits" data-testid="search-results">
          {like.results.map(h => (
            <li key={h.row}>
              <div class="ex-head">
                <a href={href(`document/${like.dataset}/${h.row}`)}>{h.id}</a>{' '}
                <span class="muted">score {fmt.num(h.score)}</span>
              </div>
              <p class="snippet">{h.snippet}</p>
            </li>
          ))}
        </ol>
      </div>
      <div class="card">
        <h2>Latents shared most</h2>
        <table class="compact" data-testid="search-latents">
          <thead>
            <tr>
              <th>Latent</th>
              <th class="num" title="summed part of each result's likeness">
                Share
              </th>
            </tr>
          </thead>
          <tbody>
            {shared.map(({ ref, share }) => (
              <tr key={ref.latent}>
                <td>
                  <LatentLink latent={ref.latent} dataset={like.dataset} label={ref.label} peak={ref.peak} />
                </td>
                <td class="num">{fmt.num(share, 2)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  )
}
