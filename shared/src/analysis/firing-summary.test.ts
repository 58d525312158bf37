/** @module Tests of the firing summary: the most frequent peak token, ties by rank, the window around the best-ranked peak. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { TopExample } from '../contract/latents.ts'
import { firingSummary } from './firing-summary.ts'

const example = (rank: number, tokens: string[], peak: number, windowStart = 100): TopExample => ({
  row: rank,
  id: `d${rank}`,
  rank,
  value: 10 - rank,
  tokens,
  activations: tokens.map((_, i) => (i === peak ? 1 : 0)),
  position: windowStart + peak,
  windowStart
})

test('the peak token most examples share, shown in the best-ranked window that peaks on it', () => {
  const s = firingSummary([
    example(0, ['Dear', ' friend', ',', ' click'], 3),
    example(1, ['On', ' Sun', ',', ' John', ' wrote', ':'], 4),
    example(2, [' Bob', ' Wrote', ':', ' >'], 1, 7),
    example(3, ['\n', ' ', '\n'], 1)
  ])
  assert.deepEqual(s, { token: 'wrote', count: 2, examples: 4, window: '...On Sun, John wrote:...' })
})

test('ties go to the better rank; long sides are cut between words; nothing visible gives null', () => {
  const long = Array.from({ length: 40 }, (_, i) => ` w${i}`)
  const s = firingSummary([example(0, [...long, ' peak', ...long], 40), example(1, ['a', ' other'], 1)], 10)
  assert.equal(s?.token, 'peak')
  assert.equal(s?.window, '...w38 w39 peak w0 w1 w2...', 'cut at word boundaries')
  assert.equal(firingSummary([example(0, [' ', '\n'], 0)]), null)
  assert.equal(firingSummary([]), null)
})

test("a window at the document's start leaves the reader's BOS token out of its text, unless the latent peaks on it", () => {
  for (const bos of ['<s>', '<bos>', '<|endoftext|>']) {
    const s = firingSummary([example(0, [bos, ' I', ' have', ' been'], 1, 0)])
    assert.equal(s?.window, '...I have been...', bos)
  }
  assert.equal(firingSummary([example(0, ['<s>', ' I'], 0, 0)])?.token, '<s>')
  assert.equal(firingSummary([example(0, ['<s>', ' I'], 0, 0)])?.window, '...<s> I...')
  assert.equal(
    firingSummary([example(0, ['<s>', ' I', ' x'], 1, 5)])?.window,
    '...<s> I x...',
    'not at the start: text'
  )
})
