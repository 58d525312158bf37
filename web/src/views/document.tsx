/**
 * @module One document: its text (shaded token by token by a chosen latent, `?latent=N`), metadata, its own pooled
 * latents (each a link to its page) and the documents most like it.
 */
import type { DocumentActivations, DocumentTokenLatent, DocumentView } from '@latentbase/shared/contract/dataset'
import type { LatentPeak } from '@latentbase/shared/contract/latents'
import type { SimilarDocuments } from '@latentbase/shared/contract/similar'
import { useState } from 'preact/hooks'
import { TokenText } from '../charts.tsx'
import { ErrorBox, Field, LatentLink, Page, fmt, href, setParams, shortLabel, useApi, useDatasets } from '../ui.tsx'

/** Latents listed before "Show all": a document has hundreds, most of them weak or everywhere. */
const LATENTS_SHOWN = 25

/** Strong in this document and rare in the dataset: value x ln(1 / frequency) (0 for a latent in every document). */
function distinctiveness(value: number, frequency: number | undefined): number {
  return frequency ? value * Math.log(1 / frequency) : value
}

export function DocumentPage({ dataset, row, shade }: { dataset: string; row: number; shade: number | null }) {
  const doc = useApi<DocumentView>(`/datasets/${encodeURIComponent(dataset)}/documents/${row}`)
  // The text shaded by one latent: the document re-encoded token by token (where the server holds the encoder).
  const shaded = useApi<DocumentActivations>(
    shade === null ? null : `/datasets/${encodeURIComponent(dataset)}/documents/${row}/activations?latents=${shade}`
  )
  const shadeBy = (latent: number | null) => setParams(`document/${dataset}/${row}`, { latent })
  // Documents like it in this dataset, or in another encoded alike (the other side of a diff, say).
  const [lookIn, setLookIn] = useState('')
  const datasets = useDatasets()
  const similar = useApi<SimilarDocuments>(
    `/datasets/${encodeURIComponent(dataset)}/documents/${row}/similar?limit=10${lookIn ? `&in=${encodeURIComponent(lookIn)}` : ''}`
  )
  const all = datasets.data?.datasets ?? []
  const encoder = all.find(x => x.id === dataset)?.encoder
  const others = all.filter(x => x.status === 'ready' && x.id !== dataset && x.encoder === encoder)
  const d = doc.data
  // Strongest first (the API's order), or distinctive first: strong here and rare in the dataset, value x ln(1 / f),
  // so the latents that fire in every document (punctuation, "the") sink.
  const [order, setOrder] = useState<'strongest' | 'distinctive'>('strongest')
  const [showAll, setShowAll] = useState(false)
  const ordered = d
    ? order === 'strongest'
      ? d.latents
      : [...d.latents].sort(
          (x, y) => distinctiveness(y.value, y.frequency) - distinctiveness(x.value, x.frequency) || x.latent - y.latent
        )
    : []
  const shown = showAll ? ordered : ordered.slice(0, LATENTS_SHOWN)
  return (
    <Page title={d ? `Document ${d.id}` : `Document ${row}`}>
      <ErrorBox error={doc.error} />
      {d ? (
        <div class="two">
          <div class="card">
            <p class="muted">
              {dataset} · row {d.row} · {d.tokenCount} tokens{d.truncated ? ' (truncated)' : ''}
            </p>
            {shade === null ? (
              <>
                <pre class="doc-text">{d.text}</pre>
                <p class="muted small">A latent's token number (in the table) shades the text by where it fires.</p>
              </>
            ) : (
              <ShadedText
                latent={shade}
                shaded={shaded.data}
                error={shaded.error}
                position={d.latents.find(l => l.latent === shade)?.position ?? null}
                onClear={() => shadeBy(null)}
              />
            )}
            {Object.keys(d.metadata).length ? (
              <dl class="meta">
                {Object.entries(d.metadata).map(([k, v]) => (
                  <>
                    <dt key={`k${k}`}>{k}</dt>
                    <dd key={`v${k}`}>{typeof v === 'string' ? v : JSON.stringify(v)}</dd>
                  </>
                ))}
              </dl>
            ) : null}
          </div>
          <div class="card">
            <h2>Its latents ({d.latents.length})</h2>
            <Field label="Order" hint="distinctive: strong here and rare in the dataset, value x ln(1 / frequency)">
              <select
                name="latentOrder"
                value={order}
                onChange={e => setOrder((e.target as HTMLSelectElement).value as typeof order)}
              >
                <option value="strongest">strongest first</option>
                <option value="distinctive">distinctive first</option>
              </select>
            </Field>
            <LatentPeaksTable
              testId="doc-latents"
              dataset={dataset}
              valueName="Value"
              rows={shown.map(l => ({ ...l, strength: l.value }))}
              shade={shade}
              onShade={latent => shadeBy(shade === latent ? null : latent)}
            />
            {ordered.length > LATENTS_SHOWN ? (
              <button type="button" class="small" onClick={() => setShowAll(!showAll)}>
                {showAll ? `Show the first ${LATENTS_SHOWN}` : `Show all ${ordered.length}`}
              </button>
            ) : null}
          </div>
        </div>
      ) : null}
      {d ? (
        <SimilarCard
          similar={similar.data}
          error={similar.error}
          lookIn={lookIn}
          onLookIn={setLookIn}
          others={others.map(x => ({ id: x.id, name: x.name }))}
        />
      ) : null}
    </Page>
  )
}

/**
 * A document's or a text's latents: each a link to its page, its strength as a bar, its share of the dataset's
 * documents, and the token where it peaks as a button that shades the text by it.
 */
export function LatentPeaksTable({
  testId,
  dataset,
  valueName,
  rows,
  shade,
  onShade
}: {
  testId: string
  dataset: string
  valueName: string
  rows: Array<{
    latent: number
    label: string | null
    peak?: LatentPeak | null
    strength: number
    frequency?: number
    position: number
  }>
  shade: number | null
  onShade: (latent: number) => void
}) {
  const max = Math.max(1e-9, ...rows.map(l => l.strength))
  return (
    <div class="table-wrap">
      <table class="compact" data-testid={testId}>
        <thead>
          <tr>
            <th>Latent</th>
            <th class="num">{valueName}</th>
            <th class="num" title="share of the dataset's documents where it is present">
              In dataset
            </th>
            <th class="num" title="the token where it peaks; click to shade the text by the latent">
              Token #
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map(l => (
            <tr key={l.latent} data-latent={l.latent}>
              <td>
                <LatentLink latent={l.latent} dataset={dataset} label={l.label} peak={l.peak} />
              </td>
              <td class="num">
                <span class="hbar inline" style={{ width: `${(l.strength / max) * 60}px` }} /> {fmt.num(l.strength)}
              </td>
              <td class="num">{l.frequency === undefined ? '' : fmt.pct(l.frequency)}</td>
              <td class="num">
                <button
                  type="button"
                  class={`small${shade === l.latent ? '' : ' tab'}`}
                  aria-pressed={shade === l.latent}
                  title={`shade the text by latent ${l.latent}: where it fires, token by token`}
                  onClick={() => onShade(l.latent)}
                >
                  {l.position}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

/** The text as the reader read it, each token shaded by the latent's activation there, with where it peaks. */
function ShadedText({
  latent,
  shaded,
  error,
  position,
  onClear
}: {
  latent: number
  shaded: DocumentActivations | null
  error: unknown
  position: number | null
  onClear: () => void
}) {
  const l = shaded?.latents[0]
  return (
    <div data-testid="shaded-text">
      {shaded && l ? (
        <ShadedTokens tokens={shaded.tokens} latent={l} onClear={onClear} />
      ) : (
        <div class="row-actions spread">
          <p class="muted small">Shaded by latent {latent}</p>
          <button type="button" class="small tab" onClick={onClear}>
            Plain text
          </button>
        </div>
      )}
      <ErrorBox error={error} />
      {error && position !== null ? (
        <p class="muted small">
          Without the encoder: latent {latent} peaks at token {position} of this document.
        </p>
      ) : null}
    </div>
  )
}

/** Tokens shaded by one latent's activation at each, under a line saying where it peaks and how often it fires. */
export function ShadedTokens({
  tokens,
  latent: l,
  onClear
}: {
  tokens: string[]
  latent: DocumentTokenLatent
  onClear?: () => void
}) {
  const firing = l.activations.filter(a => a > 0).length
  return (
    <>
      <div class="row-actions spread">
        <p class="muted small" data-testid="shaded-by">
          Shaded by latent {l.latent}
          {l.label ? ` (${shortLabel(l.label)})` : ''}
          {l.position < 0
            ? ': it does not fire here'
            : `: max ${fmt.num(l.max)} at token ${l.position}, fires on ${firing} of ${tokens.length} tokens`}
        </p>
        {onClear ? (
          <button type="button" class="small tab" onClick={onClear}>
            Plain text
          </button>
        ) : null}
      </div>
      <div class="doc-text">
        <TokenText tokens={tokens} activations={l.activations} max={l.max} />
      </div>
    </>
  )
}

/** The documents most like this one, each with the latents that make most of the likeness. */
function SimilarCard({
  similar,
  error,
  lookIn,
  onLookIn,
  others
}: {
  similar: SimilarDocuments | null
  error: unknown
  lookIn: string
  onLookIn: (id: string) => void
  others: Array<{ id: string; name: string }>
}) {
  const dataset = similar?.in ?? ''
  return (
    <div class="card">
      <div class="row-actions spread">
        <h2>Documents like it</h2>
        {others.length ? (
          <label class="small">
            in{' '}
            <select name="lookIn" value={lookIn} onChange={e => onLookIn((e.target as HTMLSelectElement).value)}>
              <option value="">this dataset</option>
              {others.map(o => (
                <option key={o.id} value={o.id}>
                  {o.name} ({o.id})
                </option>
              ))}
            </select>
          </label>
        ) : null}
      </div>
      <ErrorBox error={error} />
      {similar ? (
        <>
          <p class="muted">
            Cosine of the documents' latent sets, each latent weighted by how rare it is (sqrt idf), over{' '}
            {similar.candidates} documents; the latents each one shares with this document, largest part of the likeness
            first.
          </p>
          {similar.results.length ? (
            <table class="compact" data-testid="similar-documents">
              <thead>
                <tr>
                  <th>Document</th>
                  <th class="num">Similarity</th>
                  <th>Shared latents</th>
                </tr>
              </thead>
              <tbody>
                {similar.results.map(r => (
                  <tr key={r.row} data-row={r.row}>
                    <td>
                      <a href={href(`document/${dataset}/${r.row}`)}>{r.id}</a>
                      <div class="muted small">{r.snippet}</div>
                    </td>
                    <td class="num">{fmt.num(r.score, 3)}</td>
                    <td>
                      {r.shared.map(s => (
                        <div key={s.latent}>
                          <LatentLink latent={s.latent} dataset={dataset} label={s.label} peak={s.peak} />{' '}
                          <span class="muted small">{fmt.pct(s.share)}</span>
                        </div>
                      ))}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <p class="muted">No other document shares a weighted latent with this one.</p>
          )}
        </>
      ) : null}
    </div>
  )
}
