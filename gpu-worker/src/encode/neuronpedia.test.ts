/** @module Tests of the Neuronpedia label import: export rows (jsonl, gzip, JSON array), filters, preferences, sources, errors. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { labelsJsonl, parseNeuronpedia, readNeuronpedia } from './neuronpedia.ts'
import { loadLabels, parseLabels } from './labels.ts'

/** Rows as Neuronpedia's explanation exports write them (index as a string). */
const row = (
  index: string,
  description: string,
  explanationModelName = 'gpt-4o-mini',
  layer = '8-res-jb',
  modelId = 'gpt2-small'
) =>
  JSON.stringify({
    modelId,
    layer,
    index,
    description,
    explanationModelName,
    typeName: 'oai_token-act-pair',
    authorId: 'x'
  })

test('one label per latent with its source; other SAEs filtered; preferred explainer wins; empty descriptions skipped', () => {
  const text = [
    row('0', ' references to whales '),
    row('3', 'legal language', 'claude-3-haiku'),
    row('3', 'contracts and law', 'gpt-4o-mini'),
    row('5', ''),
    row('1', 'from another SAE', 'gpt-4o-mini', '9-res-jb')
  ].join('\n')
  const r = parseNeuronpedia([{ text, file: 'batch-0.jsonl' }], 8, {
    modelId: 'gpt2-small',
    saeId: '8-res-jb',
    preferModels: ['claude-3-haiku']
  })
  assert.equal(r.labels[0], 'references to whales')
  assert.equal(r.sources[0], 'neuronpedia:gpt-4o-mini')
  assert.equal(r.labels[3], 'legal language', 'the preferred explainer model wins over the later one')
  assert.equal(r.sources[3], 'neuronpedia:claude-3-haiku')
  assert.equal(r.labels[5], null)
  assert.equal(r.labels[1], null)
  assert.equal(r.labelled, 2)
  assert.equal(r.otherSae, 1)
  const noPref = parseNeuronpedia([{ text, file: 'b' }], 8, { saeId: '8-res-jb' })
  assert.equal(noPref.labels[3], 'legal language', 'without preferences the first explanation seen is kept')
  // Round trip into our own JSONL keeps the sources.
  const back = parseLabels(labelsJsonl(r), 8)
  assert.deepEqual(back.labels, r.labels)
  assert.deepEqual(back.sources, r.sources)
})

test('gzip exports and the API JSON array load through encoder.json labels as well', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'latentbase-np-'))
  try {
    await writeFile(
      join(dir, 'batch-0.jsonl.gz'),
      gzipSync(Buffer.from([row('2', 'numbers'), row('4', 'urls')].join('\n') + '\n'))
    )
    await writeFile(join(dir, 'export.json'), JSON.stringify([JSON.parse(row('1', 'html tags'))]))
    const viaLoader = await loadLabels(join(dir, 'batch-0.jsonl.gz'), 6)
    assert.deepEqual(viaLoader.labels, [null, null, 'numbers', null, 'urls', null])
    assert.equal(viaLoader.sources[4], 'neuronpedia:gpt-4o-mini')
    const both = await readNeuronpedia([join(dir, 'batch-0.jsonl.gz'), join(dir, 'export.json')], 6)
    assert.equal(both.labelled, 3)
    assert.equal(both.labels[1], 'html tags')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('bad rows are reported together with where they are; a filter matching nothing names what the file holds', () => {
  const text = [row('x', 'a'), '{oops', row('99', 'too big')].join('\n')
  assert.throws(
    () => parseNeuronpedia([{ text, file: 'batch-1.jsonl' }], 10),
    (err: Error) =>
      /3 bad rows/.test(err.message) &&
      /batch-1\.jsonl: line 1: "index"/.test(err.message) &&
      /line 2: not valid JSON/.test(err.message) &&
      /index 99 is outside 0\.\.9/.test(err.message)
  )
  assert.throws(
    () => parseNeuronpedia([{ text: row('1', 'a'), file: 'b' }], 10, { saeId: '12-res-jb' }),
    /no explanation matches \*\/12-res-jb; the export holds gpt2-small\/8-res-jb/
  )
})
