/** @module Shared pieces of the web interface: the hash router, data hooks, error boxes, progress bars, dataset pickers, latent links. */
import type { ComponentChildren } from 'preact'
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import { api, ApiError } from './api.ts'
import type { DatasetView, FacetsView } from '@latentbase/shared/contract/dataset'

// --- routing: #/view/param?query (hash routes: no server route can collide with an API path) ---------------------------

export interface Route {
  parts: string[]
  params: URLSearchParams
}

export function parseHash(hash: string): Route {
  const h = hash.replace(/^#\/?/, '')
  const [path, q = ''] = h.split('?')
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(q) }
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash))
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash))
    window.addEventListener('hashchange', on)
    return () => window.removeEventListener('hashchange', on)
  }, [])
  return route
}

export function href(path: string, params?: Record<string, string | number | undefined | null | string[]>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v === undefined || v === null || v === '') continue
    if (Array.isArray(v)) {
      if (v.length) q.set(k, v.join(','))
    } else q.set(k, String(v))
  }
  const s = q.toString()
  return `#/${path}${s ? `?${s}` : ''}`
}

/** Replace the query of the current view (the form's state lives in the URL, so a result can be linked and reloaded). */
export function setParams(path: string, params: Record<string, string | number | undefined | null | string[]>): void {
  const next = href(path, params)
  if (location.hash !== next) location.hash = next
}

// --- data --------------------------------------------------------------------------------------------------------------

export interface Loaded<T> {
  data: T | null
  error: unknown
  loading: boolean
  reload: () => void
}

/** GET `path` (null: nothing yet); reloads when the path or the API key changes. */
export function useApi<T>(path: string | null): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: unknown; loading: boolean }>({
    data: null,
    error: null,
    loading: path !== null
  })
  const [tick, setTick] = useState(0)
  useEffect(() => {
    const on = () => setTick(t => t + 1)
    window.addEventListener('latentbase:key', on)
    return () => window.removeEventListener('latentbase:key', on)
  }, [])
  useEffect(() => {
    if (path === null) {
      setState({ data: null, error: null, loading: false })
      return
    }
    const ctrl = new AbortController()
    setState(s => ({ ...s, loading: true, error: null }))
    api<T>(path, { signal: ctrl.signal }).then(
      data => setState({ data, error: null, loading: false }),
      error => {
        if (!ctrl.signal.aborted) setState({ data: null, error, loading: false })
      }
    )
    return () => ctrl.abort()
  }, [path, tick])
  return { ...state, reload: useCallback(() => setTick(t => t + 1), []) }
}

/** An action (button press) with its pending state and error. */
export function useAction<A extends unknown[], T>(fn: (...args: A) => Promise<T>) {
  const [pending, setPending] = useState(false)
  const [error, setError] = useState<unknown>(null)
  const run = async (...args: A): Promise<T | undefined> => {
    setPending(true)
    setError(null)
    try {
      return await fn(...args)
    } catch (err) {
      setError(err)
      return undefined
    } finally {
      setPending(false)
    }
  }
  return { run, pending, error, setError }
}

export function useDatasets(): Loaded<{ datasets: DatasetView[] }> {
  return useApi<{ datasets: DatasetView[] }>('/datasets')
}

// --- components ----------------------------------------------------------------------------------------------------------

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null
  if (error instanceof ApiError) {
    return (
      <div class="error" role="alert">
        <strong>
          {error.status} {error.problem.title}
        </strong>
        {error.code ? <code class="code">{error.code}</code> : null}
        <div>{error.problem.detail}</div>
        {error.problem.errors && error.problem.errors.length > 1 ? (
          <ul>
            {error.problem.errors.map(e => (
              <li key={e.path}>
                <code>{e.path}</code>: {e.message}
              </li>
            ))}
          </ul>
        ) : null}
        {error.advice ? <div class="advice">{error.advice}</div> : null}
      </div>
    )
  }
  if ((error as Error).name === 'AbortError') return null
  return (
    <div class="error" role="alert">
      <strong>Error</strong>
      <div>{(error as Error).message ?? String(error)}</div>
    </div>
  )
}

export function ProgressBar({ value, label }: { value: number | null; label: string }) {
  const pct = value === null ? null : Math.max(0, Math.min(1, value)) * 100
  return (
    <div
      class="progress"
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={pct === null ? undefined : Math.round(pct)}
      title={label}
    >
      <div class={pct === null ? 'bar indeterminate' : 'bar'} style={pct === null ? undefined : { width: `${pct}%` }} />
      <span>{label}</span>
    </div>
  )
}

export function Field({ label, hint, children }: { label: string; hint?: string; children: ComponentChildren }) {
  return (
    <label class="field">
      <span class="label">{label}</span>
      {children}
      {hint ? <small>{hint}</small> : null}
    </label>
  )
}

/**
 * The API's complaint about one slice parameter in a 400 (`where`, `aWhere`, `bWhere` with the b's index), or null:
 * from the problem's `errors` (a query that does not parse) or its `detail` (`where: latent 70000 does not exist ...`).
 */
export function sliceError(error: unknown, param: string, index?: number): string | null {
  if (!(error instanceof ApiError) || error.status !== 400) return null
  const fits = (parts: string[]) => parts[0] === param && (index === undefined || parts.at(-1) === String(index))
  const issue = error.problem.errors?.find(e => fits(e.path.split('.')))
  if (issue) return issue.message
  const m = /^(\w+)((?:\.\w+)*): ([\s\S]*)$/.exec(error.problem.detail ?? '')
  return m && fits([m[1], ...m[2].split('.').filter(Boolean)]) ? m[3] : null
}

/** A slice of a dataset (docs/slices.md: text or JSON), with the API's complaint about it shown under the field. */
/**
 * A slice's text field. With `dataset`, its facets (few-valued metadata keys) are offered as suggestions, one slice
 * per value with its documents: the slices a diff adds up from stored counts.
 */
export function WhereField({
  label = 'Where',
  value,
  onInput,
  error,
  name = 'where',
  dataset,
  placeholder = 'e.g. metadata.model = "x" and latent 12 > 0.5'
}: {
  label?: string
  value: string
  onInput: (v: string) => void
  error: string | null
  name?: string
  dataset?: string
  placeholder?: string
}) {
  const facets = useApi<FacetsView>(dataset ? `/datasets/${encodeURIComponent(dataset)}/facets` : null)
  const fields = facets.data?.fields ?? []
  const listId = `${name}-facets`
  return (
    <label class="field wide">
      <span class="label">{label}</span>
      <input
        type="text"
        name={name}
        value={value}
        list={fields.length ? listId : undefined}
        onInput={e => onInput((e.target as HTMLInputElement).value)}
        placeholder={placeholder}
        aria-invalid={error ? true : undefined}
        spellcheck={false}
      />
      {fields.length ? (
        <datalist id={listId} data-testid={listId}>
          {fields.flatMap(f =>
            f.values.map(v => (
              <option key={v.where} value={v.where}>
                {`${v.documents} documents`}
              </option>
            ))
          )}
        </datalist>
      ) : null}
      {error ? (
        <small class="field-error" role="alert" data-testid={`${name}-error`}>
          {error}
        </small>
      ) : (
        <small>
          a slice: metadata, tokens, latents with and / or / not; empty for the whole dataset
          {fields.length ? `; values to pick: ${fields.map(f => `${f.field} (${f.values.length})`).join(', ')}` : ''}
        </small>
      )}
    </label>
  )
}

export function DatasetSelect({
  value,
  onChange,
  datasets,
  label = 'Dataset',
  id
}: {
  value: string
  onChange: (v: string) => void
  datasets: DatasetView[]
  label?: string
  id?: string
}) {
  const ready = datasets.filter(d => d.status === 'ready')
  return (
    <Field label={label}>
      <select id={id} value={value} onChange={e => onChange((e.target as HTMLSelectElement).value)} required>
        <option value="">choose a ready dataset…</option>
        {/* A dataset named by the URL before the list has loaded (or not ready): kept, so the required select does
            not silently refuse the submit; the API then says what is wrong with it. */}
        {value && !ready.some(d => d.id === value) && <option value={value}>{value}</option>}
        {ready.map(d => (
          <option key={d.id} value={d.id}>
            {d.name} ({d.id}, {d.stats?.documents ?? d.progress.documents.done} docs)
          </option>
        ))}
      </select>
    </Field>
  )
}

/** A latent's page link, named by its label or, without one, by the token it peaks on (the API's `peak`). */
export function LatentLink({
  latent,
  dataset,
  label,
  peak,
  extra
}: {
  latent: number
  dataset: string
  label?: string | null
  peak?: { token: string; window: string } | null
  extra?: Record<string, string>
}) {
  const unlabelled = !label && peak
  return (
    <a
      class="latent"
      href={href(`latent/${latent}`, { dataset, ...extra })}
      title={label ?? (unlabelled ? `no label; e.g. ${peak.window}` : undefined)}
    >
      #{latent}
      {label ? <span class="lbl"> {shortLabel(label)}</span> : null}
      {unlabelled ? <span class="lbl peak"> {shortLabel(peakText(peak))}</span> : null}
    </a>
  )
}

export function shortLabel(label: string | null | undefined, max = 60): string {
  if (!label) return '(no label)'
  return label.length > max ? `${label.slice(0, max - 1)}…` : label
}

/** What an unlabelled latent fires on, in a few words: `peaks on "viagra"`. */
export const peakText = (peak: { token: string }): string => `peaks on "${peak.token}"`

/** "offline-top-tokens", "llm:gpt-4o · det 0.81 fuzz 0.74". */
export function labelMeta(
  source: string | null | undefined,
  score: { detection: number | null; fuzzing: number | null } | null | undefined
): string {
  const parts = [source ?? 'no label']
  if (score) parts.push(`detection ${score.detection ?? '–'} · fuzzing ${score.fuzzing ?? '–'}`)
  return parts.join(' · ')
}

export const fmt = {
  pct: (x: number) => `${(x * 100).toFixed(x >= 0.1 || x === 0 ? 0 : 1)}%`,
  num: (x: number, d = 3) =>
    Math.abs(x) >= 1000 ? Math.round(x).toLocaleString('en') : Number(x.toPrecision(d)).toString(),
  p: (x: number | null) => (x === null ? '–' : x < 1e-4 ? x.toExponential(1) : x.toFixed(4)),
  cost: (cost: number | null, currency: string) =>
    cost === null ? 'no price configured' : `${cost.toFixed(4)} ${currency}`
}

/** Download `text` as a file. */
export function download(name: string, text: string, type = 'text/csv'): void {
  const url = URL.createObjectURL(new Blob([text], { type }))
  const a = document.createElement('a')
  a.href = url
  a.download = name
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
}

export function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : String(v)
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

/** Calls fn every `ms` while `active` (live progress). */
export function useInterval(fn: () => void, ms: number, active: boolean): void {
  const ref = useRef(fn)
  ref.current = fn
  useEffect(() => {
    if (!active) return
    const t = setInterval(() => ref.current(), ms)
    return () => clearInterval(t)
  }, [ms, active])
}

export function Page({
  title,
  children,
  intro
}: {
  title: string
  intro?: ComponentChildren
  children: ComponentChildren
}) {
  useEffect(() => {
    document.title = `${title} · Latentbase`
  }, [title])
  return (
    <section class="page">
      <h1 tabIndex={-1} id="page-title">
        {title}
      </h1>
      {intro ? <p class="intro">{intro}</p> : null}
      {children}
    </section>
  )
}
