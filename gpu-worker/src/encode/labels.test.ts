/** @module Tests of the labels JSONL reader. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseLabels } from './labels.ts'

test('labels land at their latent; missing latents are null; sources are kept', () => {
  const text = [
    '{"latent": 2, "label": "whale hunting", "source": "auto-top-tokens"}',
    '',
    '{"latent": 0, "label": "  the word \\"the\\"  "}',
    '{"latent": 4, "label": null}',
    '{"latent": 3, "label": ""}'
  ].join('\n')
  const l = parseLabels(text, 5)
  assert.deepEqual(l.labels, ['the word "the"', null, 'whale hunting', null, null])
  assert.deepEqual(l.sources, [null, null, 'auto-top-tokens', null, null])
  assert.equal(l.labelled, 2)
})

test('bad lines are all reported with their line numbers', () => {
  const text = [
    '{"latent": 0, "label": "ok"}',
    'not json',
    '{"latent": 9, "label": "out of range"}',
    '{"latent": "1", "label": "string latent"}',
    '{"latent": 1, "label": 5}',
    '{"latent": 0, "label": "again"}',
    '[1, 2]'
  ].join('\n')
  assert.throws(
    () => parseLabels(text, 4, 'labels.jsonl'),
    (err: Error) => {
      assert.match(err.message, /^labels\.jsonl: 6 bad lines: /)
      assert.match(err.message, /line 2: not valid JSON/)
      assert.match(err.message, /line 3: latent 9 is outside 0\.\.3/)
      assert.match(err.message, /line 4: "latent" must be an integer/)
      assert.match(err.message, /line 5: "label" must be a string/)
      assert.match(err.message, /line 6: latent 0 already labelled on line 1/)
      assert.match(err.message, /line 7: not a JSON object/)
      return true
    }
  )
})

test('many bad lines are summarised', () => {
  const text = Array.from({ length: 25 }, () => 'x').join('\n')
  assert.throws(() => parseLabels(text, 4), /25 bad lines: .*line 10: .*\(and 15 more\)$/)
})

test('an offline detection score is read with its label; a bad one is reported; a score without a label is dropped', () => {
  const text = [
    '{"latent": 0, "label": "\\"cash\\", \\"money\\"", "source": "offline-lift", "detection": 0.83}',
    '{"latent": 1, "label": null, "detection": 0.9}',
    '{"latent": 2, "label": "no score"}'
  ].join('\n')
  const l = parseLabels(text, 3)
  assert.deepEqual(l.detection, [0.83, null, null])
  assert.throws(
    () => parseLabels('{"latent": 0, "label": "x", "detection": 1.5}', 1),
    /line 1: "detection" must be a number in \[0, 1\], got 1\.5/
  )
})
