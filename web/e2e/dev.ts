/** @module `npm run web:fixture`: the local server with the browser tests' fixture datasets, for working on the web interface (PORT, DATA_DIR). */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startFixture } from './fixture.ts'

const dataDir = process.env.DATA_DIR ?? (await mkdtemp(join(tmpdir(), 'latentbase-web-')))
const t0 = performance.now()
const { server, a, b } = await startFixture(dataDir, {
  port: Number(process.env.PORT ?? 8790),
  log: l => console.log(l)
})
console.log(`[web] fixture ready in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${server.url}/  a=${a} b=${b}`)
