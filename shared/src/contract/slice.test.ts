/** @module Tests of the slice grammar: JSON and text forms parse to one AST, canonical text round-trips, errors name the fault. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  checkSlice,
  parseSliceParam,
  parseSliceText,
  sliceNeeds,
  sliceToText,
  SliceError,
  SliceParam,
  sliceQueryValue,
  type Slice
} from './slice.ts'

test('the text form parses into the JSON form', () => {
  const cases: Array<[string, Slice]> = [
    ['metadata.model = "x"', { field: 'metadata.model', eq: 'x' }],
    ["metadata.model != 'x'", { field: 'metadata.model', ne: 'x' }],
    ['metadata.model in ("x", "y", 3, null)', { field: 'metadata.model', in: ['x', 'y', 3, null] }],
    ['metadata.score >= 0.5', { field: 'metadata.score', gte: 0.5 }],
    ['metadata.flag = true', { field: 'metadata.flag', eq: true }],
    ['metadata.topic exists', { field: 'metadata.topic', exists: true }],
    ['tokens < 500', { tokens: { lt: 500 } }],
    ['latent 123', { latent: 123 }],
    ['latent 123 > 0.5', { latent: 123, gt: 0.5 }],
    ['not latent 77', { not: { latent: 77 } }],
    [
      'metadata.a = 1 and metadata.b = 2 or latent 3',
      {
        or: [
          {
            and: [
              { field: 'metadata.a', eq: 1 },
              { field: 'metadata.b', eq: 2 }
            ]
          },
          { latent: 3 }
        ]
      }
    ],
    [
      'metadata.a = 1 AND (metadata.b = 2 OR NOT latent 3)',
      { and: [{ field: 'metadata.a', eq: 1 }, { or: [{ field: 'metadata.b', eq: 2 }, { not: { latent: 3 } }] }] }
    ],
    ['tokens >= 10 and tokens < 500', { and: [{ tokens: { gte: 10 } }, { tokens: { lt: 500 } }] }]
  ]
  for (const [text, ast] of cases) {
    assert.deepEqual(parseSliceText(text), ast, text)
    assert.deepEqual(parseSliceParam(JSON.stringify(ast)), ast, `${text} as JSON`)
    assert.deepEqual(parseSliceText(sliceToText(ast)), ast, `${text} round-trips through ${sliceToText(ast)}`)
  }
})

test('the JSON form: ranges, canonical order, and the brief example', () => {
  const example = {
    and: [
      { field: 'metadata.model', in: ['x', 'y'] },
      { tokens: { lt: 500, gte: 10 } },
      { latent: 123, gt: 0.5 },
      { not: { latent: 77 } }
    ]
  }
  const s = checkSlice(example)
  assert.equal(
    sliceToText(s),
    'metadata.model in ("x", "y") and (tokens >= 10 and tokens < 500) and latent 123 > 0.5 and not latent 77'
  )
  assert.deepEqual(parseSliceText(sliceToText(s)), {
    and: [
      { field: 'metadata.model', in: ['x', 'y'] },
      { and: [{ tokens: { gte: 10 } }, { tokens: { lt: 500 } }] },
      { latent: 123, gt: 0.5 },
      { not: { latent: 77 } }
    ]
  })
  assert.deepEqual(sliceNeeds(s), { metadata: true, tokens: true, latents: [77, 123] })
  assert.deepEqual(checkSlice({ latent: 4, lte: 2, gt: 1 }), { latent: 4, gt: 1, lte: 2 })
  assert.equal(parseSliceParam('  '), undefined)
  assert.equal(sliceQueryValue({ latent: 1 }), '{"latent":1}')
  assert.throws(() => sliceQueryValue({ latent: -1 } as Slice), SliceError)
})

test('errors name the unknown field, the bad operator and where it is', () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ field: 'model', eq: 'x' }, /unknown field "model"/],
    [{ field: 'metadata.model', like: 'x' }, /unknown operator "like" in a condition on metadata\.model/],
    [{ field: 'metadata.model' }, /has no operator/],
    [{ field: 'metadata.model', eq: 'x', gt: 1 }, /cannot be combined/],
    [{ field: 'metadata.model', in: [] }, /non-empty list/],
    [{ tokens: { gte: 1.5 } }, /takes an integer/],
    [{ tokens: { between: 1 } }, /unknown operator "between" for tokens/],
    [{ latent: 'a' }, /latent id is a non-negative integer/],
    [{ latent: 3, gt: 1, gte: 2 }, /one of "gt" and "gte"/],
    [{ and: [] }, /non-empty list/],
    [{ and: [{ latent: 1 }, { colour: 'red' }] }, /and\.1: unknown field "colour"/],
    [{ and: [{ latent: 1 }], extra: 1 }, /unknown operator "extra"/],
    ['latent 1', /expected an object/]
  ]
  for (const [v, message] of bad)
    assert.throws(
      () => checkSlice(v),
      (e: unknown) => e instanceof SliceError && message.test(e.message),
      JSON.stringify(v)
    )
  const badText: Array<[string, RegExp]> = [
    ['model = "x"', /unknown field "model".*character 1/],
    ['metadata.model ~ "x"', /bad operator "~".*character 16/],
    ['metadata.model like "x"', /bad operator "like" after metadata\.model/],
    ['tokens = 5', /bad operator "=" after tokens: use >, >=, <, <=/],
    ['latent 1.5', /latent takes an integer/],
    ['metadata.model = "x" and', /expected a condition.*end of input/],
    ['(latent 1', /expected "\)"/],
    ['metadata.model = "x', /unterminated string/],
    ['latent 1 latent 2', /expected "and", "or" or the end/],
    ['metadata.model in "x"', /takes a list in parentheses/],
    ['', /empty slice/]
  ]
  for (const [text, message] of badText)
    assert.throws(
      () => parseSliceText(text),
      (e: unknown) => e instanceof SliceError && message.test(e.message),
      text
    )
  const parsed = SliceParam.safeParse('metadata.x ~ 1')
  assert.ok(!parsed.success && /bad operator/.test(parsed.error.issues[0].message))
})
