/**
 * @module Builds the web interface (Vite) into web/dist when it is missing or older than its sources: run by postinstall
 * (`npm ci`) and by the browser tests; `npm run build:web` forces a build. Skips quietly where Vite is not installed
 * (a production install without dev dependencies).
 */
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const WEB_ROOT = fileURLToPath(new URL('.', import.meta.url))
const DIST_INDEX = join(WEB_ROOT, 'dist', 'index.html')
/** Copied into web/dist too (vite.config.ts publicDir): the offline embedder's lexicon, a static asset of the Worker. */
const SHARED_ASSETS = fileURLToPath(new URL('../shared/assets', import.meta.url))

async function newestSource(dir: string): Promise<number> {
  let newest = 0
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name === 'dist' || entry.name === 'e2e' || entry.name === 'node_modules') continue
    const p = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? await newestSource(p) : (await stat(p)).mtimeMs)
  }
  return newest
}

/** Builds unless web/dist is newer than every source file (or `force`); returns what it did. */
export async function ensureWebBuild(
  opts: { force?: boolean; log?: (line: string) => void } = {}
): Promise<'built' | 'fresh' | 'no-vite'> {
  const log = opts.log ?? ((line: string) => console.log(line))
  if (!opts.force) {
    const built = await stat(DIST_INDEX).then(
      s => s.mtimeMs,
      () => 0
    )
    if (built > Math.max(await newestSource(WEB_ROOT), await newestSource(SHARED_ASSETS))) return 'fresh'
  }
  let vite: typeof import('vite')
  try {
    vite = await import('vite')
  } catch {
    log('[web] vite is not installed (dev dependency): the web interface is not built')
    return 'no-vite'
  }
  const t0 = performance.now()
  await vite.build({ configFile: join(WEB_ROOT, 'vite.config.ts'), logLevel: 'warn' })
  log(`[web] built web/dist in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  return 'built'
}

if (import.meta.url === `file://${process.argv[1]}`) await ensureWebBuild({ force: process.argv.includes('--force') })
