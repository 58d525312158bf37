/** @module The web interface's shell: navigation, the API key field, and the hash routes of every view. */
import { render, type JSX } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import './style.css'
import { getApiKey, setApiKey } from './api.ts'
import { useApi, useRoute } from './ui.tsx'
import { DatasetsView } from './views/datasets.tsx'
import { DiffView } from './views/diff.tsx'
import { LatentView } from './views/latent.tsx'
import { LatentsView } from './views/latents.tsx'
import { DocumentPage } from './views/document.tsx'
import { SearchView } from './views/search.tsx'
import { CorrelationsView } from './views/correlations.tsx'
import { ClustersView } from './views/clusters.tsx'
import { HypothesesView } from './views/hypotheses.tsx'
import { TextView } from './views/text.tsx'

const NAV = [
  ['datasets', 'Datasets'],
  ['diff', 'Diff'],
  ['latents', 'Latents'],
  ['search', 'Search'],
  ['text', 'Text'],
  ['correlations', 'Correlations'],
  ['clusters', 'Clusters'],
  ['hypotheses', 'Hypotheses']
] as const

function KeyField() {
  const [key, setKey] = useState(getApiKey())
  const [flag, setFlag] = useState(false)
  const health = useApi<{ mode: string }>('/health')
  useEffect(() => {
    const on = () => setFlag(true)
    window.addEventListener('latentbase:unauthorized', on)
    return () => window.removeEventListener('latentbase:unauthorized', on)
  }, [])
  const save = (e: Event) => {
    e.preventDefault()
    setApiKey(key.trim())
    setFlag(false)
  }
  return (
    <form class={flag ? 'key needs' : 'key'} onSubmit={save} aria-label="API key">
      <label>
        <span class="sr">API key</span>
        <input
          type="password"
          value={key}
          onInput={e => setKey((e.target as HTMLInputElement).value)}
          placeholder={health.data?.mode === 'local' ? 'API key (not needed locally)' : 'API key lb_…'}
          autocomplete="off"
        />
      </label>
      <button type="submit" class="small">
        Save
      </button>
      {flag ? (
        <span class="small" role="alert">
          a key is needed
        </span>
      ) : null}
    </form>
  )
}

function App() {
  const route = useRoute()
  const [view, a1, a2] = route.parts
  useEffect(() => {
    document.getElementById('page-title')?.focus({ preventScroll: true })
  }, [view, a1])
  let body: JSX.Element
  if (view === 'diff') body = <DiffView route={route} />
  else if (view === 'latent' && a1)
    body = <LatentView key={`${a1}-${route.params.get('dataset')}`} latent={Number(a1)} route={route} />
  else if (view === 'document' && a1 && a2) {
    const shade = route.params.get('latent')
    body = (
      <DocumentPage
        key={`${a1}/${a2}`}
        dataset={a1}
        row={Number(a2)}
        shade={shade !== null && /^\d+$/.test(shade) ? Number(shade) : null}
      />
    )
  } else if (view === 'latents') body = <LatentsView route={route} />
  else if (view === 'search') body = <SearchView route={route} />
  else if (view === 'text') body = <TextView route={route} />
  else if (view === 'correlations') body = <CorrelationsView route={route} />
  else if (view === 'clusters') body = <ClustersView route={route} />
  else if (view === 'hypotheses') body = <HypothesesView route={route} />
  else body = <DatasetsView />
  const current = view ?? 'datasets'
  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={e => {
          e.preventDefault()
          document.getElementById('page-title')?.focus()
        }}
      >
        Skip to content
      </a>
      <header>
        <a class="brand" href="#/datasets">
          Latentbase
        </a>
        <nav aria-label="views">
          {NAV.map(([id, label]) => (
            <a key={id} href={`#/${id}`} aria-current={current === id ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <KeyField />
      </header>
      <main id="main">{body}</main>
    </>
  )
}

const root = document.getElementById('app')!
// The static "Loading" line is replaced, not hydrated.
root.textContent = ''
render(<App />, root)
