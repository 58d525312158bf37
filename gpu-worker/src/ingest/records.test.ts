/** @module Tests for reading source documents in every format, with skips, wrong fields and malformed sources. */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { parquetWriteBuffer } from 'hyparquet-writer'
import type { SourceSpec } from '@latentbase/shared/contract/dataset'
import { isSkip, JsonValueSplitter, readSourceDocuments, type SourceDocument, type SourceSkip } from './records.ts'
import { isSourceError, startTestServer, type TestServer } from './test-server.ts'

type SpecInput = Partial<SourceSpec> & { url: string }

async function readAll(spec: SpecInput, opts: { allowLocal?: boolean } = {}) {
  const docs: SourceDocument[] = []
  const skips: SourceSkip[] = []
  for await (const r of readSourceDocuments(spec, { allowLocal: opts.allowLocal ?? true })) {
    if (isSkip(r)) skips.push(r)
    else docs.push(r)
  }
  const reasons: Record<string, number> = {}
  for (const s of skips) reasons[s.skip] = (reasons[s.skip] ?? 0) + 1
  return { docs, skips, reasons }
}

let dir: string
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lb-records-'))
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function fixture(name: string, content: string | Uint8Array): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, content)
  return path
}

describe('JSONL', () => {
  const lines = [
    '{"text":"first doc","id":7,"lang":"en","meta":{"source":"web"}}',
    '',
    'not json at all',
    '[1,2,3]',
    '{"body":"no text field here"}',
    '{"text":"   "}',
    '{"text":42}',
    '{"text":"second\\ndoc","id":"b-2","lang":"fr"}\r',
    '{"text":"third doc"}'
  ].join('\n')

  test('documents, ids, metadata (nested with dots) and counted skips', async () => {
    const path = await fixture('a.jsonl', lines)
    const { docs, reasons } = await readAll({ url: path, idField: 'id', metadataFields: ['lang', 'meta.source'] })
    assert.deepEqual(
      docs.map(d => d.text),
      ['first doc', 'second\ndoc', 'third doc']
    )
    // ids are stringified; a record without the id field falls back to its row number
    assert.deepEqual(
      docs.map(d => d.id),
      ['7', 'b-2', '7']
    )
    assert.deepEqual(
      docs.map(d => d.row),
      [0, 6, 7]
    )
    assert.deepEqual(docs[0].metadata, { lang: 'en', 'meta.source': 'web' })
    assert.deepEqual(docs[1].metadata, { lang: 'fr', 'meta.source': null })
    assert.deepEqual(reasons, {
      'invalid-json': 1,
      'not-an-object': 1,
      'missing-text-field': 1,
      'empty-text': 1,
      'text-not-a-string': 1
    })
  })

  test('gzipped JSONL gives the same documents', async () => {
    const plain = await readAll({ url: await fixture('b.jsonl', lines) })
    const zipped = await readAll({ url: await fixture('b.jsonl.gz', gzipSync(lines)) })
    assert.deepEqual(zipped.docs, plain.docs)
    assert.deepEqual(zipped.reasons, plain.reasons)
  })

  test('a wrong textField fails naming the fields the records have', async () => {
    const path = await fixture(
      'wrong.jsonl',
      Array.from({ length: 50 }, (_, i) => JSON.stringify({ body: `doc ${i}`, label: i % 2 })).join('\n')
    )
    await assert.rejects(readAll({ url: path }), isSourceError('wrong-field', /"text".*"body".*"label"/))
    // a short source where every record lacks the field fails too
    const short = await fixture('wrong-short.jsonl', '{"content":"a"}\n{"content":"b"}\n')
    await assert.rejects(readAll({ url: short }), isSourceError('wrong-field', /"content"/))
  })

  test('a wrong textField names the field the text is most likely in, and only when one is', async () => {
    const review = (i: number) => ({
      id: `r${i}`,
      title: `Review ${i}`,
      review: `The blender was loud but it crushed ice well, number ${i} of many.`,
      stars: 4
    })
    const prose = await fixture(
      'prose.jsonl',
      Array.from({ length: 30 }, (_, i) => JSON.stringify(review(i))).join('\n')
    )
    await assert.rejects(
      readAll({ url: prose }),
      isSourceError('wrong-field', /the text is most likely in "review": give that as textField$/)
    )
    // The same name but for case comes first, whatever its length.
    const cased = await fixture('cased.csv', 'id,Text,notes\n1,hi,a much longer note than the text itself\n')
    await assert.rejects(
      readAll({ url: cased }),
      isSourceError('wrong-field', /the text is most likely in "Text": give that as textField$/)
    )
    // Short labels and numbers are not text: the message names the fields and guesses nothing.
    const labels = await fixture('labels.jsonl', '{"label":"pos","score":1}\n{"label":"neg","score":0}\n')
    await assert.rejects(readAll({ url: labels }), isSourceError('wrong-field', /"label", "score"$/))
  })

  test('a few records without the field before good ones are skipped, not fatal', async () => {
    const recs = [
      ...Array.from({ length: 5 }, () => ({ other: 1 })),
      { text: 'good' },
      ...Array.from({ length: 30 }, () => ({ other: 2 }))
    ]
    const { docs, reasons } = await readAll({
      url: await fixture('partial.jsonl', recs.map(r => JSON.stringify(r)).join('\n'))
    })
    assert.equal(docs.length, 1)
    assert.equal(reasons['missing-text-field'], 35)
  })

  test('chat records: messages kept, bad ones skipped, a missing messagesField fails', async () => {
    const recs = [
      {
        conv: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' }
        ],
        topic: 'greet'
      },
      {
        conv: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'multi' },
              { type: 'text', text: 'part' }
            ]
          }
        ]
      },
      { conv: [{ role: 'user' }] },
      { conv: 'not a list' },
      { conv: [] }
    ]
    const path = await fixture('chat.jsonl', recs.map(r => JSON.stringify(r)).join('\n'))
    const { docs, reasons } = await readAll({ url: path, messagesField: 'conv', metadataFields: ['topic'] })
    assert.deepEqual(docs[0].messages, recs[0].conv)
    assert.equal(docs[0].text, undefined)
    assert.deepEqual(docs[0].metadata, { topic: 'greet' })
    assert.deepEqual(docs[1].messages, [{ role: 'user', content: 'multipart' }])
    assert.deepEqual(reasons, { 'bad-messages': 3 })
    await assert.rejects(
      readAll({ url: path, messagesField: 'messages' }),
      isSourceError('wrong-field', /"messages".*messagesField.*"conv"/)
    )
  })

  test('chat messages given as the text field, or missed, fail saying to set messagesField', async () => {
    const recs = Array.from({ length: 5 }, (_, i) => ({
      id: i,
      messages: [
        { role: 'user', content: `question ${i}` },
        { role: 'assistant', content: `answer ${i}` }
      ]
    }))
    const path = await fixture('chat-as-text.jsonl', recs.map(r => JSON.stringify(r)).join('\n'))
    await assert.rejects(
      readAll({ url: path, textField: 'messages' }),
      isSourceError('wrong-field', /textField "messages" holds chat messages: give it as messagesField/)
    )
    // The default textField ("text") is missing: the fields are named, and the one holding chat messages pointed out.
    await assert.rejects(
      readAll({ url: path }),
      isSourceError(
        'wrong-field',
        /no field "text".*"id", "messages"; "messages" holds chat messages.*"messagesField": "messages"/
      )
    )
    // Not a hint for a list that is not chat.
    const tags = await fixture('tags.jsonl', '{"tags": ["a", "b"]}\n{"tags": ["c"]}\n')
    await assert.rejects(readAll({ url: tags }), isSourceError('wrong-field', /"tags"$/))
    const { docs } = await readAll({ url: path, messagesField: 'messages' })
    assert.equal(docs.length, 5)
  })

  test('ShareGPT-style turns ({ from, value }) are read as chat messages', async () => {
    const rec = {
      conversations: [
        { from: 'system', value: 'be brief' },
        { from: 'human', value: 'hi' },
        { from: 'gpt', value: 'hello' },
        { from: 'tool', value: '42' },
        { from: 'constructor', value: 'a role named like a property of every object' }
      ]
    }
    const path = await fixture('sharegpt.jsonl', JSON.stringify(rec))
    const { docs } = await readAll({ url: path, messagesField: 'conversations' })
    assert.deepEqual(docs[0].messages, [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello' },
      { role: 'tool', content: '42' },
      { role: 'constructor', content: 'a role named like a property of every object' }
    ])
  })

  test('a record longer than the cap is too-large', async () => {
    const path = await fixture('long.jsonl', JSON.stringify({ text: 'x'.repeat(5000) }))
    const it = readSourceDocuments({ url: path }, { allowLocal: true, maxRecordChars: 1000 })
    await assert.rejects(
      (async () => {
        for await (const _ of it) {
          /* drain */
        }
      })(),
      isSourceError('too-large')
    )
  })
})

describe('JSON', () => {
  test('the splitter gives each top-level element whatever the chunking', () => {
    const elements = [
      { text: 'a "quoted" ] } [ {', n: [1, [2, { x: '\\' }]] },
      'bare string',
      12.5e3,
      null,
      true,
      { text: 'é ☃ 𝄞' },
      []
    ]
    const whole = ' [\n' + elements.map(e => JSON.stringify(e, null, 1)).join(' ,\n') + '\n] \n'
    for (const size of [1, 2, 3, 7, 64, whole.length]) {
      const splitter = new JsonValueSplitter()
      const out: string[] = []
      for (let i = 0; i < whole.length; i += size) out.push(...splitter.push(whole.slice(i, i + size)))
      out.push(...splitter.end())
      assert.deepEqual(
        out.map(t => JSON.parse(t)),
        elements,
        `chunk size ${size}`
      )
    }
  })

  test('a JSON array much larger than one read chunk is streamed element by element', async () => {
    const n = 4000
    const docs = Array.from({ length: n }, (_, i) => ({
      id: `d${i}`,
      text: `document ${i} with "quotes", [brackets] and {braces} \\ ${'pad '.repeat(i % 50)}`,
      nested: { k: [i, { deep: i }] }
    }))
    const json = JSON.stringify(docs)
    assert.ok(json.length > 8 * 65536, 'the fixture spans many 64 KiB reads')
    const { docs: got, skips } = await readAll({
      url: await fixture('big.json', json),
      idField: 'id',
      metadataFields: ['nested.k']
    })
    assert.equal(skips.length, 0)
    assert.equal(got.length, n)
    assert.deepEqual(
      got.map(d => d.text),
      docs.map(d => d.text)
    )
    assert.deepEqual(got[123].metadata, { 'nested.k': [123, { deep: 123 }] })
    assert.equal(got[3999].id, 'd3999')
    const zipped = await readAll({ url: await fixture('big.json.gz', gzipSync(json)), idField: 'id' })
    assert.equal(zipped.docs.length, n)
  })

  test('non-object elements are skipped; concatenated pretty objects are read one by one', async () => {
    const { docs, reasons } = await readAll({
      url: await fixture('mixed.json', '[{"text":"a"}, 3, "s", {"text":"b"}]')
    })
    assert.deepEqual(
      docs.map(d => d.text),
      ['a', 'b']
    )
    assert.deepEqual(reasons, { 'not-an-object': 2 })
    const seq = '{\n  "text": "one"\n}\n{\n  "text": "two"\n}\n'
    const r = await readAll({ url: await fixture('seq.json', seq) })
    assert.deepEqual(
      r.docs.map(d => d.text),
      ['one', 'two']
    )
  })

  test('a truncated array is bad-format', async () => {
    await assert.rejects(
      readAll({ url: await fixture('trunc.json', '[{"text":"a"},{"text":"b"') }),
      isSourceError('bad-format', /truncated/)
    )
    await assert.rejects(
      readAll({ url: await fixture('trunc2.json', '[{"text":"a"}') }),
      isSourceError('bad-format', /truncated/)
    )
  })
})

describe('CSV', () => {
  test('header row, quoted fields with commas, quotes and newlines', async () => {
    const csv =
      'id,text,label\r\n1,"hello, world",pos\r\n2,"line one\nline two ""quoted""",neg\r\n3,,pos\r\n4,plain,neg\r\n'
    const { docs, reasons } = await readAll({
      url: await fixture('a.csv', csv),
      idField: 'id',
      metadataFields: ['label']
    })
    assert.deepEqual(
      docs.map(d => d.text),
      ['hello, world', 'line one\nline two "quoted"', 'plain']
    )
    assert.deepEqual(
      docs.map(d => d.id),
      ['1', '2', '4']
    )
    assert.deepEqual(docs[1].metadata, { label: 'neg' })
    assert.deepEqual(reasons, { 'empty-text': 1 })
  })

  test('TSV, gzip, and JSON-string messages cells', async () => {
    const rows = [
      ['conv', 'k'],
      [
        JSON.stringify([
          { role: 'user', content: 'q' },
          { role: 'assistant', content: 'a' }
        ]),
        '1'
      ],
      ['{bad json', '2']
    ]
    const tsv = rows.map(r => r.join('\t')).join('\n')
    const { docs, reasons } = await readAll({ url: await fixture('c.tsv.gz', gzipSync(tsv)), messagesField: 'conv' })
    assert.deepEqual(docs[0].messages, [
      { role: 'user', content: 'q' },
      { role: 'assistant', content: 'a' }
    ])
    assert.deepEqual(reasons, { 'bad-messages': 1 })
  })

  test('a wrong textField names the header columns; an unclosed quote is bad-format', async () => {
    await assert.rejects(
      readAll({ url: await fixture('w.csv', 'body,label\nhi,1\n') }),
      isSourceError('wrong-field', /"body", "label"/)
    )
    await assert.rejects(
      readAll({ url: await fixture('q.csv', 'text,label\n"never closed,1\n') }),
      isSourceError('bad-format', /CSV/)
    )
  })
})

describe('Parquet', () => {
  const n = 2500
  const columns = () => [
    { name: 'doc_id', data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i * 10)), type: 'INT64' as const },
    {
      name: 'text',
      data: Array.from({ length: n }, (_, i) => (i === 5 ? '' : `parquet document ${i}`)),
      type: 'STRING' as const
    },
    { name: 'score', data: Float64Array.from({ length: n }, (_, i) => i / 4), type: 'DOUBLE' as const },
    { name: 'unused', data: Array.from({ length: n }, () => 'x'.repeat(50)), type: 'STRING' as const },
    {
      name: 'chat',
      data: Array.from({ length: n }, (_, i) =>
        JSON.stringify([
          { role: 'user', content: `q${i}` },
          { role: 'assistant', content: `a${i}` }
        ])
      ),
      type: 'STRING' as const
    }
  ]
  const buffer = () => new Uint8Array(parquetWriteBuffer({ columnData: columns(), rowGroupSize: 1000 }))

  test('row group by row group, only the needed columns, INT64 ids as strings', async () => {
    const path = await fixture('a.parquet', buffer())
    const { docs, reasons } = await readAll({ url: path, idField: 'doc_id', metadataFields: ['score'] })
    assert.equal(docs.length, n - 1)
    assert.deepEqual(reasons, { 'empty-text': 1 })
    assert.equal(docs[0].id, '0')
    assert.equal(docs[2000].id, '20010')
    assert.equal(docs[2000].text, 'parquet document 2001')
    assert.equal(docs[2000].row, 2001)
    assert.deepEqual(docs[2000].metadata, { score: 2001 / 4 })
  })

  test('gzipped Parquet is spooled; JSON-string chat cells are parsed', async () => {
    const { docs } = await readAll({ url: await fixture('b.parquet.gz', gzipSync(buffer())), messagesField: 'chat' })
    assert.equal(docs.length, n)
    assert.deepEqual(docs[7].messages, [
      { role: 'user', content: 'q7' },
      { role: 'assistant', content: 'a7' }
    ])
  })

  test('a wrong textField names the columns; a damaged file is bad-format', async () => {
    const path = await fixture('c.parquet', buffer())
    await assert.rejects(
      readAll({ url: path, textField: 'body' }),
      isSourceError('wrong-field', /"body".*"doc_id", "text", "score"/)
    )
    const broken = buffer().slice()
    broken.fill(7, broken.length - 200, broken.length - 8)
    await assert.rejects(readAll({ url: await fixture('d.parquet', broken) }), isSourceError('bad-format'))
  })
})

describe('plain text', () => {
  const text = 'First paragraph,\nstill first.\n\n\nSecond paragraph.\n  \nThird.\n'
  test('line, paragraph and file units', async () => {
    const path = await fixture('t.txt', text)
    const lines = await readAll({ url: path, textUnit: 'line' })
    assert.deepEqual(
      lines.docs.map(d => d.text),
      ['First paragraph,', 'still first.', 'Second paragraph.', 'Third.']
    )
    const paras = await readAll({ url: path, textUnit: 'paragraph' })
    assert.deepEqual(
      paras.docs.map(d => d.text),
      ['First paragraph,\nstill first.', 'Second paragraph.', 'Third.']
    )
    assert.deepEqual(
      paras.docs.map(d => d.id),
      ['0', '1', '2']
    )
    const file = await readAll({ url: path, textUnit: 'file' })
    assert.deepEqual(
      file.docs.map(d => d.text),
      [text]
    )
  })

  test('binary content is bad-format', async () => {
    await assert.rejects(
      readAll({ url: await fixture('x.bin', new Uint8Array([1, 2, 0, 0, 5, 6])) }),
      isSourceError('bad-format')
    )
  })
})

describe('over http', () => {
  let server: TestServer
  before(async () => {
    const jsonl = Array.from({ length: 100 }, (_, i) => JSON.stringify({ text: `web doc ${i}` })).join('\n')
    server = await startTestServer({
      '/d.jsonl.gz': { body: gzipSync(jsonl) },
      '/d.parquet': {
        body: new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'text', data: ['p1', 'p2'], type: 'STRING' }] }))
      }
    })
  })
  after(async () => {
    await server.close()
  })

  test('gzip JSONL and Parquet by URL; a 404 is http-status', async () => {
    const a = await readAll({ url: `${server.url}/d.jsonl.gz` }, { allowLocal: false })
    assert.equal(a.docs.length, 100)
    assert.equal(a.docs[99].text, 'web doc 99')
    const b = await readAll({ url: `${server.url}/d.parquet` }, { allowLocal: false })
    assert.deepEqual(
      b.docs.map(d => d.text),
      ['p1', 'p2']
    )
    await assert.rejects(
      readAll({ url: `${server.url}/none.jsonl` }, { allowLocal: false }),
      isSourceError('http-status', /404/)
    )
  })

  test('a local path is refused outside local mode', async () => {
    await assert.rejects(
      readAll({ url: join(dir, 'whatever.jsonl') }, { allowLocal: false }),
      isSourceError('local-not-allowed')
    )
  })
})
