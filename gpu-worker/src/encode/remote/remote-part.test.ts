/** @module Tests for fetching encoder parts against a fake hub on loopback, a fake CDN, and fauxqs S3. */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { startTestS3, type TestS3 } from '@latentbase/shared/store/s3-testkit'
import { closedPort } from '../../ingest/test-server.ts'
import {
  fetchFolder,
  fetchPart,
  isRemotePart,
  parsePartUrl,
  RemotePartError,
  type FetchPartOptions
} from './remote-part.ts'
import { bytesOf, fakeCommit, gitBlobId, sha256Of, startFakeHub, type FakeHub } from './hub-testkit.ts'

const A = fakeCommit('a')
const B = fakeCommit('b')
const cfgA = new TextEncoder().encode(JSON.stringify({ d_in: 768, d_sae: 24576, version: 'a' }))
const cfgB = new TextEncoder().encode(JSON.stringify({ d_in: 768, d_sae: 24576, version: 'b' }))
const weightsA = bytesOf(300_000, 7)
const weightsB = bytesOf(310_000, 8)
const gatedWeights = bytesOf(200_000, 9)
const TOKEN = 'hf_test_secret_token'

let hub: FakeHub
let s3: TestS3
const dirs: string[] = []

before(async () => {
  hub = await startFakeHub({
    'acme/sae-res': {
      commits: {
        [A]: {
          'config.json': { content: cfgA },
          'layer_8/cfg.json': { content: cfgA },
          'layer_8/sae_weights.safetensors': { content: weightsA, lfs: true }
        },
        [B]: {
          'config.json': { content: cfgB },
          'layer_8/cfg.json': { content: cfgB },
          'layer_8/sae_weights.safetensors': { content: weightsB, lfs: true }
        }
      },
      refs: { main: A, v1: A }
    },
    'acme/gated': {
      commits: { [A]: { 'w.bin': { content: gatedWeights, lfs: true } } },
      refs: { main: A },
      token: TOKEN
    },
    'acme/corrupt': {
      commits: {
        [A]: {
          'w.bin': { content: bytesOf(50_000, 3), lfs: true, claimedSha256: sha256Of('something else') },
          'cfg.json': { content: cfgA, claimedEtag: gitBlobId(cfgB) }
        }
      },
      refs: { main: A }
    }
  })
  s3 = await startTestS3('parts')
})
after(async () => {
  await hub?.close()
  await s3?.stop()
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

async function cacheDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'lb-fetch-'))
  dirs.push(d)
  return d
}

function options(
  cache: string,
  extra: Partial<FetchPartOptions> = {},
  env: Record<string, string> = {}
): FetchPartOptions & { lines: string[] } {
  const lines: string[] = []
  return { cacheDir: cache, env: { HF_ENDPOINT: hub.endpoint, ...env }, log: l => lines.push(l), lines, ...extra }
}

/** The requests made during `fn`. */
async function traced<T>(fn: () => Promise<T>): Promise<{ value: T; requests: FakeHub['requests'] }> {
  const from = hub.requests.length
  const value = await fn()
  return { value, requests: hub.requests.slice(from) }
}

async function sameBytes(path: string, expected: Uint8Array): Promise<void> {
  const got = await readFile(path)
  assert.equal(got.byteLength, expected.byteLength)
  assert.ok(Buffer.from(expected).equals(got), `${path} holds other bytes`)
}

/**
 * Settles once a `.partial` file under `cache` holds `bytes` bytes: the client has written every byte sent before a
 * cut, so the hub may drop the connection without the client losing chunks it had not read yet. The deadline only
 * guards against a hang (the drop then happens anyway and the test's assertions say what went wrong).
 */
async function partialHolds(cache: string, bytes: number, deadlineMs = 60_000): Promise<void> {
  const until = Date.now() + deadlineMs
  while (Date.now() < until) {
    const names = (await readdir(cache, { recursive: true }).catch(() => [] as string[])).filter(n =>
      n.endsWith('.partial')
    )
    for (const n of names) if (((await stat(join(cache, n)).catch(() => undefined))?.size ?? 0) >= bytes) return
    await new Promise(r => setTimeout(r, 5))
  }
}

test('parsePartUrl: hf, https and s3 refs, defaults and percent-encoded revisions', () => {
  assert.deepEqual(parsePartUrl('hf://jbloom/GPT2-Small-SAEs-Reformatted/blocks.8.hook_resid_pre/cfg.json'), {
    kind: 'hf',
    repo: 'jbloom/GPT2-Small-SAEs-Reformatted',
    revision: 'main',
    path: 'blocks.8.hook_resid_pre/cfg.json'
  })
  assert.deepEqual(parsePartUrl(`hf://google/gemma-scope-2b-pt-res@${A}/layer_20/params.npz`), {
    kind: 'hf',
    repo: 'google/gemma-scope-2b-pt-res',
    revision: A,
    path: 'layer_20/params.npz'
  })
  assert.equal((parsePartUrl('hf://o/r@refs%2Fpr%2F3/x.bin') as { revision: string }).revision, 'refs/pr/3')
  assert.deepEqual(parsePartUrl('hf://datasets/o/r@v2/a/b.jsonl'), {
    kind: 'hf',
    repo: 'o/r',
    revision: 'v2',
    path: 'a/b.jsonl',
    repoType: 'dataset'
  })
  const h = '0123456789abcdef'.repeat(4)
  assert.deepEqual(parsePartUrl(`https://example.com/x/model.onnx?dl=1#sha256=${h.toUpperCase()}`), {
    kind: 'https',
    url: 'https://example.com/x/model.onnx?dl=1',
    sha256: h
  })
  assert.deepEqual(parsePartUrl('s3://my-bucket/saes/layer 8/sae.safetensors'), {
    kind: 's3',
    bucket: 'my-bucket',
    key: 'saes/layer 8/sae.safetensors'
  })
  assert.ok(isRemotePart('hf://a/b/c') && isRemotePart('S3://b/k') && isRemotePart('https://x/y'))
  assert.ok(!isRemotePart('./sae/cfg.json') && !isRemotePart('/abs/path') && !isRemotePart('file:///x'))
})

test('parsePartUrl: malformed refs fail with a message naming the problem', () => {
  const cases: [string, RegExp][] = [
    ['hf://owner/repo', /hf:\/\/owner\/repo\[@revision\]\/path/],
    ['hf://owner/repo@/x', /empty revision/],
    ['hf://own er/repo/x', /owner "own er"/],
    ['hf://owner/re--po/x', /repo name "re--po"/],
    ['hf://owner/repo/a/../b', /"\.\." segment/],
    ['hf://owner/repo/a//b', /empty segment/],
    ['https://example.com/a#md5=abc', /#sha256=<64 hex digits>/],
    ['http://example.com/a', /plain http is only allowed on loopback/],
    ['s3://Bad_Bucket/k', /bucket "Bad_Bucket"/],
    ['s3://bucket', /s3:\/\/bucket\/key/],
    ['s3://bucket/dir/', /empty segment/],
    ['ftp://host/x', /unsupported scheme "ftp:\/\/"/],
    ['sae/cfg.json', /expected hf:\/\/, https:\/\/ or s3:\/\//]
  ]
  for (const [ref, message] of cases) {
    assert.throws(
      () => parsePartUrl(ref),
      (err: unknown) =>
        err instanceof RemotePartError &&
        err.code === 'bad-ref' &&
        message.test(err.message) &&
        err.message.includes(ref),
      ref
    )
  }
})

test('hf: a branch resolves to its commit; the cache is keyed by commit; a moved branch refetches; a pinned commit needs no network', async () => {
  const cache = await cacheDir()
  const ref = 'hf://acme/sae-res/config.json'
  const first = await traced(() => fetchPart(ref, options(cache)))
  assert.equal(first.value.revision, A)
  assert.equal(first.value.fromCache, false)
  assert.equal(first.value.path, join(cache, 'hf', 'acme--sae-res', A, 'config.json'))
  assert.equal(first.value.sha256, sha256Of(cfgA))
  assert.equal(first.value.bytes, cfgA.byteLength)
  await sameBytes(first.value.path, cfgA)
  // The HEAD names the branch; the GET is pinned to the commit it resolved to.
  assert.deepEqual(
    first.requests.map(r => `${r.method} ${r.path}`),
    ['HEAD /acme/sae-res/resolve/main/config.json', `GET /acme/sae-res/resolve/${A}/config.json`]
  )

  const again = await traced(() => fetchPart(ref, options(cache)))
  assert.equal(again.value.fromCache, true)
  assert.equal(again.value.sha256, sha256Of(cfgA))
  assert.deepEqual(
    again.requests.map(r => r.method),
    ['HEAD']
  )

  hub.repos['acme/sae-res'].refs.main = B
  try {
    const moved = await fetchPart(ref, options(cache))
    assert.equal(moved.revision, B)
    assert.equal(moved.fromCache, false)
    assert.equal(moved.path, join(cache, 'hf', 'acme--sae-res', B, 'config.json'))
    await sameBytes(moved.path, cfgB)
    await sameBytes(first.value.path, cfgA) // the old commit's copy stays

    const pinned = await traced(() => fetchPart(`hf://acme/sae-res@${A}/config.json`, options(cache)))
    assert.equal(pinned.value.fromCache, true)
    assert.equal(pinned.value.path, first.value.path)
    assert.equal(pinned.requests.length, 0)

    const tag = await fetchPart('hf://acme/sae-res@v1/config.json', options(cache))
    assert.equal(tag.revision, A)
    assert.equal(tag.fromCache, true)
  } finally {
    hub.repos['acme/sae-res'].refs.main = A
  }
})

test('hf: offline, a branch ref is served from the cached commit with a log line; an uncached one fails clearly', async () => {
  const cache = await cacheDir()
  const ref = 'hf://acme/sae-res/layer_8/cfg.json'
  const online = await fetchPart(ref, options(cache))
  const down = `http://127.0.0.1:${await closedPort()}`
  const opts = options(cache, {}, { HF_ENDPOINT: down })
  const offline = await fetchPart(ref, opts)
  assert.equal(offline.fromCache, true)
  assert.equal(offline.revision, A)
  assert.equal(offline.path, online.path)
  assert.ok(
    opts.lines.some(l => l.includes(`using the cached commit ${A}`) && l.includes('cannot reach')),
    opts.lines.join('\n')
  )

  const flagged = options(cache, {}, { HF_HUB_OFFLINE: '1' })
  const before = hub.requests.length
  assert.equal((await fetchPart(ref, flagged)).path, online.path)
  assert.equal(hub.requests.length, before)
  assert.ok(flagged.lines.some(l => l.includes('HF_HUB_OFFLINE')))

  await assert.rejects(
    fetchPart('hf://acme/sae-res/config.json', opts),
    (err: unknown) => err instanceof RemotePartError && err.code === 'network' && /not in the cache/.test(err.message)
  )
})

test('hf: an LFS file follows the 302 to the CDN; HF_TOKEN goes to the hub only; the sha256 comes from X-Linked-Etag', async () => {
  const cache = await cacheDir()
  const { value, requests } = await traced(() =>
    fetchPart('hf://acme/gated/w.bin', options(cache, {}, { HF_TOKEN: TOKEN }))
  )
  assert.equal(value.sha256, sha256Of(gatedWeights))
  assert.equal(value.bytes, gatedWeights.byteLength)
  await sameBytes(value.path, gatedWeights)
  const hubSide = requests.filter(r => r.server === 'hub')
  const cdnSide = requests.filter(r => r.server === 'cdn')
  assert.ok(hubSide.length >= 1 && cdnSide.length === 1)
  for (const r of hubSide) assert.equal(r.authorization, `Bearer ${TOKEN}`)
  for (const r of cdnSide) assert.equal(r.authorization, undefined)
  assert.match(cdnSide[0].path, new RegExp(`^/blobs/${sha256Of(gatedWeights)}\\?`))
})

test('hf: 401/403 say to set HF_TOKEN and accept the licence; 404 names file, revision and repo', async () => {
  const cache = await cacheDir()
  await assert.rejects(
    fetchPart('hf://acme/gated/w.bin', options(cache)),
    (err: unknown) =>
      err instanceof RemotePartError &&
      err.code === 'auth' &&
      err.status === 401 &&
      /set HF_TOKEN/.test(err.message) &&
      /accept the model's licence/.test(err.message) &&
      err.message.includes(`${hub.endpoint}/acme/gated`)
  )
  await assert.rejects(
    fetchPart('hf://acme/gated/w.bin', options(cache, {}, { HF_TOKEN: 'hf_wrong' })),
    (err: unknown) =>
      err instanceof RemotePartError &&
      err.status === 403 &&
      /HF_TOKEN given has no access/.test(err.message) &&
      /accept the model's licence/.test(err.message) &&
      !err.message.includes('hf_wrong')
  )
  await assert.rejects(
    fetchPart('hf://acme/sae-res@v1/layer_9/cfg.json', options(cache)),
    (err: unknown) =>
      err instanceof RemotePartError &&
      err.code === 'not-found' &&
      err.message === 'no file layer_9/cfg.json at revision v1 of repo acme/sae-res'
  )
  await assert.rejects(
    fetchPart('hf://acme/sae-res@nope/config.json', options(cache)),
    /no revision nope in repo acme\/sae-res/
  )
  assert.deepEqual(await readdir(cache).catch(() => []), [])
})

test('hf: a transfer cut mid-body leaves a partial; the next call resumes with a Range and fetches only the rest', async () => {
  const cache = await cacheDir()
  const ref = 'hf://acme/sae-res/layer_8/sae_weights.safetensors'
  const cutAt = 100_000
  hub.cutNextBody(cutAt, () => partialHolds(cache, cutAt))
  const first = await traced(() =>
    fetchPart(ref, options(cache, { retries: 0 })).then(
      () => 'done',
      (err: unknown) => err
    )
  )
  assert.ok(first.value instanceof RemotePartError && first.value.code === 'interrupted', String(first.value))
  assert.match((first.value as Error).message, /next call resumes it/)
  const final = join(cache, 'hf', 'acme--sae-res', A, 'layer_8', 'sae_weights.safetensors')
  assert.equal((await stat(`${final}.partial`)).size, cutAt)
  await assert.rejects(stat(final))

  const opts = options(cache, { retries: 0 })
  const second = await traced(() => fetchPart(ref, opts))
  const gets = second.requests.filter(r => r.method === 'GET')
  assert.equal(gets.length, 1)
  assert.equal(gets[0].server, 'cdn')
  assert.equal(gets[0].range, `bytes=${cutAt}-`)
  assert.equal(gets[0].status, 206)
  assert.equal(gets[0].bodyBytes, weightsA.byteLength - cutAt)
  assert.equal(second.value.sha256, sha256Of(weightsA))
  await sameBytes(final, weightsA)
  await assert.rejects(stat(`${final}.partial`))
  assert.ok(opts.lines.some(l => l.includes(`resuming at byte ${cutAt}`)))
})

test('hf: within one call an interrupted transfer is resumed automatically', async () => {
  const cache = await cacheDir()
  hub.cutNextBody(1234, () => partialHolds(cache, 1234))
  const opts = options(cache)
  const { value, requests } = await traced(() => fetchPart('hf://acme/sae-res/layer_8/sae_weights.safetensors', opts))
  await sameBytes(value.path, weightsA)
  const gets = requests.filter(r => r.method === 'GET')
  assert.deepEqual(
    gets.map(r => [r.range, r.bodyBytes]),
    [
      [undefined, 1234],
      ['bytes=1234-', weightsA.byteLength - 1234]
    ]
  )
  assert.ok(
    opts.lines.some(l => /interrupted after 1234 bytes.*retry 1 of 3/.test(l)),
    opts.lines.join('\n')
  )
})

test('hf: a sha256 mismatch deletes the partial and throws', async () => {
  const cache = await cacheDir()
  await assert.rejects(
    fetchPart('hf://acme/corrupt/w.bin', options(cache)),
    (err: unknown) =>
      err instanceof RemotePartError &&
      err.code === 'checksum' &&
      /sha256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}; the partial download was deleted/.test(err.message)
  )
  // A file kept in git (not LFS) is checked against its git blob id, the hub's ETag for it.
  await assert.rejects(
    fetchPart('hf://acme/corrupt/cfg.json', options(cache)),
    (err: unknown) =>
      err instanceof RemotePartError &&
      err.code === 'checksum' &&
      err.message.includes(`git blob id mismatch: expected ${gitBlobId(cfgB)}, got ${gitBlobId(cfgA)}`)
  )
  const commitDir = join(cache, 'hf', 'acme--corrupt', A)
  assert.deepEqual(await readdir(commitDir), [])
})

test('hf: concurrent calls for one file share one download', async () => {
  const cache = await cacheDir()
  const ref = 'hf://acme/sae-res/layer_8/sae_weights.safetensors'
  const { value, requests } = await traced(() =>
    Promise.all([fetchPart(ref, options(cache)), fetchPart(ref, options(cache)), fetchPart(ref, options(cache))])
  )
  assert.equal(requests.filter(r => r.method === 'GET').length, 1)
  assert.equal(new Set(value.map(v => v.path)).size, 1)
  for (const v of value) assert.equal(v.sha256, sha256Of(weightsA))
  await sameBytes(value[0].path, weightsA)
})

test('size cap: a part over maxBytes is refused before its body is fetched', async () => {
  const cache = await cacheDir()
  const { value, requests } = await traced(() =>
    fetchPart('hf://acme/sae-res/layer_8/sae_weights.safetensors', options(cache, { maxBytes: 100_000 })).catch(
      (err: unknown) => err
    )
  )
  assert.ok(value instanceof RemotePartError && value.code === 'too-large')
  assert.match(
    (value as Error).message,
    /is 293\.0 KiB \(300000 bytes\), over the limit of 97\.7 KiB \(100000 bytes\); raise maxBytes/
  )
  assert.equal(requests.filter(r => r.method === 'GET').length, 0)
  // A server that does not announce the size is cut off once the body passes the cap.
  const url = hub.serve('/unsized.bin', bytesOf(50_000, 4), { 'transfer-encoding': 'chunked' })
  await assert.rejects(
    fetchPart(url, options(cache, { maxBytes: 10_000 })),
    /unsized\.bin grew past the limit of 9\.8 KiB \(10000 bytes\)/
  )
  assert.deepEqual(await readdir(join(cache, 'https', sha256Of(url))), [])
  const announced = hub.serve('/announced.bin', bytesOf(50_000, 4))
  await assert.rejects(
    fetchPart(announced, options(cache, { maxBytes: 10_000 })),
    /is 48\.8 KiB \(50000 bytes\), over the limit/
  )
})

test('fetchFolder: every file of an hf folder comes from the one commit the branch resolved to', async () => {
  const cache = await cacheDir()
  const got = await fetchFolder('hf://acme/sae-res/layer_8', ['cfg.json', 'sae_weights.safetensors'], options(cache))
  assert.equal(got.revision, A)
  assert.equal(got.dir, join(cache, 'hf', 'acme--sae-res', A, 'layer_8'))
  assert.deepEqual((await readdir(got.dir)).sort(), ['cfg.json', 'sae_weights.safetensors'])
  await sameBytes(join(got.dir, 'cfg.json'), cfgA)
  await sameBytes(join(got.dir, 'sae_weights.safetensors'), weightsA)
  // Later files are fetched at the commit, not at the branch name.
  hub.repos['acme/sae-res'].refs.main = B
  const fresh = await cacheDir()
  try {
    const { value, requests } = await traced(() =>
      fetchFolder('hf://acme/sae-res/layer_8', ['cfg.json', 'sae_weights.safetensors'], options(fresh))
    )
    assert.equal(value.revision, B)
    assert.ok(
      requests
        .filter(r => r.server === 'hub' && r.method === 'HEAD')
        .slice(1)
        .every(r => r.path.includes(`/resolve/${B}/`))
    )
    await sameBytes(join(value.dir, 'sae_weights.safetensors'), weightsB)
  } finally {
    hub.repos['acme/sae-res'].refs.main = A
  }
  await assert.rejects(fetchFolder('hf://acme/sae-res/layer_8', ['../x'], options(cache)), /"\.\." segment/)
})

test('https: cached under sha256(url)/basename, verified against the #sha256= pin or a 64-hex ETag, resumable', async () => {
  const cache = await cacheDir()
  const body = bytesOf(120_000, 11)
  const url = hub.serve('/models/reader.onnx', body)
  const ref = `${url}#sha256=${sha256Of(body)}`
  const got = await fetchPart(ref, options(cache))
  assert.equal(got.path, join(cache, 'https', sha256Of(url), 'reader.onnx'))
  assert.equal(got.sha256, sha256Of(body))
  await sameBytes(got.path, body)
  const again = await traced(() => fetchPart(ref, options(cache)))
  assert.equal(again.value.fromCache, true)
  assert.equal(again.requests.length, 0)

  await assert.rejects(
    fetchPart(`${hub.serve('/models/other.onnx', body)}#sha256=${'ab'.repeat(32)}`, options(cache)),
    (err: unknown) => err instanceof RemotePartError && err.code === 'checksum' && err.message.includes('ab'.repeat(32))
  )
  const lying = hub.serve('/models/lying.bin', body, { etag: `"${sha256Of('not this')}"` })
  await assert.rejects(fetchPart(lying, options(cache)), /sha256 mismatch/)

  const big = bytesOf(80_000, 12)
  const resumable = hub.serve('/models/big.bin', big, { etag: `"${sha256Of(big)}"` })
  hub.cutNextBody(30_000, () => partialHolds(cache, 30_000))
  await assert.rejects(fetchPart(resumable, options(cache, { retries: 0 })), /next call resumes it/)
  const { value, requests } = await traced(() => fetchPart(resumable, options(cache, { retries: 0 })))
  assert.deepEqual(
    requests.map(r => [r.range, r.bodyBytes]),
    [['bytes=30000-', 50_000]]
  )
  await sameBytes(value.path, big)
})

test('https: a token is never sent to a host other than the hub', async () => {
  const cache = await cacheDir()
  const url = hub.serve('/public/file.bin', bytesOf(1000, 5))
  const { requests } = await traced(() => fetchPart(url, options(cache, {}, { HF_TOKEN: TOKEN })))
  assert.equal(requests.length, 1)
  assert.equal(requests[0].authorization, undefined)
})

test('s3: GetObject into the cache keyed by ETag; a changed object refetches; no client is a clear error', async () => {
  const cache = await cacheDir()
  const v1 = bytesOf(70_000, 21)
  const v2 = bytesOf(70_000, 22)
  await s3.client.send(new PutObjectCommand({ Bucket: 'parts', Key: 'saes/l8/sae.safetensors', Body: v1 }))
  const ref = 's3://parts/saes/l8/sae.safetensors'
  const got = await fetchPart(ref, options(cache, { s3: s3.client }))
  assert.equal(got.path, join(cache, 's3', 'parts', 'saes', 'l8', 'sae.safetensors'))
  assert.equal(got.fromCache, false)
  await sameBytes(got.path, v1)
  assert.equal((await fetchPart(ref, options(cache, { s3: s3.client }))).fromCache, true)

  await s3.client.send(new PutObjectCommand({ Bucket: 'parts', Key: 'saes/l8/sae.safetensors', Body: v2 }))
  const changed = await fetchPart(ref, options(cache, { s3: s3.client }))
  assert.equal(changed.fromCache, false)
  assert.equal(changed.sha256, sha256Of(v2))
  await sameBytes(changed.path, v2)

  await assert.rejects(
    fetchPart(`${ref}#sha256=${'cd'.repeat(32)}`, options(await cacheDir(), { s3: s3.client })),
    /sha256 mismatch/
  )
  await assert.rejects(
    fetchPart('s3://parts/missing.bin', options(cache, { s3: s3.client })),
    /no object missing\.bin in bucket parts/
  )
  await assert.rejects(fetchPart(ref, options(cache)), /s3:\/\/ parts need an S3 client/)

  await s3.client.send(new PutObjectCommand({ Bucket: 'parts', Key: 'saes/l8/cfg.json', Body: cfgA }))
  const folder = await fetchFolder(
    's3://parts/saes/l8/',
    ['cfg.json', 'sae.safetensors'],
    options(cache, { s3: s3.client })
  )
  assert.equal(folder.dir, join(cache, 's3', 'parts', 'saes', 'l8'))
  await sameBytes(join(folder.dir, 'cfg.json'), cfgA)
  assert.equal(folder.files[1].fromCache, true)
})

test('s3: a GetObject body cut short is resumed by the next call with a Range and If-Match', async () => {
  const cache = await cacheDir()
  const body = bytesOf(90_000, 31)
  await s3.client.send(new PutObjectCommand({ Bucket: 'parts', Key: 'resume/sae.safetensors', Body: body }))
  const gets: { Range?: string; IfMatch?: string }[] = []
  let cutAfter: number | undefined = 25_000
  // Wraps the client: records GetObject inputs and, once, ends the body with an error after `cutAfter` bytes.
  const client = {
    async send(cmd: unknown): Promise<unknown> {
      const out = (await s3.client.send(cmd as PutObjectCommand)) as unknown as { Body?: AsyncIterable<Uint8Array> }
      if ((cmd as { constructor: { name: string } }).constructor.name !== 'GetObjectCommand') return out
      gets.push((cmd as { input: { Range?: string; IfMatch?: string } }).input)
      const limit = cutAfter
      cutAfter = undefined
      if (limit === undefined) return out
      const source = out.Body!
      return {
        ...out,
        Body: (async function* () {
          let sent = 0
          for await (const chunk of source) {
            const take = chunk.subarray(0, Math.max(0, limit - sent))
            sent += take.byteLength
            if (take.byteLength) yield take
            if (sent >= limit) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })
          }
        })()
      }
    }
  }
  const ref = 's3://parts/resume/sae.safetensors'
  await assert.rejects(
    fetchPart(ref, options(cache, { s3: client, retries: 0 })),
    /failed after 25000 bytes.*next call resumes it/
  )
  const got = await fetchPart(ref, options(cache, { s3: client, retries: 0 }))
  await sameBytes(got.path, body)
  assert.equal(gets.length, 2)
  assert.equal(gets[0].Range, undefined)
  assert.equal(gets[1].Range, 'bytes=25000-')
  assert.ok(gets[1].IfMatch && gets[1].IfMatch === gets[0].IfMatch)
})
