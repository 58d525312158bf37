/** @module Checks the offline labeller: bounded top activations and readable, short labels. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatLabel, MAX_LABEL_LENGTH, rankTokens, tokenText, TopActivations } from './labels.ts'
import { xoshiro128 } from '@latentbase/shared/util/random'

test('TopActivations keeps exactly the strongest activations of each latent', () => {
  const top = new TopActivations(3, 5)
  const next = xoshiro128(9)
  const offered: number[][] = [[], [], []]
  for (let token = 0; token < 2000; token++) {
    const latent = token % 3
    const value = next()
    offered[latent].push(value)
    top.offer(latent, value, token)
  }
  for (let latent = 0; latent < 3; latent++) {
    const expected = offered[latent].sort((a, b) => b - a).slice(0, 5)
    const kept = top.examples(latent)
    assert.deepEqual(
      kept.map(e => e.value),
      expected.map(v => Math.fround(v))
    )
    for (const e of kept) assert.equal(e.token % 3, latent)
  }
  assert.deepEqual(new TopActivations(2, 4).examples(1), [])
})

test('sentencepiece pieces become readable text', () => {
  assert.equal(tokenText('▁whale'), ' whale')
  assert.equal(tokenText('<0x0A>'), '\n')
  assert.equal(tokenText('ale'), 'ale')
})

test('tokens are ranked by count, then by strength', () => {
  assert.deepEqual(
    rankTokens([
      { value: 1, text: ' whale' },
      { value: 5, text: ' Whale' },
      { value: 2, text: ' whale' },
      { value: 3, text: 's' },
      { value: 4, text: ' whales' }
    ]),
    [' whale', ' Whale', ' whales', 's']
  )
})

test('labels name the top tokens and a context, and stay short', () => {
  const label = formatLabel([' whale', ' whales', ' Whale', ' fish'], ' the white whale', ' swam')
  assert.equal(label, 'tokens " whale", " whales", " Whale" (e.g. "...the white whale swam...")')
  const long = formatLabel(['x'.repeat(40), 'y'.repeat(40), 'z'.repeat(40)], 'a'.repeat(300) + ' TARGET', '\n\n"next"')
  assert.ok(long.length <= MAX_LABEL_LENGTH, `${long.length} chars`)
  assert.match(long, /TARGET/, 'the activating token survives shortening')
  assert.ok(!long.includes('z'.repeat(40)), 'tokens are dropped when they do not fit')
  assert.equal(formatLabel(['\n'], ''), 'token "\\n"')
})
