/**
 * @module `npm run bench:web`: first paint and time to content of the web interface on the local server, with two
 * synthetic 10,000-document datasets in the store (written directly, not encoded), in headless Chromium; and the size
 * of the built bundle, raw and gzipped. Prints figures; asserts nothing.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { chromium } from 'playwright-core'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { DEMO_ENCODER_DIR, loadEncoders } from '@latentbase/gpu-worker/registry'
import { writeSyntheticDataset } from '../../api/src/bench/synthetic-store.ts'
import { startLocal } from '../../api/src/local-server.ts'
import { ensureWebBuild, WEB_ROOT } from '../build.ts'

const DOCS = Number(process.env.BENCH_DOCS ?? 10_000)
const RUNS = Number(process.env.BENCH_RUNS ?? 5)

await ensureWebBuild({ log: () => {} })
let raw = 0,
  gz = 0
for (const f of await readdir(join(WEB_ROOT, 'dist', 'assets'))) {
  const bytes = await readFile(join(WEB_ROOT, 'dist', 'assets', f))
  raw += bytes.length
  gz += gzipSync(bytes, { level: 9 }).length
  console.log(
    `[bench:web] ${f}: ${(bytes.length / 1024).toFixed(1)} KiB, ${(gzipSync(bytes, { level: 9 }).length / 1024).toFixed(1)} KiB gzipped`
  )
}
console.log(`[bench:web] bundle (JS + CSS): ${(raw / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzipped`)

const dataDir = await mkdtemp(join(tmpdir(), 'latentbase-paint-'))
const objects = new FsObjectStore(join(dataDir, 'store'))
const datasets = new DatasetStore(objects)
for (const [id, seed] of [
  ['ds_paint_a', 1],
  ['ds_paint_b', 2]
] as const) {
  await writeSyntheticDataset(
    objects,
    datasets,
    { tenant: 'local', id, encoderId: 'demo', name: `synthetic ${id.slice(-1)}` },
    { nDocs: DOCS, nLatents: 4096, meanActive: 60, seed }
  )
}
const server = await startLocal({
  dataDir,
  port: 0,
  encoders: await loadEncoders([DEMO_ENCODER_DIR], () => {}),
  log: () => {}
})
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync'
  ]
})
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fcp: number[] = [],
  table: number[] = [],
  chart: number[] = []
try {
  for (let i = 0; i < RUNS; i++) {
    // A new context each run: nothing cached.
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
    const page = await context.newPage()
    const t0 = Date.now()
    await page.goto(`${server.url}/#/datasets`)
    await page.waitForSelector('[data-testid=datasets] tr[data-status=ready]')
    table.push(Date.now() - t0)
    fcp.push(await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN))
    const t1 = Date.now()
    await page.goto(`${server.url}/#/diff?a=ds_paint_a&b=ds_paint_b&limit=50`)
    await page.waitForSelector('[data-testid=diff-chart] [data-latent]')
    chart.push(Date.now() - t1)
    await context.close()
  }
  console.log(
    `[bench:web] local server, ${DOCS.toLocaleString('en')}-document datasets, median of ${RUNS} cold loads: first contentful paint ${median(fcp).toFixed(0)} ms; datasets table ${median(table)} ms; diff chart of 50 latents (${DOCS} vs ${DOCS} documents) ${median(chart)} ms`
  )
} finally {
  await browser.close()
  await server.close()
  await rm(dataDir, { recursive: true, force: true })
}
