/** @module Tests of the label text compared with queries: offline labels without their example, one array per label array. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { encoderMatchTexts, matchText } from './label-text.ts'

test('an offline label is matched by its words, without the example window; other labels whole', () => {
  assert.equal(
    matchText('"whale", "harpoon" (e.g. "...the tax (e.g. income) was paid...")', 'offline-lift'),
    '"whale", "harpoon"'
  )
  assert.equal(matchText('"prev" (e.g. "...Prev Up Chapter...")', 'offline-lift'), '"prev"')
  assert.equal(matchText('Mentions of fruit (e.g. "apples")', 'llm:gpt-4o-mini'), 'Mentions of fruit (e.g. "apples")')
  assert.equal(
    matchText('(e.g. "only an example")', 'offline-lift'),
    '(e.g. "only an example")',
    'nothing left: the label stays'
  )
  assert.equal(matchText(null, 'offline-lift'), null)
  assert.equal(matchText('"wrote", ">" (e.g. "...John wrote: >...")', 'offline-examples'), '"wrote", ">"')
})

test("an encoder's labels: examples dropped only when its labels are offline ones, one array per label array", () => {
  const offline = ['"whale" (e.g. "...the whale...")', null, 'plain words']
  const texts = encoderMatchTexts(offline, ['offline-lift', null, 'imported'])
  assert.deepEqual(texts, ['"whale"', null, 'plain words'])
  assert.equal(encoderMatchTexts(offline, ['offline-lift', null, 'imported']), texts, 'the same array again')
  const imported = ['Mentions of fruit (e.g. "apples")']
  assert.equal(encoderMatchTexts(imported, ['imported']), imported, 'other labels are matched whole')
})
