/** @module Tests of label overlays: per-tenant keys, later files win, bad lines skipped, merged arrays reused while nothing changes. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryObjectStore } from '../store/memory-store.ts'
import { labelOverlayPrefix, mergeLabelOverlay, readLabelOverlay, writeLabelOverlay } from './label-overlay.ts'

test('overlays are per tenant and encoder; a later relabel wins per latent; a corrupt line costs only itself', async () => {
  const objects = new MemoryObjectStore()
  const k1 = await writeLabelOverlay(
    objects,
    't1',
    'fp:1',
    [
      { latent: 0, label: 'old zero', source: 'llm:a', detection: 0.6, fuzzing: null },
      { latent: 2, label: 'two', source: 'llm:a', detection: 0.9, fuzzing: 0.8 }
    ],
    new Date('2026-01-01T00:00:00Z')
  )
  assert.ok(k1!.startsWith('t1/encoders/fp_1/labels/llm-20260101-'))
  await writeLabelOverlay(
    objects,
    't1',
    'fp:1',
    [{ latent: 0, label: 'new zero', source: 'llm:b', detection: 0.7, fuzzing: 0.75 }],
    new Date('2026-01-02T00:00:00Z')
  )
  await objects.put(
    `${labelOverlayPrefix('t1', 'fp:1')}llm-20260103-x.jsonl`,
    '{"latent": 1, "label": "one", "source": "llm:c"}\nnot json\n{"latent": -4}\n'
  )
  assert.equal(await writeLabelOverlay(objects, 't1', 'fp:1', []), null, 'nothing to write, no file')

  const base = { labels: ['zero', 'one', null, 'three'], sources: ['neuronpedia', null, null, 'offline-top-tokens'] }
  const o = await readLabelOverlay(objects, 't1', 'fp:1')
  const info = mergeLabelOverlay(base, o, 't1')
  assert.deepEqual(info.labels, ['new zero', 'one', 'two', 'three'])
  assert.deepEqual(info.sources, ['llm:b', 'llm:c', 'llm:a', 'offline-top-tokens'])
  assert.deepEqual(
    [...info.detection].map(x => (Number.isNaN(x) ? null : Math.round(x * 100) / 100)),
    [0.7, null, 0.9, null]
  )
  assert.deepEqual([...info.overlaid!], [0, 1, 2])
  assert.equal(info.base, base.labels, "the encoder's own labels stay reachable (their embeddings are cached)")
  assert.deepEqual(base.labels, ['zero', 'one', null, 'three'], "the catalog's array is not touched")
  assert.equal(
    mergeLabelOverlay(base, await readLabelOverlay(objects, 't1', 'fp:1'), 't1'),
    info,
    'same inputs, same arrays'
  )

  const other = mergeLabelOverlay(base, await readLabelOverlay(objects, 't2', 'fp:1'), 't2')
  assert.equal(other.labels, base.labels, "another tenant sees the encoder's own labels")
  assert.ok(Number.isNaN(other.detection[0]))
})

test("the encoder's own detection scores show until an overlay label replaces the label", () => {
  const base = {
    labels: ['a', 'b', 'c'],
    sources: ['offline-lift', 'offline-lift', 'offline-lift'],
    detection: [0.8, null, 0.6]
  }
  const plain = mergeLabelOverlay(base, { signature: '', lines: new Map() }, 'x')
  assert.deepEqual(
    Array.from(plain.detection, d => (Number.isNaN(d) ? null : Math.round(d * 100) / 100)),
    [0.8, null, 0.6]
  )
  const over = mergeLabelOverlay(
    base,
    {
      signature: 's',
      lines: new Map([[2, { latent: 2, label: 'new', source: 'llm:m', detection: null, fuzzing: 0.9 }]])
    },
    'x'
  )
  assert.ok(Number.isNaN(over.detection[2]), 'the LLM label has no detection score: the offline one no longer applies')
  assert.equal(Math.round(over.detection[0] * 100) / 100, 0.8)
})
