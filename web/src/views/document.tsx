/** @module One document: its text, metadata and its own pooled latents (each a link to its page). */
import type { DocumentView } from '@latentbase/shared/contract/dataset'
import { ErrorBox, LatentLink, Page, fmt, useApi } from '../ui.tsx'

export function DocumentPage({ dataset, row }: { dataset: string; row: number }) {
  const doc = useApi<DocumentView>(`/datasets/${encodeURIComponent(dataset)}/documents/${row}`)
  const d = doc.data
  const max = d ? Math.max(1e-9, ...d.latents.map(l => l.value)) : 1
  return (
    <Page title={d ? `Document ${d.id}` : `Document ${row}`}>
      <ErrorBox error={doc.error} />
      {d ? (
        <div class="two">
          <div class="card">
            <p class="muted">
              {dataset} · row {d.row} · {d.tokenCount} tokens{d.truncated ? ' (truncated)' : ''}
            </p>
            <pre class="doc-text">{d.text}</pre>
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
            <table class="compact" data-testid="doc-latents">
              <thead>
                <tr>
                  <th>Latent</th>
                  <th class="num">Value</th>
                  <th class="num">Token</th>
                </tr>
              </thead>
              <tbody>
                {d.latents.slice(0, 200).map(l => (
                  <tr key={l.latent}>
                    <td>
                      <LatentLink latent={l.latent} dataset={dataset} label={l.label} peak={l.peak} />
                    </td>
                    <td class="num">
                      <span class="hbar inline" style={{ width: `${(l.value / max) * 60}px` }} /> {fmt.num(l.value)}
                    </td>
                    <td class="num">{l.position}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {d.latents.length > 200 ? <p class="muted small">The 200 strongest of {d.latents.length}.</p> : null}
          </div>
        </div>
      ) : null}
    </Page>
  )
}
