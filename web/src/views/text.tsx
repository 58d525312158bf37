/** @module Text: any text encoded as a dataset's documents were (its reader and SAE), its strongest latents listed and the text shaded by one of them. */
import { useEffect, useState } from 'preact/hooks'
import type { TextActivations } from '@latentbase/shared/contract/dataset'
import { api, query } from '../api.ts'
import { DatasetSelect, ErrorBox, Field, Page, setParams, useAction, useDatasets, type Route } from '../ui.tsx'
import { LatentPeaksTable, ShadedTokens } from './document.tsx'

/** The API's limit on a text (characters). */
const MAX_TEXT = 4000

export function TextView({ route }: { route: Route }) {
  const p = route.params
  const datasets = useDatasets()
  const [form, setForm] = useState(() => ({
    dataset: p.get('dataset') ?? '',
    text: p.get('text') ?? '',
    order: p.get('order') === 'distinctive' ? 'distinctive' : 'strongest',
    format: p.get('format') === 'chat' ? 'chat' : 'text'
  }))
  const [result, setResult] = useState<TextActivations | null>(null)
  const [chosen, setChosen] = useState<number | null>(null)
  const encode = useAction(async (order: string = form.order) => {
    setParams('text', {
      dataset: form.dataset,
      text: form.text.trim(),
      order: order === 'strongest' ? '' : order,
      format: form.format === 'chat' ? 'chat' : ''
    })
    const r = await api<TextActivations>(
      `/datasets/${encodeURIComponent(form.dataset)}/activations?${query({ text: form.text, top: '20', order, format: form.format })}`
    )
    setResult(r)
    setChosen(r.latents[0]?.latent ?? null)
  })
  // A shared link (dataset and text in the URL) encodes at once.
  useEffect(() => {
    if (form.dataset && form.text.trim()) void encode.run(form.order)
  }, [])
  const shown = result?.latents.find(l => l.latent === chosen) ?? result?.latents[0]
  return (
    <Page
      title="Text"
      intro="Any text encoded as a dataset's documents were (its reader, SAE and pooling): the latents that fire on it most, and where each fires, token by token. Needs the server that holds the encoder (the local one)."
    >
      <form
        class="card"
        aria-label="text to encode"
        onSubmit={e => {
          e.preventDefault()
          void encode.run(form.order)
        }}
      >
        <div class="grid">
          <DatasetSelect
            value={form.dataset}
            onChange={v => setForm({ ...form, dataset: v })}
            datasets={datasets.data?.datasets ?? []}
            id="text-dataset"
          />
          <Field label="Order" hint="distinctive: activation x idf in the dataset, so latents of every document sink">
            <select
              name="order"
              value={form.order}
              onChange={e => {
                const order = (e.target as HTMLSelectElement).value
                setForm({ ...form, order })
                if (result) void encode.run(order)
              }}
            >
              <option value="strongest">strongest first</option>
              <option value="distinctive">distinctive first</option>
            </select>
          </Field>
        </div>
        <label class="check">
          <input
            type="checkbox"
            name="chat"
            checked={form.format === 'chat'}
            onChange={e => setForm({ ...form, format: (e.target as HTMLInputElement).checked ? 'chat' : 'text' })}
          />{' '}
          a chat: a JSON list of {'{ "role", "content" }'} messages, pooled on the turns the dataset pools
        </label>
        <Field label="Text" hint={`up to ${MAX_TEXT} characters`}>
          <textarea
            name="text"
            rows={5}
            maxLength={MAX_TEXT}
            required
            value={form.text}
            onInput={e => setForm({ ...form, text: (e.target as HTMLTextAreaElement).value })}
            placeholder={
              form.format === 'chat'
                ? '[{"role": "user", "content": "…"}, {"role": "assistant", "content": "…"}]'
                : "Paste a document, a model's answer, a chat turn…"
            }
          />
        </Field>
        <div class="row-actions">
          <button type="submit" disabled={encode.pending}>
            Encode
          </button>
          {encode.pending ? (
            <span class="muted" role="status">
              encoding…
            </span>
          ) : null}
        </div>
      </form>
      <ErrorBox error={encode.error} />
      {result ? (
        <div class="two">
          <div class="card" data-testid="text-shaded">
            <p class="muted">
              {result.tokens.length} tokens{result.truncated ? ' (truncated: the reader reads no further)' : ''} ·{' '}
              {result.present} latents fire
            </p>
            {shown ? (
              <ShadedTokens tokens={result.tokens} latent={shown} />
            ) : (
              <p class="muted">No latent fires on this text.</p>
            )}
          </div>
          <div class="card">
            <h2>{form.order === 'distinctive' ? 'Most distinctive latents' : 'Strongest latents'}</h2>
            <LatentPeaksTable
              testId="text-latents"
              dataset={result.dataset}
              valueName="Max"
              rows={result.latents.map(l => ({ ...l, strength: l.max }))}
              shade={shown?.latent ?? null}
              onShade={setChosen}
            />
          </div>
        </div>
      ) : null}
    </Page>
  )
}
