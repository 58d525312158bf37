/** @module Tests of the offline embedder: hashed lexical features plus lexicon neighbours. */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  OfflineEmbedder,
  OFFLINE_DIMENSIONS,
  OFFLINE_EMBEDDER_ID,
  lexicalTokens,
  loadLexicon,
  neighboursOf,
  parseLexicon,
  readLexiconFile,
  scanLexicon,
  setLexiconLoader,
  LEXICON_SCAN_WORDS
} from './offline.ts'

// neighboursOf is synchronous: the lexicon file is read first (OfflineEmbedder.embed awaits the same load).
before(() => loadLexicon())

const dot = (v: Float32Array, d: number, i: number, j: number) => {
  let s = 0
  for (let x = 0; x < d; x++) s += v[i * d + x] * v[j * d + x]
  return s
}

test('embeddings are unit vectors, deterministic across instances, zero for stopwords only', async () => {
  const texts = ['The white whale', 'mailing list unsubscribe footer', 'the of and', '']
  const e = new OfflineEmbedder()
  assert.equal(e.dimensions, OFFLINE_DIMENSIONS)
  const a = await e.embed(texts)
  const b = await new OfflineEmbedder().embed(texts)
  assert.deepEqual(a, b)
  assert.equal(a.length, texts.length * OFFLINE_DIMENSIONS)
  assert.ok(Math.abs(dot(a, OFFLINE_DIMENSIONS, 0, 0) - 1) < 1e-5)
  assert.ok(Math.abs(dot(a, OFFLINE_DIMENSIONS, 1, 1) - 1) < 1e-5)
  assert.equal(dot(a, OFFLINE_DIMENSIONS, 2, 2), 0)
  assert.equal(dot(a, OFFLINE_DIMENSIONS, 3, 3), 0)
})

test('lexical overlap, inflections and shared fragments score above unrelated text', async () => {
  const e = new OfflineEmbedder()
  const d = e.dimensions
  const v = await e.embed([
    'emails with links to websites', // 0 query
    'token "email" (e.g. "...send me an email at...")', // 1 shares "email"
    'token "website" (e.g. "...visit our website...")', // 2 shares "website" via n-grams of "websites"
    'tokens " whale", " ship" (e.g. "...the whale swam...")' // 3 unrelated
  ])
  assert.ok(dot(v, d, 0, 1) > dot(v, d, 0, 3) + 0.05, `email ${dot(v, d, 0, 1)} vs whale ${dot(v, d, 0, 3)}`)
  assert.ok(dot(v, d, 0, 2) > dot(v, d, 0, 3) + 0.05, `website ${dot(v, d, 0, 2)} vs whale ${dot(v, d, 0, 3)}`)
})

test('symbols are tokens of their own, so a query for "@" meets a label quoting it', async () => {
  assert.deepEqual(lexicalTokens('root@localhost, $5!'), ['root', '@', 'localhost', '$', '5'])
  const e = new OfflineEmbedder(64)
  assert.equal(e.id, `${OFFLINE_EMBEDDER_ID}-64`)
  assert.notEqual(
    OFFLINE_EMBEDDER_ID,
    'offline-hash-v1',
    'label-embedding caches of the lexical-only embedder are not reused'
  )
  const v = await e.embed(['@', 'token "@"', 'token "ated"'])
  assert.ok(dot(v, 64, 0, 1) > 0.4)
  assert.ok(dot(v, 64, 0, 1) > dot(v, 64, 0, 2))
})

test('words meet their synonyms and near-synonyms, not unrelated words', async () => {
  const e = new OfflineEmbedder()
  const d = e.dimensions
  const pairs: Array<[string, string, string]> = [
    // [word, related, unrelated]
    ['cash', 'money', 'whale'],
    ['physician', 'doctor', 'harbour'],
    ['advertising', 'marketing', 'scripture'],
    ['war', 'battle', 'software'],
    ['ship', 'vessel', 'payment']
  ]
  for (const [w, related, unrelated] of pairs) {
    const v = await e.embed([w, related, unrelated])
    const near = dot(v, d, 0, 1),
      far = dot(v, d, 0, 2)
    assert.ok(near > 0.1, `${w} ~ ${related}: ${near.toFixed(3)}`)
    assert.ok(near > far + 0.08, `${w} ~ ${related} ${near.toFixed(3)} vs ${unrelated} ${far.toFixed(3)}`)
  }
  // A query meets a label made of its synonyms.
  const v = await e.embed([
    'cash prices',
    '"money", "dollars" (e.g. "...send the money...")',
    '"whale", "sea" (e.g. "...the whale...")'
  ])
  assert.ok(dot(v, d, 0, 1) > dot(v, d, 0, 2) + 0.1, `${dot(v, d, 0, 1)} vs ${dot(v, d, 0, 2)}`)
})

test('the lexicon is read once; plurals fall back to their singular; unknown words have no neighbours', () => {
  assert.ok(neighboursOf('physician').some(([w]) => w === 'doctor'))
  assert.ok(neighboursOf('physicians').length > 0 || neighboursOf('physician').length > 0)
  assert.deepEqual(neighboursOf('qzxv'), [])
  for (const [, sim] of neighboursOf('cash')) assert.ok(sim > 0 && sim < 1)
})

test("one word's neighbours found by scanning the text equal the full parse's, ties and repeats included", async () => {
  // Repeated pairs keep the larger similarity at the first place; ties keep file order; a word that is a prefix of
  // another, or the first or the last line (no trailing newline), is found exactly.
  const toy =
    'ship vessel:0.8 boat:0.5\nboat ship:0.7 shipment:0.5 boats:0.5\nvessel ship:0.6 boat:0.5\nshipment ship:0.4'
  const full = parseLexicon(toy)
  for (const w of ['ship', 'boat', 'vessel', 'shipment', 'boats', 'shi', 'hip', 'sh ip', ''])
    assert.deepEqual(scanLexicon(toy, w), full.get(w) ?? [], w)
  assert.deepEqual(full.get('ship'), [
    ['vessel', 0.8],
    ['boat', 0.7],
    ['shipment', 0.4]
  ])
  assert.deepEqual(full.get('boat'), [
    ['ship', 0.7],
    ['shipment', 0.5],
    ['boats', 0.5],
    ['vessel', 0.5]
  ])
  // The real lexicon: every 25th word (the check over all 21k words passed too, but takes a minute under load), found in
  // the decoded text and in the file's bytes as the default loader hands them over (a Buffer, searched natively).
  const bytes = await readLexiconFile()
  assert.ok(bytes instanceof Buffer, 'in Node the lexicon stays in a Buffer')
  const text = new TextDecoder().decode(bytes)
  assert.ok(text.length < bytes.length, 'the lexicon has non-ASCII words: byte and character offsets differ')
  const all = parseLexicon(text)
  let n = 0
  for (const [w, list] of all) {
    if (n++ % 25 !== 0 && !/[^\p{ASCII}]/u.test(w)) continue
    assert.deepEqual(scanLexicon(text, w), list, w)
    assert.deepEqual(scanLexicon(bytes as Buffer, w), list, w)
  }
  assert.deepEqual(scanLexicon(Buffer.from(toy), 'ship'), full.get('ship'))
  assert.deepEqual(
    scanLexicon(Buffer.from(toy), 'shipment'),
    full.get('shipment'),
    'the last line, no trailing newline'
  )
})

test('past LEXICON_SCAN_WORDS distinct words the lexicon is parsed whole, with the same answers', async () => {
  const text = new TextDecoder().decode(await readLexiconFile())
  const all = parseLexicon(text)
  try {
    // Text (the Worker's loader) and the file's bytes (the default), each scanned word by word, then parsed whole.
    for (const loader of [async () => text, readLexiconFile]) {
      setLexiconLoader(loader)
      await loadLexicon()
      const words = [...all.keys()].filter((_, i) => i % 41 === 0).slice(0, LEXICON_SCAN_WORDS + 20)
      assert.ok(words.length > LEXICON_SCAN_WORDS)
      for (const w of words) assert.deepEqual(neighboursOf(w), all.get(w), w)
      for (const w of words.slice(0, 5)) assert.deepEqual(neighboursOf(w), all.get(w), w)
      assert.deepEqual(neighboursOf('qzxv'), [])
    }
  } finally {
    setLexiconLoader(readLexiconFile)
    await loadLexicon()
  }
})

test('the lexicon comes through an injectable loader (the Worker reads its ASSETS); a failed load is retried', async () => {
  try {
    setLexiconLoader(async () => 'alpha beta:0.5\n')
    await loadLexicon()
    assert.deepEqual(neighboursOf('beta'), [['alpha', 0.5]], 'neighbours are made symmetric')
    let calls = 0
    setLexiconLoader(async () => {
      if (++calls === 1) throw new Error('assets unavailable')
      return 'x y:0.3'
    })
    await assert.rejects(loadLexicon(), /assets unavailable/)
    assert.throws(() => neighboursOf('x'), /not loaded/)
    await loadLexicon()
    assert.deepEqual(neighboursOf('x'), [['y', 0.3]])
    assert.equal(calls, 2)
  } finally {
    setLexiconLoader(readLexiconFile)
    await loadLexicon()
  }
  assert.ok(neighboursOf('physician').some(([w]) => w === 'doctor'))
})
