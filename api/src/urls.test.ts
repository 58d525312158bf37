/** @module Which source URLs each mode accepts, and the reasons it gives for the others. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ApiError } from './problem.ts'
import { checkSourceSpec, checkSourceUrl } from './urls.ts'

const refused = (url: string, mode: 'local' | 'cloud', message: RegExp) =>
  assert.throws(
    () => checkSourceUrl(url, mode),
    (err: unknown) => err instanceof ApiError && err.status === 422 && message.test(err.message)
  )

test('Hub datasets are accepted in both modes; other hf:// URLs and schemes are refused with the forms that work', () => {
  for (const mode of ['local', 'cloud'] as const) {
    for (const url of [
      'https://example.com/a.jsonl',
      'hf://datasets/stanfordnlp/imdb',
      'hf://datasets/o/n@v1.0/data/train.parquet',
      'hf://datasets/o/n@refs%2Fconvert%2Fparquet/default/train/0000.parquet',
      'upload://up_aaaaaaaaaaaaaaaaaaaa'
    ])
      checkSourceUrl(url, mode)
    refused('hf://models/gpt2', mode, /not a Hub dataset URL: hf:\/\/datasets\/owner\/name/)
    refused('hf://datasets/imdb', mode, /not a Hub dataset URL/)
    refused('s3://bucket/key.jsonl', mode, /must be an http\(s\):\/\/ URL, an hf:\/\/datasets\/ URL/)
  }
  checkSourceUrl('/data/a.jsonl', 'local')
  refused('/data/a.jsonl', 'cloud', /http\(s\):\/\/ URL, an hf:\/\/datasets\/ URL or an upload:\/\/ URL/)
})

test('a sample seed needs a sample size, and a sample is bounded', () => {
  checkSourceSpec({})
  checkSourceSpec({ maxDocuments: 5 })
  checkSourceSpec({ maxDocuments: 5, sampleSeed: 0 })
  const refusedSpec = (spec: { maxDocuments?: number; sampleSeed?: number }, message: RegExp) =>
    assert.throws(
      () => checkSourceSpec(spec),
      (err: unknown) =>
        err instanceof ApiError && err.status === 422 && err.code === 'invalid-source' && message.test(err.message)
    )
  refusedSpec({ sampleSeed: 1 }, /give source.maxDocuments too/)
  refusedSpec({ sampleSeed: 1, maxDocuments: 5_000_000 }, /at most 1,000,000/)
})
