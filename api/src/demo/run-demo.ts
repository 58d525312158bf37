/**
 * @module `npm run demo`: encodes ham and spam from the SpamAssassin corpus (two halves each, served over
 * loopback HTTP and posted by URL), prints the top latent differences with labels, and checks that the
 * differences found on one half replicate on the other.
 */
import { createServer } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from '@latentbase/sdk'
import { createProgress } from '@latentbase/shared/util/progress'
import { configureNodeServer } from '@latentbase/shared/net/node-server'
import { startLocal } from '../local-server.ts'
import { loadSpamAssassin, splitHalf, toJsonl } from '@latentbase/gpu-worker/corpus/spam-assassin'

const keep = process.argv.includes('--keep')
const stages = (s: Record<string, number | undefined> | undefined) =>
  Object.entries(s ?? {})
    .filter(([k]) => k !== 'total')
    .map(([k, v]) => `${k} ${(v ?? 0).toFixed(1)} s`)
    .join(', ')
const dataDir = process.env.DATA_DIR ?? (await mkdtemp(join(tmpdir(), 'latentbase-demo-')))
const emails = loadSpamAssassin()
const files = new Map<string, string>()
for (const half of [0, 1] as const) {
  files.set(
    `/ham-${half}.jsonl`,
    toJsonl(emails.filter(e => e.group.includes('ham') && e.group !== 'hard-ham-1' && splitHalf(e.id) === half))
  )
  files.set(`/spam-${half}.jsonl`, toJsonl(emails.filter(e => e.group.startsWith('spam') && splitHalf(e.id) === half)))
}
const corpusServer = createServer((req, res) => {
  const body = files.get(req.url ?? '')
  if (!body) {
    res.writeHead(404).end()
    return
  }
  res.writeHead(200, { 'content-type': 'application/x-ndjson' }).end(body)
})
configureNodeServer(corpusServer)
await new Promise<void>(ok => corpusServer.listen(0, '127.0.0.1', ok))
const corpusUrl = `http://127.0.0.1:${(corpusServer.address() as { port: number }).port}`

const server = await startLocal({ dataDir, port: 0, log: () => {} })
const client = createClient({ baseUrl: server.url })
const t0 = performance.now()
const ids: Record<string, string> = {}
for (const name of ['ham-0', 'spam-0', 'ham-1', 'spam-1']) {
  const created = await client.datasets.create({ name, source: { url: `${corpusUrl}/${name}.jsonl` } })
  ids[name] = created.id
}
// All four encode at once: one progress bar each on a terminal, one line per change otherwise; log lines (the
// encoder's own) go above the bars instead of through them.
const progress = createProgress()
progress.captureConsole()
let tokens = 0
try {
  await Promise.all(
    Object.entries(ids).map(async ([name, id]) => {
      // The four are queued at once and encoded one after another, so the last waits for the others: no 30-min default
      // here (a busy 2-core machine took 19 min for ham-0 alone). Progress is on screen; Ctrl-C stops.
      const d = await client.datasets.waitUntilReady(id, {
        timeoutMs: 6 * 3600_000,
        onProgress: p =>
          progress.update(name, {
            done: p.progress.documents.done,
            total: p.progress.documents.total,
            status: p.status,
            detail: `${p.progress.tokens.toLocaleString('en')} tokens`
          })
      })
      tokens += d.stats!.tokens
      progress.finish(
        name,
        `${name}: ${d.stats!.documents} documents, ${d.stats!.tokens} tokens in ${d.stats!.seconds?.total?.toFixed(1)} s: ${stages(d.stats!.seconds)}`
      )
    })
  )
} finally {
  progress.close()
}
const seconds = (performance.now() - t0) / 1000
console.log(`encoded ${tokens} tokens in ${seconds.toFixed(1)} s: ${Math.round(tokens / seconds)} tokens/s\n`)

const found = await client.diff({ a: ids['spam-0'], b: ids['ham-0'], limit: 20, direction: 'both' })
console.log('Top latent differences, spam vs ham (first half):')
console.log('latent  spam    ham     diff    95% CI            q         label')
// A latent the encoder has no label for is described by what it peaks on (the diff reads it off the top examples
// of the dataset where the latent is more frequent).
const describe = (l: (typeof found.latents)[number]) =>
  l.label ??
  (l.peak
    ? `(no label; peaks on "${l.peak.token}" in ${l.peak.count} of ${l.peak.examples} top examples, e.g. "${l.peak.window}")`
    : '(no label)')
for (const l of found.latents) {
  console.log(
    `${String(l.latent).padEnd(7)} ${l.frequencyA.toFixed(3)}   ${l.frequencyB.toFixed(3)}   ${(l.difference >= 0 ? '+' : '') + l.difference.toFixed(3)}  [${l.ci95[0].toFixed(3)}, ${l.ci95[1].toFixed(3)}]  ${(l.qValue ?? NaN).toExponential(1).padEnd(8)}  ${describe(l)}`
  )
}
const heldOut = await client.diff({
  a: ids['spam-1'],
  b: ids['ham-1'],
  latents: found.latents.map(l => l.latent),
  limit: 1
})
const byLatent = new Map(heldOut.latents.map(l => [l.latent, l]))
let replicated = 0
for (const l of found.latents) {
  const h = byLatent.get(l.latent)
  if (h && Math.sign(h.difference) === Math.sign(l.difference) && Math.abs(h.difference) > 0.01) replicated++
}
console.log(
  `\nreplication on the held-out half: ${replicated}/${found.latents.length} of the top differences have the same sign and |difference| > 1 point`
)

await server.close()
corpusServer.close()
if (!keep && !process.env.DATA_DIR) await rm(dataDir, { recursive: true, force: true })
