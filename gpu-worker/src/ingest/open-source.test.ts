/** @module Tests for opening sources: local-mode rules, HTTP errors and timeouts, gzip and format detection. */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { gzipSync } from 'node:zlib'
import { formatFromName, openSource, sniffFormat, SourceError, type OpenedSource } from './open-source.ts'
import { closedPort, isSourceError, startTestServer, type TestServer } from './test-server.ts'

const enc = new TextEncoder()

async function readAll(s: OpenedSource): Promise<string> {
  assert.equal(s.kind, 'stream')
  if (s.kind !== 'stream') return ''
  const parts: Buffer[] = []
  for await (const c of s.chunks) parts.push(Buffer.from(c))
  return Buffer.concat(parts).toString('utf8')
}

/** The error may come when the source is opened (it peeks at the first bytes) or while it is read. */
async function failsOpeningOrReading(opening: Promise<OpenedSource>, check: (err: unknown) => boolean): Promise<void> {
  let source: OpenedSource
  try {
    source = await opening
  } catch (err) {
    check(err)
    return
  }
  await assert.rejects(readAll(source), check)
}

describe('formatFromName / sniffFormat', () => {
  test('extensions, gzip suffix and query strings', () => {
    assert.deepEqual(formatFromName('https://x.org/a/data.jsonl.gz?sig=abc'), { format: 'jsonl', gzip: true })
    assert.deepEqual(formatFromName('https://x.org/a/data.ndjson'), { format: 'jsonl', gzip: false })
    assert.deepEqual(formatFromName('/tmp/x.PARQUET'), { format: 'parquet', gzip: false })
    assert.deepEqual(formatFromName('/tmp/notes.md'), { format: 'text', gzip: false })
    assert.deepEqual(formatFromName('https://x.org/download'), { format: undefined, gzip: false })
  })
  test('content sniffing', () => {
    assert.equal(sniffFormat(enc.encode('PAR1....')), 'parquet')
    assert.equal(sniffFormat(enc.encode('\uFEFF  [ {"text": 1}]')), 'json')
    assert.equal(sniffFormat(enc.encode('{"text": "a"}\n{"text": "b"}')), 'jsonl')
    assert.equal(sniffFormat(enc.encode('{\n  "text": "a"\n}\n')), 'json')
    assert.equal(sniffFormat(enc.encode('id,body\n1,hello'), 'body'), 'csv')
    assert.equal(sniffFormat(enc.encode('id,body\n1,hello'), 'text'), 'text')
    assert.equal(sniffFormat(enc.encode('Call me Ishmael. Some years ago')), 'text')
    assert.throws(() => sniffFormat(new Uint8Array([0x50, 0x4b, 0x03, 0x04, 1, 2])), isSourceError('bad-format', /zip/))
    assert.throws(() => sniffFormat(new Uint8Array([65, 0, 66])), isSourceError('bad-format', /binary/))
  })
})

describe('local sources', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-fetch-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  test('file:// URLs and absolute paths need local mode', async () => {
    const path = join(dir, 'a.jsonl')
    await writeFile(path, '{"text":"hi"}\n')
    await assert.rejects(
      openSource({ url: path }, { allowLocal: false }),
      isSourceError('local-not-allowed', /local mode/)
    )
    await assert.rejects(
      openSource({ url: pathToFileURL(path).href }, { allowLocal: false }),
      isSourceError('local-not-allowed')
    )
    const s = await openSource({ url: pathToFileURL(path).href }, { allowLocal: true })
    assert.equal(s.format, 'jsonl')
    assert.equal(await readAll(s), '{"text":"hi"}\n')
  })

  test('a missing file, a relative path and an unknown scheme are unreachable', async () => {
    await assert.rejects(
      openSource({ url: join(dir, 'nope.jsonl') }, { allowLocal: true }),
      isSourceError('unreachable', /no such file/)
    )
    await assert.rejects(openSource({ url: 'data/x.jsonl' }, { allowLocal: true }), isSourceError('unreachable'))
    await assert.rejects(
      openSource({ url: 's3://bucket/x.jsonl' }, { allowLocal: true }),
      isSourceError('unreachable', /scheme/)
    )
  })

  test('gzip is found by its magic bytes, with or without .gz', async () => {
    const body = '{"text":"zipped"}\n'.repeat(1000)
    await writeFile(join(dir, 'z.jsonl.gz'), gzipSync(body))
    await writeFile(join(dir, 'hidden.jsonl'), gzipSync(body))
    const a = await openSource({ url: join(dir, 'z.jsonl.gz') }, { allowLocal: true })
    assert.equal(a.gzip, true)
    assert.equal(await readAll(a), body)
    const b = await openSource({ url: join(dir, 'hidden.jsonl') }, { allowLocal: true })
    assert.equal(b.gzip, true)
    assert.equal(await readAll(b), body)
    // Named .gz but not compressed (e.g. already decoded by the HTTP layer): read as it is.
    await writeFile(join(dir, 'plain.jsonl.gz'), body)
    const c = await openSource({ url: join(dir, 'plain.jsonl.gz') }, { allowLocal: true })
    assert.equal(c.gzip, false)
    assert.equal(await readAll(c), body)
  })

  test('corrupt gzip is bad-format', async () => {
    const lines = Array.from({ length: 5000 }, (_, i) =>
      JSON.stringify({ text: `line ${i} ${(i * 2654435761) % 1000003}` })
    ).join('\n')
    const gz = gzipSync(lines)
    gz.fill(0x41, 20, 2000)
    await writeFile(join(dir, 'bad.jsonl.gz'), gz)
    await failsOpeningOrReading(
      openSource({ url: join(dir, 'bad.jsonl.gz') }, { allowLocal: true }),
      isSourceError('bad-format', /gzip/)
    )
  })

  test('a declared format that the content contradicts is bad-format', async () => {
    await writeFile(join(dir, 'j.json'), '[{"text":"a"}]')
    await assert.rejects(
      openSource({ url: join(dir, 'j.json'), format: 'parquet' }, { allowLocal: true }),
      isSourceError('bad-format', /PAR1/)
    )
    await writeFile(join(dir, 'p.bin'), Buffer.concat([Buffer.from('PAR1'), Buffer.alloc(20)]))
    await assert.rejects(
      openSource({ url: join(dir, 'p.bin'), format: 'jsonl' }, { allowLocal: true }),
      isSourceError('bad-format', /Parquet/)
    )
  })

  test('maxBytes caps the decompressed size', async () => {
    await writeFile(join(dir, 'big.txt.gz'), gzipSync('x'.repeat(200_000)))
    await failsOpeningOrReading(
      openSource({ url: join(dir, 'big.txt.gz') }, { allowLocal: true, maxBytes: 50_000 }),
      isSourceError('too-large')
    )
  })
})

describe('http sources', () => {
  let server: TestServer
  const body = '{"text":"over http"}\n'.repeat(300)
  before(async () => {
    server = await startTestServer({
      '/data.jsonl': { body },
      '/data.jsonl.gz': { body: gzipSync(body) },
      '/download': { body: gzipSync('[{"text":"a"}]'), headers: { 'content-type': 'application/octet-stream' } },
      '/gone': { status: 410, body: 'gone' }
    })
  })
  after(async () => {
    await server.close()
  })

  test('200 streams the body; gzip over http is undone; format sniffed when the URL has no extension', async () => {
    assert.equal(await readAll(await openSource({ url: `${server.url}/data.jsonl` }, { allowLocal: false })), body)
    const gz = await openSource({ url: `${server.url}/data.jsonl.gz?token=secret` }, { allowLocal: false })
    assert.equal(gz.gzip, true)
    assert.equal(await readAll(gz), body)
    const sniffed = await openSource({ url: `${server.url}/download` }, { allowLocal: false })
    assert.equal(sniffed.format, 'json')
    assert.equal(await readAll(sniffed), '[{"text":"a"}]')
  })

  test('404 and 410 are http-status errors carrying the status, without the query string', async () => {
    await assert.rejects(
      openSource({ url: `${server.url}/missing.jsonl?sig=SECRET` }, { allowLocal: false }),
      (err: unknown) => {
        isSourceError('http-status', /404/)(err)
        assert.equal((err as SourceError).status, 404)
        assert.doesNotMatch((err as Error).message, /SECRET/)
        return true
      }
    )
    await assert.rejects(
      openSource({ url: `${server.url}/gone` }, { allowLocal: false }),
      isSourceError('http-status', /410/)
    )
  })

  test('connection refused is unreachable', async () => {
    const port = await closedPort()
    await assert.rejects(
      openSource({ url: `http://127.0.0.1:${port}/x.jsonl` }, { allowLocal: false }),
      isSourceError('unreachable', /connection refused/)
    )
  })

  test('a server that never answers, or stops sending, times out as unreachable', async () => {
    await assert.rejects(
      openSource({ url: `${server.url}/hang` }, { allowLocal: false, connectTimeoutMs: 300 }),
      isSourceError('unreachable', /timed out/)
    )
    await failsOpeningOrReading(
      openSource({ url: `${server.url}/stall`, format: 'jsonl' }, { allowLocal: false, idleTimeoutMs: 300 }),
      isSourceError('unreachable', /no data/)
    )
  })

  test('an unknown host is unreachable', async () => {
    await assert.rejects(
      openSource({ url: 'http://no-such-host.invalid/x.jsonl' }, { allowLocal: false, connectTimeoutMs: 5000 }),
      isSourceError('unreachable', /DNS|timed out/)
    )
  })

  test('cloud mode: the URL guard refuses loopback sources, and with an allowed address reads gzip through it and caps a bomb', async () => {
    await assert.rejects(
      openSource({ url: `${server.url}/data.jsonl` }, { allowLocal: false, guard: {} }),
      isSourceError('refused-url', /127\.0\.0\.1 \(loopback\)/)
    )
    const port = new URL(server.url).port
    await assert.rejects(
      openSource({ url: `http://169.254.169.254:${port}/latest/meta-data` }, { allowLocal: false, guard: {} }),
      isSourceError('refused-url', /metadata/)
    )
    const guard = { allowAddress: (ip: string) => ip === '127.0.0.1' }
    const gz = await openSource({ url: `${server.url}/data.jsonl.gz` }, { allowLocal: false, guard })
    assert.equal(await readAll(gz), body)
    // ~6 KB of gzip that inflates past the cap: stopped on the decompressed bytes.
    await failsOpeningOrReading(
      openSource({ url: `${server.url}/data.jsonl.gz` }, { allowLocal: false, guard, maxBytes: 1000 }),
      isSourceError('too-large')
    )
  })

  test('a caller abort is passed through, not turned into a SourceError', async () => {
    const ac = new AbortController()
    const p = openSource({ url: `${server.url}/hang` }, { allowLocal: false, signal: ac.signal })
    setTimeout(() => ac.abort(new Error('job cancelled')), 50)
    await assert.rejects(p, (err: unknown) => {
      assert.ok(!(err instanceof SourceError))
      assert.match((err as Error).message, /cancelled/)
      return true
    })
  })
})
