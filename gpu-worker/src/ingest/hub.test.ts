/** @module Hub sources: URLs read without requests, and whole datasets read from a loopback Hub and dataset viewer. */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parquetWriteBuffer } from 'hyparquet-writer'
import type { SourceSpec } from '@latentbase/shared/contract/dataset'
import { hubHeaders, sourceTarget } from './hub.ts'
import { isSkip, readSourceDocuments, type SourceDocument } from './records.ts'
import { isSourceError } from './test-server.ts'

test('source URLs: hf:// files and datasets, Hub pages, viewer pages, file pages; plain URLs untouched', () => {
  const hub = { endpoint: 'https://huggingface.co' }
  assert.deepEqual(sourceTarget('hf://datasets/stanfordnlp/imdb', hub), {
    kind: 'hub-dataset',
    dataset: 'stanfordnlp/imdb'
  })
  assert.deepEqual(sourceTarget('hf://datasets/o/n/data/train-00000.parquet', hub), {
    kind: 'file',
    url: 'https://huggingface.co/datasets/o/n/resolve/main/data/train-00000.parquet'
  })
  // A revision with a slash (the Hub's conversion branch) is one path segment.
  assert.deepEqual(sourceTarget('hf://datasets/o/n@refs%2Fconvert%2Fparquet/default/train/0000.parquet', hub), {
    kind: 'file',
    url: 'https://huggingface.co/datasets/o/n/resolve/refs%2Fconvert%2Fparquet/default/train/0000.parquet'
  })
  assert.deepEqual(sourceTarget('https://huggingface.co/datasets/o/n', hub), { kind: 'hub-dataset', dataset: 'o/n' })
  assert.deepEqual(sourceTarget('https://huggingface.co/datasets/o/n/tree/main', hub), {
    kind: 'hub-dataset',
    dataset: 'o/n'
  })
  assert.deepEqual(sourceTarget('https://huggingface.co/datasets/o/n/viewer/en/test?row=3', hub), {
    kind: 'hub-dataset',
    dataset: 'o/n',
    config: 'en',
    split: 'test'
  })
  assert.deepEqual(sourceTarget('https://huggingface.co/datasets/o/n/blob/main/data/a.jsonl', hub), {
    kind: 'file',
    url: 'https://huggingface.co/datasets/o/n/resolve/main/data/a.jsonl'
  })
  const resolve = 'https://huggingface.co/datasets/o/n/resolve/main/a.csv'
  assert.deepEqual(sourceTarget(resolve, hub), { kind: 'file', url: resolve })
  assert.deepEqual(sourceTarget('https://github.com/o/r/blob/main/data/a.jsonl'), {
    kind: 'file',
    url: 'https://raw.githubusercontent.com/o/r/main/data/a.jsonl'
  })
  for (const plain of ['https://example.com/datasets/o/n', '/data/a.jsonl', 'upload://up_x', 'file:///a.csv'])
    assert.deepEqual(sourceTarget(plain, hub), { kind: 'file', url: plain })
  // Another Hub (HF_ENDPOINT): its pages are the Hub's, huggingface.co's are not.
  assert.deepEqual(sourceTarget('http://127.0.0.1:9/datasets/o/n', { endpoint: 'http://127.0.0.1:9/' }), {
    kind: 'hub-dataset',
    dataset: 'o/n'
  })
})

test('the token goes to the Hub and its viewer only', () => {
  const hub = { token: 'hf_secret' }
  assert.deepEqual(hubHeaders('https://huggingface.co/datasets/o/n/resolve/main/a', hub), {
    authorization: 'Bearer hf_secret'
  })
  assert.deepEqual(hubHeaders('https://datasets-server.huggingface.co/parquet?dataset=o/n', hub), {
    authorization: 'Bearer hf_secret'
  })
  assert.deepEqual(hubHeaders('https://example.com/a.jsonl', hub), {})
  assert.deepEqual(hubHeaders('https://huggingface.co/a', {}), {})
})

describe('a loopback Hub', () => {
  let base = ''
  let close: () => Promise<void> = async () => {}
  const seen: Array<{ path: string; headers: IncomingHttpHeaders }> = []
  const parquet = (texts: string[], label: string) =>
    new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          { name: 'text', data: texts, type: 'STRING' },
          { name: 'label', data: texts.map(() => label), type: 'STRING' }
        ]
      })
    )
  const conversion = (dataset: string) => `/datasets/${dataset}/resolve/refs%2Fconvert%2Fparquet`
  const listings: Record<string, unknown> = {}
  const files: Record<string, { body: Uint8Array | string; type: string }> = {}

  before(async () => {
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x')
      seen.push({ path: url.pathname + url.search, headers: req.headers })
      if (url.pathname === '/parquet') {
        const listing = listings[url.searchParams.get('dataset') ?? '']
        res.writeHead(listing ? 200 : 404, { 'content-type': 'application/json' })
        res.end(JSON.stringify(listing ?? { error: 'The dataset does not exist.' }))
        return
      }
      const file = files[url.pathname]
      res.writeHead(file ? 200 : 404, { 'content-type': file?.type ?? 'text/plain' })
      res.end(file?.body ?? 'not found')
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    close = () => new Promise(resolve => server.close(() => resolve()))
    const entry = (dataset: string, config: string, split: string, file: string) => ({
      dataset,
      config,
      split,
      url: `${base}${conversion(dataset)}/${config}/${split}/${file}`,
      filename: file,
      size: 1
    })
    listings['o/n'] = {
      parquet_files: [
        entry('o/n', 'default', 'test', '0000.parquet'),
        entry('o/n', 'default', 'train', '0000.parquet'),
        entry('o/n', 'default', 'train', '0001.parquet')
      ],
      pending: [],
      failed: [],
      partial: false
    }
    listings['o/multi'] = {
      parquet_files: [entry('o/multi', 'en', 'train', '0000.parquet'), entry('o/multi', 'fr', 'train', '0000.parquet')]
    }
    listings['o/pending'] = { parquet_files: [], pending: [{ config: 'default' }] }
    const pq = 'application/octet-stream'
    files[`${conversion('o/n')}/default/train/0000.parquet`] = { body: parquet(['one', 'two', ''], 'train'), type: pq }
    files[`${conversion('o/n')}/default/train/0001.parquet`] = { body: parquet(['three'], 'train'), type: pq }
    files[`${conversion('o/n')}/default/test/0000.parquet`] = { body: parquet(['held out'], 'test'), type: pq }
    files['/datasets/o/n/resolve/main/data/chat.jsonl'] = {
      body: '{"text": "from a file"}\n',
      type: 'application/x-ndjson'
    }
    files['/about'] = { body: '  <!DOCTYPE html>\n<html><body>a page</body></html>', type: 'text/html' }
    files['/blob/data.jsonl'] = files['/about']
    files['/mail.txt'] = { body: '<html><body>an e-mail in HTML</body></html>\n', type: 'text/plain' }
  })
  after(() => close())

  const hub = () => ({ endpoint: base, datasetsServer: base, token: 'hf_test' })
  async function read(spec: Partial<SourceSpec> & { url: string }, log?: (line: string) => void) {
    const docs: SourceDocument[] = []
    const skips: number[] = []
    for await (const r of readSourceDocuments(spec, { allowLocal: false, hub: hub(), log })) {
      if (isSkip(r)) skips.push(r.row)
      else docs.push(r)
    }
    return { docs, skips }
  }

  test('a whole dataset: the train split of the default config, its files in order, rows numbered on', async () => {
    seen.length = 0
    const lines: string[] = []
    const { docs, skips } = await read({ url: 'hf://datasets/o/n', metadataFields: ['label'] }, l => lines.push(l))
    assert.deepEqual(
      docs.map(d => [d.text, d.row, d.metadata.label]),
      [
        ['one', 0, 'train'],
        ['two', 1, 'train'],
        ['three', 3, 'train']
      ]
    )
    assert.deepEqual(skips, [2], 'the empty text, at its row in the whole source')
    assert.match(lines.join('\n'), /hf:\/\/datasets\/o\/n \(config "default", split "train"\): 2 Parquet file/)
    assert.ok(seen.length >= 3)
    for (const r of seen) assert.equal(r.headers.authorization, 'Bearer hf_test', r.path)
  })

  test('the dataset page and a viewer page name the same files; a viewer page picks its split', async () => {
    assert.deepEqual(
      (await read({ url: `${base}/datasets/o/n` })).docs.map(d => d.text),
      ['one', 'two', 'three']
    )
    assert.deepEqual(
      (await read({ url: `${base}/datasets/o/n/viewer/default/test` })).docs.map(d => d.text),
      ['held out']
    )
  })

  test('one file of a dataset, by hf:// path or by its page', async () => {
    assert.deepEqual(
      (await read({ url: 'hf://datasets/o/n/data/chat.jsonl' })).docs.map(d => d.text),
      ['from a file']
    )
    assert.deepEqual(
      (await read({ url: `${base}/datasets/o/n/blob/main/data/chat.jsonl` })).docs.map(d => d.text),
      ['from a file']
    )
  })

  test('what cannot be read says why and what to give instead', async () => {
    await assert.rejects(
      read({ url: 'hf://datasets/o/multi' }),
      isSourceError('wrong-field', /several configs \("en", "fr"\).*\/datasets\/o\/multi\/viewer\/en\/train/)
    )
    await assert.rejects(
      read({ url: `${base}/datasets/o/n/viewer/default/validation` }),
      isSourceError('wrong-field', /no split "validation"; its splits: "test", "train"/)
    )
    await assert.rejects(
      read({ url: 'hf://datasets/o/missing' }),
      isSourceError('http-status', /no dataset "o\/missing"/)
    )
    await assert.rejects(
      read({ url: 'hf://datasets/o/pending' }),
      isSourceError('unreachable', /no Parquet conversion/)
    )
    await assert.rejects(
      read({ url: 'hf://datasets/o/n', format: 'jsonl' }),
      isSourceError('bad-format', /leave format out/)
    )
    // Any other web page is refused rather than read as text, unless the format says text.
    await assert.rejects(
      read({ url: `${base}/about` }),
      isSourceError('bad-format', /web page \(HTML\), not a data file/)
    )
    assert.equal((await read({ url: `${base}/about`, format: 'text', textUnit: 'file' })).docs.length, 1)
    // A GitHub-style page whose URL ends in .jsonl is refused too; a .txt of HTML is the user's text.
    await assert.rejects(read({ url: `${base}/blob/data.jsonl` }), isSourceError('bad-format', /web page \(HTML\)/))
    assert.equal((await read({ url: `${base}/mail.txt`, textUnit: 'file' })).docs.length, 1)
  })
})
