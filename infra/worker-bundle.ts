/**
 * @module Builds the Worker bundle exactly as a deploy would (`wrangler deploy --dry-run`, from wrangler.jsonc), refuses
 * node: imports (only a warning at bundle time, a failure at run time without nodejs_compat), and checks its compressed
 * size against the Workers limit. CLI: `node --import tsx infra/worker-bundle.ts [outDir]` (WORKER_LIMIT_BYTES overrides
 * the limit: 3 MiB compressed on the free plan, 10 MiB on paid).
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'

export const ROOT = fileURLToPath(new URL('../', import.meta.url))
export const FREE_PLAN_LIMIT_BYTES = 3 * 1024 * 1024

export interface WorkerBundle {
  outDir: string
  script: string
  rawBytes: number
  gzipBytes: number
  /** wrangler's own "Total Upload: ... / gzip: ..." line. */
  wranglerSize: string | null
  /** node: modules wrangler could not find (empty when the import graph is clean). */
  nodeImports: string[]
}

export async function buildWorkerBundle(outDir?: string): Promise<WorkerBundle> {
  const dir = outDir ?? (await mkdtemp(join(tmpdir(), 'lb-worker-')))
  const { stdout, stderr } = await promisify(execFile)('npx', ['wrangler', 'deploy', '--dry-run', '--outdir', dir], {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1', FORCE_COLOR: '0' },
    timeout: 120_000,
    maxBuffer: 16 << 20
  })
  const log = stdout + stderr
  const nodeImports = [...log.matchAll(/The package "(node:[^"]+)" wasn't found/g)].map(m => m[1])
  const files = await readdir(dir)
  const script = files.find(f => f.endsWith('.js'))
  if (!script) throw new Error(`wrangler wrote no script to ${dir}: ${files.join(', ')}\n${log}`)
  const bytes = await readFile(join(dir, script))
  return {
    outDir: dir,
    script: join(dir, script),
    rawBytes: bytes.length,
    gzipBytes: gzipSync(bytes).length,
    wranglerSize: /Total Upload: [^\n]+/.exec(log)?.[0] ?? null,
    nodeImports
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const limit = Number(process.env.WORKER_LIMIT_BYTES ?? FREE_PLAN_LIMIT_BYTES)
  const b = await buildWorkerBundle(process.argv[2])
  console.log(
    `[worker] ${b.script}: ${(b.rawBytes / 1024).toFixed(1)} KiB, ${(b.gzipBytes / 1024).toFixed(1)} KiB gzipped (limit ${(limit / 1024 / 1024).toFixed(0)} MiB); wrangler: ${b.wranglerSize}`
  )
  if (b.nodeImports.length) {
    console.error(`[worker] node-only imports in the Worker graph: ${b.nodeImports.join(', ')}`)
    process.exit(1)
  }
  if (b.gzipBytes > limit) {
    console.error('[worker] bundle over the limit')
    process.exit(1)
  }
}
