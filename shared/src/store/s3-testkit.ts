/** @module Test kit: fauxqs S3 behind a small proxy that adds create-only PutObject (If-None-Match: * -> 412), which fauxqs 2.4 ignores. */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { S3Client } from '@aws-sdk/client-s3'
import { startFauxqs } from 'fauxqs'

export interface TestS3 {
  client: S3Client
  bucket: string
  endpoint: string
  /** PUTs that arrived with `If-None-Match: *`, and how many of them were refused with 412. */
  conditional: { puts: number; refused: number }
  stop(): Promise<void>
}

const PRECONDITION_FAILED =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
  '<Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>'

export async function startTestS3(bucket = 'latents'): Promise<TestS3> {
  const server = await startFauxqs({ port: 0, logger: false })
  server.createBucket(bucket)
  const upstream = new URL(server.address)
  const conditional = { puts: 0, refused: 0 }
  // Check-then-put must not interleave for one key, or two creators could both pass the check.
  const locks = new Map<string, Promise<void>>()

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, body?: Buffer): void => {
    const up = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers
      },
      upRes => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers)
        upRes.pipe(res)
      }
    )
    up.on('error', err => {
      res.writeHead(502)
      res.end(String(err))
    })
    if (body) up.end(body)
    else req.pipe(up)
  }

  const exists = (path: string): Promise<boolean> =>
    new Promise((resolve, reject) => {
      const head = http.request({ host: upstream.hostname, port: upstream.port, method: 'HEAD', path }, r => {
        r.resume()
        resolve(r.statusCode === 200)
      })
      head.on('error', reject)
      head.end()
    })

  const proxy = http.createServer((req, res) => {
    if (req.method !== 'PUT' || req.headers['if-none-match'] !== '*' || req.headers['x-amz-copy-source']) {
      forward(req, res)
      return
    }
    conditional.puts++
    const path = (req.url ?? '').split('?')[0]
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const prev = locks.get(path) ?? Promise.resolve()
      const next = prev
        .then(async () => {
          if (await exists(path)) {
            conditional.refused++
            res.writeHead(412, { 'content-type': 'application/xml' })
            res.end(PRECONDITION_FAILED)
            return
          }
          await new Promise<void>(done => {
            res.on('finish', done)
            res.on('close', done)
            forward(req, res, Buffer.concat(chunks))
          })
        })
        .catch(() => {})
      locks.set(path, next)
      void next.then(() => {
        if (locks.get(path) === next) locks.delete(path)
      })
    })
  })
  await new Promise<void>(resolve => proxy.listen(0, '127.0.0.1', resolve))
  const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' }
  })
  return {
    client,
    bucket,
    endpoint,
    conditional,
    async stop() {
      client.destroy()
      proxy.closeAllConnections()
      await new Promise<void>(resolve => proxy.close(() => resolve()))
      await server.stop()
    }
  }
}
