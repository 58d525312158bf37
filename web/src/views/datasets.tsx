/** @module Datasets: the list with live progress (polled), errors with their reasons, delete, versions (diff one against the one before, append a batch), metadata values (each diffed against the rest); create from a URL or a dropped file with every source option. */
import type { ComponentChildren } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import { timeLeft, type FirstSeen } from '@latentbase/shared/util/time-left'
import type { DatasetView, FacetsView } from '@latentbase/shared/contract/dataset'
import { intakeOf } from '@latentbase/shared/util/intake'
import type { EncoderInfo } from '@latentbase/shared/contract/encoder'
import { api, uploadFile } from '../api.ts'
import { ErrorBox, Field, Page, ProgressBar, fmt, href, useAction, useApi, useInterval } from '../ui.tsx'

const ACTIVE = new Set(['queued', 'running'])

export function DatasetsView() {
  const list = useApi<{ datasets: DatasetView[] }>('/datasets')
  const [live, setLive] = useState<Record<string, DatasetView>>({})
  const datasets = (list.data?.datasets ?? []).map(d => live[d.id] ?? d)
  // A dataset appending a batch is ready on its previous version and polled like one that is encoding.
  const active = datasets.filter(d => ACTIVE.has(d.status) || (d.append && ACTIVE.has(d.append.status)))
  // Panels under a dataset's row, by their element id (`versions-{id}`, `metadata-{id}`).
  const [open, setOpen] = useState<Record<string, boolean>>({})
  const panelButton = (panel: string, label: string) => (
    <button
      type="button"
      class="small"
      aria-expanded={open[panel] ? 'true' : 'false'}
      aria-controls={panel}
      onClick={() => setOpen(o => ({ ...o, [panel]: !o[panel] }))}
    >
      {label}
    </button>
  )
  const panelRow = (panel: string, body: ComponentChildren) =>
    open[panel] ? (
      <tr key={panel} class="versions-row">
        <td colSpan={8}>{body}</td>
      </tr>
    ) : null
  // When each running dataset was first seen with documents done: the rate since then gives the time left.
  const firstSeen = useRef<Record<string, FirstSeen>>({})
  const leftOf = (d: DatasetView) => {
    if (d.status !== 'running') return ''
    const left = timeLeft(
      firstSeen.current[d.id] ?? null,
      d.progress.documents.done,
      d.progress.documents.total,
      Date.now()
    )
    return left ? `, ${left}` : ''
  }
  // The list holds the stored records; GET /datasets/{id} adds the live progress of running parts.
  useInterval(
    async () => {
      const fresh = await Promise.all(active.map(d => api<DatasetView>(`/datasets/${d.id}`).catch(() => null)))
      for (const d of fresh)
        if (d && d.status === 'running' && d.progress.documents.done > 0 && !firstSeen.current[d.id])
          firstSeen.current[d.id] = { at: Date.now(), done: d.progress.documents.done }
      setLive(prev => {
        const next = { ...prev }
        for (const d of fresh) if (d) next[d.id] = d
        return next
      })
    },
    1000,
    active.length > 0
  )

  const del = useAction(async (d: DatasetView) => {
    if (!confirm(`Delete dataset "${d.name}" (${d.id})? Its shards and statistics are removed.`)) return
    await api(`/datasets/${d.id}`, { method: 'DELETE' })
    list.reload()
  })

  return (
    <Page title="Datasets" intro="Every dataset is encoded by the worker into sparse latents; progress updates live.">
      <CreateDataset onCreated={() => list.reload()} />
      <ErrorBox error={list.error ?? del.error} />
      {list.data && datasets.length === 0 ? <p class="muted">No dataset yet: create one above.</p> : null}
      {datasets.length > 0 ? (
        <div class="table-wrap">
          <table class="datasets" data-testid="datasets">
            <thead>
              <tr>
                <th>Name</th>
                <th>Status</th>
                <th>Progress</th>
                <th class="num">Documents</th>
                <th class="num">Tokens</th>
                <th>Encoder</th>
                <th>Created</th>
                <th>
                  <span class="sr">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {datasets.map(d => [
                <tr key={d.id} data-id={d.id} data-status={d.status}>
                  <td>
                    <strong>{d.name}</strong>
                    <br />
                    <code class="muted">{d.id}</code>
                  </td>
                  <td>
                    <span class={`badge ${d.status}`}>{d.status}</span>
                  </td>
                  <td class="progress-cell">
                    {d.status === 'failed' ? (
                      <div class="reason">
                        <strong>{d.error?.code}</strong>: {d.error?.message}
                      </div>
                    ) : d.status === 'ready' ? (
                      <>
                        <span class="muted">
                          {d.stats
                            ? `${d.stats.activeLatents} active latents${d.stats.seconds?.total !== undefined ? `, ${d.stats.seconds.total.toFixed(1)} s` : ''}`
                            : 'done'}
                        </span>
                        {d.stats && intakeNote(d.stats) ? (
                          <div class="reason" data-testid={`intake-${d.id}`}>
                            {intakeNote(d.stats)}
                          </div>
                        ) : null}
                      </>
                    ) : (
                      <ProgressBar
                        value={
                          d.progress.documents.total ? d.progress.documents.done / d.progress.documents.total : null
                        }
                        label={`${d.progress.documents.done}${d.progress.documents.total ? ` / ${d.progress.documents.total}` : ''} documents${d.progress.parts ? `, ${d.progress.parts.done}/${d.progress.parts.total} parts` : ''}${leftOf(d)}`}
                      />
                    )}
                    {d.lastAttemptError && d.status !== 'failed' ? (
                      <div class="reason">retrying: {d.lastAttemptError}</div>
                    ) : null}
                  </td>
                  <td class="num">
                    {(d.stats?.documents ?? d.progress.documents.done).toLocaleString('en')}
                    {(d.versions?.length ?? 0) > 1 ? <small class="muted version-tag"> v{d.version}</small> : null}
                  </td>
                  <td class="num">{(d.stats?.tokens ?? d.progress.tokens).toLocaleString('en')}</td>
                  <td>
                    {d.encoder} <span class="muted">({d.pooling.method})</span>
                  </td>
                  <td>
                    <time dateTime={d.createdAt}>{new Date(d.createdAt).toLocaleString()}</time>
                  </td>
                  <td class="actions">
                    {d.status === 'ready' ? (
                      <>
                        <a href={href('diff', { a: d.id })}>Diff</a>{' '}
                        <a href={href('latents', { dataset: d.id })}>Latents</a>{' '}
                        <a href={href('search', { dataset: d.id })}>Search</a>{' '}
                        <a href={href('clusters', { dataset: d.id })}>Clusters</a>{' '}
                        {panelButton(`versions-${d.id}`, `Versions (${d.versions?.length ?? 1})`)}{' '}
                        {panelButton(`metadata-${d.id}`, 'Metadata')}{' '}
                      </>
                    ) : null}
                    <button
                      type="button"
                      class="danger small"
                      onClick={() => del.run(d)}
                      aria-label={`delete ${d.name}`}
                    >
                      Delete
                    </button>
                  </td>
                </tr>,
                d.status === 'ready'
                  ? panelRow(
                      `versions-${d.id}`,
                      <Versions d={d} onAppended={fresh => setLive(prev => ({ ...prev, [fresh.id]: fresh }))} />
                    )
                  : null,
                d.status === 'ready' ? panelRow(`metadata-${d.id}`, <Metadata d={d} />) : null
              ])}
            </tbody>
          </table>
        </div>
      ) : null}
    </Page>
  )
}

/**
 * A dataset's facets (GET /datasets/{id}/facets): each few-valued metadata key's values with their documents and mean
 * length, and a diff of each value against the rest of the dataset (counted from the facets: instant at any size).
 */
/** What the source lost on the way in, or null: records skipped (by reason) and documents cut at the token limit. */
function intakeNote(stats: NonNullable<DatasetView['stats']>): string | null {
  const { skipped, reasons, truncated } = intakeOf(stats)
  const parts = [
    ...(skipped
      ? [`${skipped.toLocaleString('en')} records skipped (${reasons.map(([r, n]) => `${r}: ${n}`).join(', ')})`]
      : []),
    ...(truncated ? [`${truncated.toLocaleString('en')} documents cut at the encoder's maxTokens`] : [])
  ]
  return parts.length ? parts.join('; ') : null
}

function Metadata({ d }: { d: DatasetView }) {
  const facets = useApi<FacetsView>(`/datasets/${encodeURIComponent(d.id)}/facets`)
  const f = facets.data
  return (
    <div class="versions" id={`metadata-${d.id}`} data-testid={`metadata-${d.id}`}>
      <ErrorBox error={facets.error} />
      {f && !f.stored ? (
        <p class="muted">Encoded before metadata values were counted: slices still work, typed in a where field.</p>
      ) : null}
      {f?.stored && f.fields.length === 0 ? <p class="muted">No metadata key with at most 32 values.</p> : null}
      {f?.fields.map(field => (
        <table key={field.field} data-field={field.field}>
          <caption>
            <code>{field.field}</code>
            {field.missing ? <span class="muted"> · {field.missing} documents without it</span> : null}
          </caption>
          <thead>
            <tr>
              <th>Value</th>
              <th class="num">Documents</th>
              <th class="num">Mean tokens</th>
              <th>
                <span class="sr">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {field.values.map(v => (
              <tr key={v.where} data-where={v.where}>
                <td>
                  <code>{JSON.stringify(v.value)}</code>
                </td>
                <td class="num">{v.documents.toLocaleString('en')}</td>
                <td class="num">{fmt.num(v.meanTokens)}</td>
                <td>
                  {v.documents < f.documents ? (
                    <a href={href('diff', { a: d.id, aWhere: v.where, b: d.id, bWhere: `not (${v.where})` })}>
                      Diff against the rest
                    </a>
                  ) : (
                    <span class="muted">every document</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ))}
      {f?.other.length ? (
        <p class="muted small">Keys with more values (slice them in a where field): {f.other.join(', ')}</p>
      ) : null}
    </div>
  )
}

/**
 * A dataset's versions, oldest first: the rows each batch added, a diff of each against the one before (the whole
 * dataset as of each version: `id@N`), and the form that appends a batch from a URL or a file (POST
 * /datasets/{id}/documents). The batch in flight, or the last one that failed and why, shows under the table.
 */
function Versions({ d, onAppended }: { d: DatasetView; onAppended: (d: DatasetView) => void }) {
  const versions = d.versions ?? []
  const [url, setUrl] = useState('')
  const [file, setFile] = useState<File | null>(null)
  const fileInput = useRef<HTMLInputElement>(null)
  const append = useAction(async () => {
    const source = file ? (await uploadFile(file)).url : url.trim()
    if (!source) throw new Error('Give a URL or choose a file: its documents become the next version.')
    const fresh = await api<DatasetView>(`/datasets/${d.id}/documents`, {
      method: 'POST',
      body: { source: { url: source } }
    })
    setUrl('')
    setFile(null)
    if (fileInput.current) fileInput.current.value = ''
    onAppended(fresh)
  })
  const batch = d.append
  return (
    <div class="versions" id={`versions-${d.id}`} data-testid={`versions-${d.id}`}>
      <table>
        <thead>
          <tr>
            <th class="num">Version</th>
            <th class="num">Rows added</th>
            <th class="num">Documents in all</th>
            <th class="num">Tokens added</th>
            <th>Added</th>
            <th>
              <span class="sr">Links</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {versions.map(v => {
            const ref = `${d.id}@${v.version}`
            const total = v.documents.start + v.documents.count
            return (
              <tr key={v.version} data-version={v.version}>
                <td class="num">
                  {v.version}
                  {v.version === (d.version ?? 1) ? <small class="muted"> latest</small> : null}
                </td>
                <td class="num">
                  {v.documents.count
                    ? `${v.documents.start.toLocaleString('en')}-${(total - 1).toLocaleString('en')}`
                    : '-'}
                </td>
                <td class="num">{total.toLocaleString('en')}</td>
                <td class="num">{v.tokens.toLocaleString('en')}</td>
                <td>
                  <time dateTime={v.createdAt}>{new Date(v.createdAt).toLocaleString()}</time>
                </td>
                <td class="actions">
                  {v.version > 1 ? (
                    <a href={href('diff', { a: ref, b: `${d.id}@${v.version - 1}` })}>Diff against v{v.version - 1}</a>
                  ) : null}{' '}
                  <a href={href('search', { dataset: ref })}>Search v{v.version}</a>
                </td>
              </tr>
            )
          })}
        </tbody>
      </table>
      {batch ? (
        <p class={batch.status === 'failed' ? 'reason' : 'muted'} data-testid="append-state">
          Version {batch.version}: <span class={`badge ${batch.status}`}>{batch.status}</span>
          {batch.error ? (
            <>
              {' '}
              <strong>{batch.error.code}</strong>: {batch.error.message}
            </>
          ) : null}
        </p>
      ) : null}
      <form
        class="append"
        onSubmit={e => {
          e.preventDefault()
          void append.run()
        }}
      >
        <Field
          label="Append documents from a URL"
          hint="JSONL, JSON, CSV, Parquet or text, documents in a text field: the encoder of the dataset encodes them"
        >
          <input
            type="url"
            value={url}
            placeholder="https://…/more.jsonl"
            onInput={e => setUrl((e.target as HTMLInputElement).value)}
          />
        </Field>
        <Field label="or from a file">
          <input
            ref={fileInput}
            type="file"
            onChange={e => setFile((e.target as HTMLInputElement).files?.[0] ?? null)}
          />
        </Field>
        <button type="submit" disabled={append.pending || (batch !== undefined && ACTIVE.has(batch.status))}>
          {append.pending ? 'Appending…' : `Append as version ${(d.version ?? 1) + 1}`}
        </button>
      </form>
      <ErrorBox error={append.error} />
    </div>
  )
}

const splitList = (s: string) =>
  s
    .split(',')
    .map(x => x.trim())
    .filter(Boolean)

function CreateDataset({ onCreated }: { onCreated: () => void }) {
  const encoders = useApi<{ encoders: EncoderInfo[] }>('/encoders')
  const [mode, setMode] = useState<'url' | 'file'>('url')
  const [f, setF] = useState({
    name: '',
    url: '',
    format: '',
    textField: 'text',
    idField: '',
    metadataFields: '',
    textUnit: 'paragraph',
    chat: false,
    messagesField: 'messages',
    poolRoles: 'assistant',
    maxDocuments: '',
    sampleSeed: '',
    encoder: 'demo',
    pooling: 'max',
    outlierNormRatio: '100',
    webhook: '',
    webhookSecret: ''
  })
  const [file, setFile] = useState<File | null>(null)
  const [dragging, setDragging] = useState(false)
  const [created, setCreated] = useState<string | null>(null)
  const fileInput = useRef<HTMLInputElement>(null)
  const set = (k: keyof typeof f) => (e: Event) => {
    const t = e.target as HTMLInputElement
    setF({ ...f, [k]: t.type === 'checkbox' ? t.checked : t.value })
  }
  useEffect(() => {
    const list = encoders.data?.encoders
    if (list?.length && !list.some(e => e.id === f.encoder)) setF(x => ({ ...x, encoder: list[0].id }))
  }, [encoders.data])

  const submit = useAction(async (e: Event) => {
    e.preventDefault()
    let url = f.url.trim()
    let name = f.name.trim()
    if (mode === 'file') {
      if (!file) throw new Error('drop a file on the area, or choose one')
      const up = await uploadFile(file)
      url = up.url
      name ||= up.filename
    }
    const source: Record<string, unknown> = {
      url,
      textField: f.textField || 'text',
      textUnit: f.textUnit,
      metadataFields: splitList(f.metadataFields),
      ...(f.format ? { format: f.format } : {}),
      ...(f.idField ? { idField: f.idField } : {}),
      ...(f.chat ? { messagesField: f.messagesField, poolRoles: splitList(f.poolRoles) } : {}),
      ...(f.maxDocuments ? { maxDocuments: Number(f.maxDocuments) } : {}),
      ...(f.maxDocuments && f.sampleSeed !== '' ? { sampleSeed: Number(f.sampleSeed) } : {})
    }
    const body = {
      ...(name ? { name } : {}),
      source,
      encoder: f.encoder,
      pooling: { method: f.pooling, outlierNormRatio: Number(f.outlierNormRatio) || 100 },
      ...(f.webhook ? { webhook: { url: f.webhook, ...(f.webhookSecret ? { secret: f.webhookSecret } : {}) } } : {})
    }
    const d = await api<DatasetView & { webhookSecret?: string }>('/datasets', { method: 'POST', body })
    setCreated(
      `Queued ${d.name} (${d.id}).${d.webhookSecret ? ` Webhook secret (shown once): ${d.webhookSecret}` : ''}`
    )
    setFile(null)
    onCreated()
  })

  const onDrop = (e: DragEvent) => {
    e.preventDefault()
    setDragging(false)
    const dropped = e.dataTransfer?.files?.[0]
    if (dropped) {
      setFile(dropped)
      setMode('file')
    }
  }

  return (
    <form
      class="card create"
      onSubmit={submit.run}
      aria-label="create a dataset"
      onDragOver={e => {
        e.preventDefault()
        setDragging(true)
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={onDrop}
    >
      <h2>New dataset</h2>
      <div class="tabs" role="tablist">
        <button
          type="button"
          role="tab"
          aria-selected={mode === 'url'}
          class={mode === 'url' ? 'tab on' : 'tab'}
          onClick={() => setMode('url')}
        >
          From a URL
        </button>
        <button
          type="button"
          role="tab"
          aria-selected={mode === 'file'}
          class={mode === 'file' ? 'tab on' : 'tab'}
          onClick={() => setMode('file')}
        >
          From a file
        </button>
      </div>
      {mode === 'url' ? (
        <Field
          label="Source URL"
          hint="http(s):// URL of a file (.jsonl, .json, .csv, .parquet, .txt, optionally .gz), a Hugging Face dataset (hf://datasets/owner/name, its page or viewer URL), local mode also file:// or an absolute path"
        >
          <input
            type="text"
            name="url"
            value={f.url}
            onInput={set('url')}
            placeholder="https://example.org/data.jsonl"
            required
          />
        </Field>
      ) : (
        <div
          class={dragging ? 'dropzone over' : 'dropzone'}
          data-testid="dropzone"
          tabIndex={0}
          role="button"
          aria-label="drop a file here or press Enter to choose one"
          onClick={() => fileInput.current?.click()}
          onKeyDown={e => {
            if (e.key === 'Enter' || e.key === ' ') {
              e.preventDefault()
              fileInput.current?.click()
            }
          }}
        >
          {file ? (
            <span>
              <strong>{file.name}</strong> ({(file.size / 1024).toFixed(1)} KiB) — uploaded on Create
            </span>
          ) : (
            <span>
              Drop a file here (JSONL, JSON, CSV, Parquet, text; up to the server's upload limit), or press to choose
              one
            </span>
          )}
          <input
            ref={fileInput}
            type="file"
            name="file"
            class="sr"
            accept=".jsonl,.ndjson,.json,.csv,.tsv,.parquet,.pq,.txt,.md,.gz"
            onChange={e => setFile((e.target as HTMLInputElement).files?.[0] ?? null)}
          />
        </div>
      )}
      <div class="grid">
        <Field label="Name">
          <input type="text" name="name" value={f.name} onInput={set('name')} placeholder="from the URL or file" />
        </Field>
        <Field label="Format">
          <select name="format" value={f.format} onChange={set('format')}>
            <option value="">guess from name and content</option>
            {['jsonl', 'json', 'csv', 'parquet', 'text'].map(x => (
              <option key={x} value={x}>
                {x}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Text field">
          <input type="text" name="textField" value={f.textField} onInput={set('textField')} />
        </Field>
        <Field label="Id field">
          <input
            type="text"
            name="idField"
            value={f.idField}
            onInput={set('idField')}
            placeholder="row number when empty"
          />
        </Field>
        <Field label="Metadata fields" hint="comma-separated">
          <input
            type="text"
            name="metadataFields"
            value={f.metadataFields}
            onInput={set('metadataFields')}
            placeholder="label, source"
          />
        </Field>
        <Field label="Text unit" hint="plain text only">
          <select name="textUnit" value={f.textUnit} onChange={set('textUnit')}>
            {['paragraph', 'line', 'file'].map(x => (
              <option key={x} value={x}>
                {x}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Encoder">
          <select name="encoder" value={f.encoder} onChange={set('encoder')}>
            {(encoders.data?.encoders ?? [{ id: f.encoder } as EncoderInfo]).map(e => (
              <option key={e.id} value={e.id}>
                {e.id}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Pooling">
          <select name="pooling" value={f.pooling} onChange={set('pooling')}>
            {['max', 'mean', 'sum', 'binary', 'count'].map(x => (
              <option key={x} value={x}>
                {x}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Outlier norm ratio" hint="tokens over this multiple of the median norm are not pooled">
          <input
            type="number"
            min="1"
            step="any"
            name="outlierNormRatio"
            value={f.outlierNormRatio}
            onInput={set('outlierNormRatio')}
          />
        </Field>
        <Field label="Max documents" hint="optional: encode only the first N documents (or a sample of N, below)">
          <input
            type="number"
            min="1"
            step="1"
            name="maxDocuments"
            value={f.maxDocuments}
            onInput={set('maxDocuments')}
            placeholder="all"
          />
        </Field>
        <Field label="Sample seed" hint="with max documents: a seeded uniform sample of the whole source instead">
          <input
            type="number"
            min="0"
            step="1"
            name="sampleSeed"
            value={f.sampleSeed}
            onInput={set('sampleSeed')}
            disabled={!f.maxDocuments}
            placeholder="first N"
          />
        </Field>
      </div>
      <fieldset class="inline">
        <label class="check">
          <input type="checkbox" name="chat" checked={f.chat} onChange={set('chat')} /> Chat documents
        </label>
        {f.chat ? (
          <>
            <Field label="Messages field" hint="a list of { role, content }">
              <input type="text" name="messagesField" value={f.messagesField} onInput={set('messagesField')} />
            </Field>
            <Field label="Pool roles" hint="comma-separated: whose tokens are pooled">
              <input type="text" name="poolRoles" value={f.poolRoles} onInput={set('poolRoles')} />
            </Field>
          </>
        ) : null}
      </fieldset>
      <details>
        <summary>Webhook</summary>
        <div class="grid">
          <Field label="Webhook URL" hint="told dataset.ready / dataset.failed">
            <input
              type="url"
              name="webhook"
              value={f.webhook}
              onInput={set('webhook')}
              placeholder="https://example.org/hook"
            />
          </Field>
          <Field label="Secret" hint="whsec_…; generated and shown once when empty">
            <input type="text" name="webhookSecret" value={f.webhookSecret} onInput={set('webhookSecret')} />
          </Field>
        </div>
      </details>
      <div class="row-actions">
        <button type="submit" disabled={submit.pending}>
          {submit.pending ? (mode === 'file' ? 'Uploading…' : 'Creating…') : 'Create dataset'}
        </button>
        {created ? (
          <span class="ok" role="status">
            {created}
          </span>
        ) : null}
      </div>
      <ErrorBox error={submit.error} />
    </form>
  )
}
