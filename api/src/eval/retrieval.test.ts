/** @module Tests of the retrieval evaluation: its labelled corpus, ranking completion, and a small end-to-end run. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { labelsOf, PROPERTY_PATTERNS } from './corpus.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { completeRanking, evaluateRetrieval, formatTable } from './retrieval.ts'

test('labels come from the source and the property patterns', () => {
  assert.deepEqual(labelsOf('Visit http://www.example.com/ for $5 off!!', 'spam'), [
    'spam',
    'url',
    'money',
    'exclamation'
  ])
  assert.deepEqual(labelsOf('<html><body>hi</body></html>\n> you wrote', 'ham'), ['ham', 'html', 'quoted-reply'])
  assert.deepEqual(labelsOf('The harpooneers lowered for the sperm whale; the war was far away.', 'moby-dick'), [
    'moby-dick',
    'war',
    'whaling'
  ])
  assert.ok(!PROPERTY_PATTERNS.war.test('a software toolkit'), 'whole words only')
})

test('completeRanking appends the unscored rows once each, deterministically', () => {
  const c = completeRanking(Int32Array.from([4, 1]), 6, 3)
  assert.deepEqual(Array.from(c.subarray(0, 2)), [4, 1])
  assert.deepEqual(Array.from(c).sort(), [0, 1, 2, 3, 4, 5])
  assert.deepEqual(completeRanking(Int32Array.from([4, 1]), 6, 3), c)
})

test('end to end on a small corpus: the oracle finds "@" documents, bm25 a word only they contain', async () => {
  const docs = Array.from({ length: 24 }, (_, i) =>
    i % 2
      ? {
          id: `m${i}`,
          text: `Please write to person${i}@example.org or admin${i}@example.net about the meeting notes.`,
          labels: ['mail']
        }
      : {
          id: `p${i}`,
          text: `The ship sailed on through the long grey morning, and the sea was calm number ${i}.`,
          labels: ['prose']
        }
  )
  const queries = [
    { query: 'example addresses', relevant_label: 'mail', latents: [7082, 1591, 1978, 6505] },
    { query: 'sailing ships', relevant_label: 'prose' }
  ]
  const storeDir = await mkdtemp(join(tmpdir(), 'latentbase-eval-test-'))
  const r = await evaluateRetrieval({ docs, queries, storeDir, reuse: true })
  assert.equal(r.documents, 24)
  assert.ok(r.encodeSeconds > 0)
  // --reuse: the same documents in the same store are searched again without encoding; other documents are encoded.
  const again = await evaluateRetrieval({ docs, queries, storeDir, reuse: true })
  assert.equal(again.encodeSeconds, 0)
  assert.deepEqual(
    again.rows.map(x => x.ap),
    r.rows.map(x => x.ap)
  )
  const other = await evaluateRetrieval({ docs: docs.slice(0, 20), queries, storeDir, reuse: true })
  assert.ok(other.encodeSeconds > 0 && other.documents === 20)
  await rm(storeDir, { recursive: true, force: true })
  const row = (m: string) => r.rows.find(x => x.method === m)!
  assert.deepEqual(
    r.rows.map(x => x.method),
    ['sae', 'bm25', 'hybrid', 'random', 'example (q encoded)', 'oracle latents']
  )
  // The query encoded: "sailing ships" shares the prose's sea words, so the prose ranks above chance.
  assert.ok(row('example (q encoded)').ap[1] > 0.6, `example AP ${row('example (q encoded)').ap[1]}`)
  assert.equal(row('bm25').ap[0], 1, '"example" occurs only in the mail documents')
  assert.equal(row('oracle latents').queries, 1, 'only the first query has hand-picked latents')
  assert.ok(row('oracle latents').ap[0] > 0.9, `oracle AP ${row('oracle latents').ap[0]}`)
  assert.ok(
    row('random').map > 0.3 && row('random').map < 0.75,
    `random MAP ${row('random').map} near the prevalence 0.5`
  )
  assert.match(formatTable(r), /\| oracle latents \| [01]\.\d{3} \|/)
})
