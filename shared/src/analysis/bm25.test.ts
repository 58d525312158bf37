/** @module Tests of BM25 against a hand computation. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildBm25Index, bm25Scores, bm25Tokens, Bm25IndexBuilder } from './bm25.ts'

test('scores follow the BM25 formula on a three-document corpus', () => {
  const texts = ['the whale the whale', 'a ship', 'whale ship sea sea sea sea']
  const ix = buildBm25Index(texts)
  assert.deepEqual(Array.from(ix.docLength), [4, 2, 6])
  assert.equal(ix.avgLength, 4)
  const s = bm25Scores(ix, 'Whale whale')
  const idf = Math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))
  const term = (tf: number, len: number) => (idf * tf * 2.2) / (tf + 1.2 * (0.25 + (0.75 * len) / 4))
  assert.ok(Math.abs(s[0] - term(2, 4)) < 1e-5)
  assert.equal(s[1], 0)
  assert.ok(Math.abs(s[2] - term(1, 6)) < 1e-5, 'a repeated query word counts once')
  const ship = bm25Scores(ix, 'ship')
  assert.ok(ship[1] > ship[2], 'the shorter document with the term ranks higher')
  assert.deepEqual(Array.from(bm25Scores(ix, 'unknown words')), [0, 0, 0])
  assert.deepEqual(bm25Tokens("Don't STOP-me now"), ['don', 't', 'stop', 'me', 'now'])
})

test('posting lists grow past the initial buffer', () => {
  const texts = Array.from(
    { length: 3000 },
    (_, i) => `doc${i} w${i % 50} ` + Array.from({ length: 30 }, (_, j) => `t${(i * 7 + j) % 997}`).join(' ')
  )
  const ix = buildBm25Index(texts)
  const s = bm25Scores(ix, 'w7')
  let hits = 0
  for (let i = 0; i < s.length; i++)
    if (s[i] > 0) {
      hits++
      assert.equal(i % 50, 7)
    }
  assert.equal(hits, 60)
  assert.ok(bm25Scores(ix, 'doc2999')[2999] > 0)
})

test('an index fed out of row order equals one built in order', () => {
  const texts = ['whale ship', 'sea sea whale', '', 'ship ahoy whale whale']
  const b = new Bm25IndexBuilder()
  for (const d of [3, 0, 2, 1]) b.add(d, texts[d])
  const shuffled = b.build(5)
  const ordered = buildBm25Index([...texts, ''])
  const postings = (ix: typeof ordered, term: string) => {
    const t = ix.terms.get(term)!
    return [
      Array.from(ix.docs.subarray(ix.termPtr[t], ix.termPtr[t + 1])),
      Array.from(ix.tfs.subarray(ix.termPtr[t], ix.termPtr[t + 1]))
    ]
  }
  assert.deepEqual([...shuffled.terms.keys()].sort(), [...ordered.terms.keys()].sort())
  for (const term of ordered.terms.keys()) assert.deepEqual(postings(shuffled, term), postings(ordered, term), term)
  assert.deepEqual(
    postings(shuffled, 'whale'),
    [
      [0, 1, 3],
      [1, 1, 2]
    ],
    'documents ascending within a term'
  )
  assert.deepEqual(Array.from(shuffled.docLength), Array.from(ordered.docLength))
  assert.deepEqual(bm25Scores(shuffled, 'whale ahoy'), bm25Scores(ordered, 'whale ahoy'))
})
