/**
 * @module `npm run bench:load`: many concurrent GET /diff and GET /search against the API served over HTTP on
 * loopback (Node server, synthetic stores on disk), printing p50 / p99 latency, throughput and errors.
 *
 *   npm run bench:load [-- --docs 10000 --latents 16384 --concurrency 32 --requests 2000 --cache both]
 *
 * --cache off: every request computes its answer (ETags still computed); on: the in-process answer cache, plus
 * conditional requests (If-None-Match -> 304); both (default): off then on, in one process on the same stores.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { serve } from '@hono/node-server'
import type { Server } from 'node:http'
import { configureNodeServer } from '@latentbase/shared/net/node-server'
import { retryingFetch } from '@latentbase/shared/net/retry'
import type { AddressInfo } from 'node:net'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import { createApp } from '../app.ts'
import { AnswerCache } from '../services/answer-cache.ts'
import { syntheticCatalog, syntheticTopics, writeSyntheticDataset } from './synthetic-store.ts'

const { values } = parseArgs({
  options: {
    docs: { type: 'string', default: '10000' },
    latents: { type: 'string', default: '16384' },
    concurrency: { type: 'string', default: '32' },
    requests: { type: 'string', default: '2000' },
    cache: { type: 'string', default: 'both' }
  }
})
const nDocs = Number(values.docs),
  nLatents = Number(values.latents)
const concurrency = Number(values.concurrency),
  total = Number(values.requests)

const root = await mkdtemp(join(tmpdir(), 'latentbase-load-'))
try {
  const objects = new FsObjectStore(join(root, 'store'))
  const datasets = new DatasetStore(objects)
  const topics = syntheticTopics(nLatents, 20, 40)
  const encoders = syntheticCatalog('syn', nLatents, topics)
  for (const [id, rate, seed] of [
    ['ds_a', 0.6, 1],
    ['ds_b', 0.3, 2]
  ] as const) {
    await writeSyntheticDataset(
      objects,
      datasets,
      { tenant: 'local', id, encoderId: 'syn' },
      { nDocs, nLatents, meanActive: 300, topics: 20, topicLatents: 40, topicRate: rate, seed }
    )
  }
  const labels = await encoders.labels('syn')
  const queries = topics.map(ls => (labels[ls[0]] ?? '').replace(/ aspect \d+$/, ''))
  const queue = new EmbeddedQueue<JobMessage>(join(root, 'queue'))
  // A client as the SDK is: idempotent requests retried on a reset connection (counted, and printed).
  let resets = 0
  const fetch = retryingFetch(globalThis.fetch, {
    onRetry: () => {
      resets++
    }
  })
  for (const mode of values.cache === 'both' ? ['off', 'on'] : [values.cache!]) {
    const cache = mode === 'on' ? new AnswerCache() : false
    const app = createApp({
      objects,
      datasets,
      encoders,
      mode: 'local',
      tenantOf: () => 'local',
      embedder: new OfflineEmbedder(),
      queue,
      answerCache: cache
    })
    const server = configureNodeServer(serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server)
    await new Promise(ok => server.once('listening', ok))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    console.log(`answer cache ${mode}:`)
    const etags = new Map<string, string>()

    for (const [name, pathOf, conditional] of [
      ['GET /diff', (i: number) => `/diff?a=ds_a&b=ds_b&limit=${20 + (i % 5)}`, false],
      [
        'GET /search (sae)',
        (i: number) => `/search?dataset=ds_a&q=${encodeURIComponent(queries[i % queries.length])}&limit=20`,
        false
      ],
      [
        'GET /search (bm25)',
        (i: number) => `/search?dataset=ds_a&method=bm25&q=${encodeURIComponent(queries[i % queries.length])}&limit=20`,
        false
      ],
      ...(mode === 'on'
        ? ([
            ['GET /diff 304', (i: number) => `/diff?a=ds_a&b=ds_b&limit=${20 + (i % 5)}`, true],
            [
              'GET /search 304',
              (i: number) => `/search?dataset=ds_a&q=${encodeURIComponent(queries[i % queries.length])}&limit=20`,
              true
            ]
          ] as const)
        : [])
    ] as const) {
      await fetch(base + pathOf(0)).then(r => r.arrayBuffer()) // warm: footers, indexes, label embeddings
      if (conditional) {
        // A client that holds each answer already: If-None-Match with its ETag.
        for (let i = 0; i < Math.min(total, 64); i++) {
          const res = await fetch(base + pathOf(i))
          await res.arrayBuffer()
          etags.set(pathOf(i), res.headers.get('etag') ?? '')
        }
      }
      const latencies = new Float64Array(total)
      let next = 0,
        errors = 0
      const statuses = new Map<number, number>()
      const t0 = performance.now()
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          for (let i = next++; i < total; i = next++) {
            const t = performance.now()
            try {
              const path = pathOf(i)
              const res = await fetch(
                base + path,
                conditional && etags.get(path) ? { headers: { 'if-none-match': etags.get(path)! } } : {}
              )
              await res.arrayBuffer()
              statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
              if (res.status !== (conditional ? 304 : 200)) errors++
            } catch {
              errors++
            }
            latencies[i] = performance.now() - t
          }
        })
      )
      const seconds = (performance.now() - t0) / 1000
      latencies.sort()
      const q = (p: number) => latencies[Math.min(total - 1, Math.floor(p * total))].toFixed(1)
      console.log(
        `  ${name.padEnd(20)} ${total} requests, ${concurrency} concurrent: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, ${(total / seconds).toFixed(0)} req/s, errors ${errors}, connection resets retried ${resets} (${[...statuses].map(([s, n]) => `${s}: ${n}`).join(', ')})`
      )
    }
    server.close()
  }
  console.log(
    `(${nDocs.toLocaleString('en')} documents x ${nLatents.toLocaleString('en')} latents per dataset, one Node process on this machine)`
  )
} finally {
  await rm(root, { recursive: true, force: true })
}
