/** @module Tests of the URL guard: forbidden address classes (IPv4, IPv6, mapped, NAT64), DNS names resolving inside, redirects to inside, caps on size and time. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { LookupAddress } from 'node:dns'
import { forbiddenAddress, guardedFetch, guardedRequest, readAll, RefusedUrlError, checkUrlForm } from './url-guard.ts'
import { deliverWebhook } from '../webhooks/deliver.ts'

test('address classes: private, loopback, link-local, metadata, CGNAT, IPv6 and its IPv4 disguises are refused', () => {
  const refused = [
    '127.0.0.1',
    '127.255.0.9',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1%eth0',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '::ffff:a9fe:a9fe',
    '64:ff9b::7f00:1',
    '64:ff9b::a9fe:a9fe',
    'ff02::1',
    'fd00:ec2::254',
    '2002:7f00:1::1'
  ]
  for (const ip of refused) assert.ok(forbiddenAddress(ip), `${ip} must be refused`)
  const allowed = [
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808'
  ]
  for (const ip of allowed) assert.equal(forbiddenAddress(ip), null, `${ip} is public`)
  assert.match(forbiddenAddress('169.254.169.254')!, /metadata/)
  assert.match(forbiddenAddress('::ffff:169.254.169.254')!, /IPv4-mapped link-local/)
})

test('only http(s), and no credentials in the URL', () => {
  for (const u of ['file:///etc/passwd', 'gopher://x/', 'ftp://x/', 'javascript:alert(1)'])
    assert.throws(() => checkUrlForm(u), RefusedUrlError)
  assert.throws(() => checkUrlForm('http://user:pw@example.com/'), /credentials/)
  assert.equal(checkUrlForm('https://example.com/a.jsonl').hostname, 'example.com')
})

let server: Server
let port = 0
const hits: string[] = []
before(async () => {
  server = createServer((req, res) => {
    hits.push(`${req.headers.host} ${req.url} auth=${req.headers.authorization ?? '-'}`)
    if (req.url === '/ok') {
      res.end('hello')
    } else if (req.url === '/to-internal') {
      res.writeHead(302, { location: `http://internal.test:${port}/secret` }).end()
    } else if (req.url === '/to-metadata') {
      res.writeHead(301, { location: 'http://169.254.169.254/latest/meta-data/' }).end()
    } else if (req.url === '/to-other-public') {
      res.writeHead(302, { location: `http://other.test:${port}/ok` }).end()
    } else if (req.url === '/loop') {
      res.writeHead(302, { location: '/loop' }).end()
    } else if (req.url === '/big') {
      res.writeHead(200, { 'content-length': String(3 << 20) })
      res.end(Buffer.alloc(3 << 20))
    } else if (req.url === '/big-chunked') {
      res.writeHead(200)
      for (let i = 0; i < 3; i++) res.write(Buffer.alloc(1 << 20))
      res.end()
    } else if (req.url === '/hang') {
      res.writeHead(200)
      res.write('x')
    } else {
      res.writeHead(404).end()
    }
  })
  await new Promise<void>(ok => server.listen(0, '127.0.0.1', ok))
  port = (server.address() as { port: number }).port
})
after(() => {
  server.closeAllConnections()
  return new Promise<void>(ok => server.close(() => ok()))
})

/** public.test and other.test stand for public hosts (the test allows the loopback server only under those names). */
const dns: Record<string, LookupAddress[]> = {
  'public.test': [{ address: '127.0.0.1', family: 4 }],
  'other.test': [{ address: '127.0.0.1', family: 4 }],
  'internal.test': [{ address: '10.0.0.7', family: 4 }],
  'rebind.test': [{ address: '127.0.0.2', family: 4 }],
  'mixed.test': [
    { address: '93.184.216.34', family: 4 },
    { address: '192.168.0.10', family: 4 }
  ]
}
const opts = {
  resolve: async (h: string) => {
    const a = dns[h]
    if (!a) throw new Error(`ENOTFOUND ${h}`)
    return a
  },
  allowAddress: (ip: string) => ip === '127.0.0.1' // the loopback test server plays the public internet
}

test('a public host is fetched; names resolving inside and redirects to inside are refused before connecting', async () => {
  const ok = await guardedRequest(`http://public.test:${port}/ok`, opts)
  assert.equal(ok.status, 200)
  assert.equal(new TextDecoder().decode(await readAll(ok.body)), 'hello')
  hits.length = 0
  await assert.rejects(
    guardedRequest(`http://internal.test:${port}/secret`, opts),
    (e: RefusedUrlError) => e.code === 'address' && /10\.0\.0\.7 \(private\)/.test(e.message)
  )
  await assert.rejects(guardedRequest(`http://rebind.test:${port}/ok`, opts), /127\.0\.0\.2 \(loopback\)/)
  await assert.rejects(
    guardedRequest(`http://mixed.test:${port}/ok`, opts),
    /192\.168\.0\.10/,
    'one private address among several is enough to refuse'
  )
  await assert.rejects(guardedRequest(`http://public.test:${port}/to-internal`, opts), /internal\.test.*10\.0\.0\.7/)
  await assert.rejects(guardedRequest(`http://public.test:${port}/to-metadata`, opts), /169\.254\.169\.254.*metadata/)
  await assert.rejects(
    guardedRequest(`http://[::ffff:7f00:1]:${port}/ok`, { resolve: opts.resolve }),
    /IPv4-mapped loopback/
  )
  await assert.rejects(guardedRequest(`http://127.0.0.1:${port}/ok`, { resolve: opts.resolve }), /loopback/)
  assert.deepEqual(
    hits.filter(h => !h.includes('/to-')),
    [],
    'no refused host was ever connected to'
  )
  await assert.rejects(
    guardedRequest(`http://public.test:${port}/loop`, opts),
    (e: RefusedUrlError) => e.code === 'redirect'
  )
})

test('a redirect to another origin drops the Authorization header', async () => {
  hits.length = 0
  const res = await guardedRequest(`http://public.test:${port}/to-other-public`, {
    ...opts,
    headers: { authorization: 'Bearer secret' }
  })
  await readAll(res.body)
  assert.equal(res.url, `http://other.test:${port}/ok`)
  assert.deepEqual(hits, [`public.test:${port} /to-other-public auth=Bearer secret`, `other.test:${port} /ok auth=-`])
})

test('size and time caps: declared and streamed bodies over the limit, and a server that stalls', async () => {
  await assert.rejects(
    async () => readAll((await guardedRequest(`http://public.test:${port}/big`, { ...opts, maxBytes: 1 << 20 })).body),
    (e: RefusedUrlError) => e.code === 'size' && /declares/.test(e.message)
  )
  await assert.rejects(
    async () =>
      readAll((await guardedRequest(`http://public.test:${port}/big-chunked`, { ...opts, maxBytes: 1 << 20 })).body),
    (e: RefusedUrlError) => e.code === 'size'
  )
  const t = Date.now()
  await assert.rejects(
    async () =>
      readAll((await guardedRequest(`http://public.test:${port}/hang`, { ...opts, idleTimeoutMs: 300 })).body),
    /sent no data for 0\.3 s/
  )
  assert.ok(Date.now() - t < 5000)
})

test('webhook delivery through the guarded fetch: a receiver inside is refused, a redirect is reported not followed', async () => {
  const secret = 'whsec_' + Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')
  const event = { url: '', secret, messageId: 'msg_1', timestamp: Date.now() / 1000, body: { type: 'dataset.ready' } }
  const inside = await deliverWebhook(
    { ...event, url: `http://internal.test:${port}/hook` },
    { fetch: guardedFetch(opts) }
  )
  assert.equal(inside.ok, false)
  assert.match(inside.error ?? '', /10\.0\.0\.7 \(private\)/)
  const redirected = await deliverWebhook(
    { ...event, url: `http://public.test:${port}/to-other-public` },
    { fetch: guardedFetch(opts) }
  )
  assert.equal(redirected.status, 302)
  assert.match(redirected.error ?? '', /redirects are not followed/)
  hits.length = 0
  const ok = await deliverWebhook({ ...event, url: `http://public.test:${port}/ok` }, { fetch: guardedFetch(opts) })
  assert.equal(ok.ok, true)
  assert.equal(hits.length, 1)
})
