/** @module Tests for the append step's helpers: the API's fingerprint (Web Crypto) equals the worker's, and merged top examples are each latent's top of the union. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parquetReadObjects } from 'hyparquet'
import { datasetFingerprintOf } from '@latentbase/shared/catalog/fingerprint'
import { datasetFingerprint } from '../encode/runtime.ts'
import type { MinedWindows } from './top-examples.ts'
import { writeTopExamples } from '@latentbase/shared/store/top-examples/write'
import { mergeTopExamples } from './append.ts'

test('datasetFingerprintOf (API, Web Crypto) equals datasetFingerprint (worker) for every pooling and reader setting', async () => {
  for (const method of ['max', 'mean'] as const) {
    for (const longDocuments of ['truncate', 'window'] as const) {
      const pooling = { method, outlierNormRatio: 50 }
      assert.equal(
        await datasetFingerprintOf('base123', pooling, 512, longDocuments),
        datasetFingerprint('base123', pooling, 512, longDocuments)
      )
    }
  }
  assert.notEqual(
    await datasetFingerprintOf('base123', { method: 'max', outlierNormRatio: 100 }, 512, 'truncate'),
    datasetFingerprint('other', { method: 'max', outlierNormRatio: 100 }, 512, 'truncate')
  )
})

function examples(rows: Array<[latent: number, doc: number, value: number]>): Uint8Array {
  const c: MinedWindows = {
    latent: [],
    rank: [],
    doc: [],
    value: [],
    position: [],
    windowStart: [],
    tokens: [],
    activations: []
  }
  const rank = new Map<number, number>()
  for (const [latent, doc, value] of rows) {
    c.latent.push(latent)
    c.rank.push(rank.get(latent) ?? 0)
    rank.set(latent, (rank.get(latent) ?? 0) + 1)
    c.doc.push(doc)
    c.value.push(value)
    c.position.push(1)
    c.windowStart.push(0)
    c.tokens.push(JSON.stringify([`t${doc}`]))
    c.activations.push(JSON.stringify([value]))
  }
  return writeTopExamples(c)
}

test('merged top examples: per latent the top of both lists by value (ties to the lower row), ranked again', async () => {
  const a = examples([
    [0, 0, 5],
    [0, 1, 3],
    [2, 4, 1]
  ])
  const b = examples([
    [0, 10, 4],
    [0, 11, 3],
    [1, 12, 2]
  ])
  const rows = await parquetReadObjects({ file: (await mergeTopExamples([a, b], 2)).slice().buffer as ArrayBuffer })
  assert.deepEqual(
    rows.map(r => [Number(r.latent), Number(r.rank), Number(r.doc), Number(r.value)]),
    [
      [0, 0, 0, 5],
      [0, 1, 10, 4],
      [1, 0, 12, 2],
      [2, 0, 4, 1]
    ]
  )
  assert.deepEqual(JSON.parse(typeof rows[1].tokens === 'string' ? rows[1].tokens : JSON.stringify(rows[1].tokens)), [
    't10'
  ])
})

test('merged top examples at a large SAE: 65,536 latents x 5 examples (more rows than one call may take as arguments)', async () => {
  const nLatents = 65_536
  const rows: Array<[number, number, number]> = []
  for (let l = 0; l < nLatents; l++) for (let r = 0; r < 5; r++) rows.push([l, l + r, 10 - r])
  const merged = await parquetReadObjects({
    file: (await mergeTopExamples([examples(rows)], 3)).slice().buffer as ArrayBuffer,
    columns: ['latent', 'rank']
  })
  assert.equal(merged.length, nLatents * 3)
  assert.deepEqual([Number(merged.at(-1)!.latent), Number(merged.at(-1)!.rank)], [nLatents - 1, 2])
})
