/** @module Measures pooled-session throughput on a synthetic reader + SAE of the demo's size (d 256, 4096 latents). */
import { mkdtemp, rm, writeFile, copyFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadEncoder, type EncoderBatch } from '../encode/runtime.ts'
import { buildTinyReader, writeTinySae, llamaModelsDir } from '../encode/test-fixtures.ts'

const D = Number(process.env.BENCH_D ?? 256)
const S = Number(process.env.BENCH_LATENTS ?? 4096)
const B = Number(process.env.BENCH_BATCH ?? 16)
const T = Number(process.env.BENCH_TOKENS ?? 256)
const K = Number(process.env.BENCH_K ?? 32)
const RUNS = Number(process.env.BENCH_RUNS ?? 8)
const VOCAB = 32000

const models = llamaModelsDir()

const root = await mkdtemp(join(tmpdir(), 'latentbase-bench-'))
try {
  // BENCH_READER=path/to/reader.onnx BENCH_OUTPUT=hidden_states.2 measures a real reader instead of the synthetic one.
  const readerPath = process.env.BENCH_READER
  const output = process.env.BENCH_OUTPUT ?? 'hidden_states.1'
  await mkdir(join(root, 'tok'))
  await copyFile(join(models, 'tokenizer.json'), join(root, 'tok', 'tokenizer.json'))
  if (readerPath) await copyFile(readerPath, join(root, 'reader.onnx'))
  else await writeFile(join(root, 'reader.onnx'), buildTinyReader({ vocab: VOCAB, d: D, unusedWidth: 8 }).bytes)
  const architecture = (process.env.BENCH_ARCH ?? 'topk') as 'topk' | 'standard' | 'jumprelu'
  await writeTinySae(
    join(root, 'sae'),
    { architecture, k: K, dIn: D, dSae: S, hookName: 'blocks.0.hook_resid_post', contextSize: T },
    'F16'
  )
  await writeFile(
    join(root, 'encoder.json'),
    JSON.stringify({
      id: 'bench',
      reader: {
        model: 'reader.onnx',
        tokenizer: 'tok/tokenizer.json',
        inputs: { ids: 'input_ids', mask: 'attention_mask' },
        output,
        hookName: 'blocks.0.hook_resid_post'
      },
      sae: { format: 'saelens', path: 'sae' }
    })
  )
  const encoder = await loadEncoder(root)
  const ids = new BigInt64Array(B * T)
  for (let i = 0; i < ids.length; i++) ids[i] = BigInt(3 + ((i * 7919) % (VOCAB - 3)))
  const poolMask = new Float32Array(B * T).fill(1)
  for (let b = 0; b < B; b++) {
    ids[b * T] = 1n
    poolMask[b * T] = 0
  }
  const batch: EncoderBatch = { ids, attention: new Uint8Array(B * T).fill(1), poolMask, batchSize: B, seqLen: T }

  const time = async (run: () => Promise<unknown>) => {
    for (let i = 0; i < 2; i++) await run()
    const t0 = performance.now()
    for (let i = 0; i < RUNS; i++) await run()
    return (performance.now() - t0) / 1000 / RUNS
  }
  const readerOnly = await encoder.createReaderOnlySession()
  const readerSeconds = await time(() => readerOnly.run(batch))
  const results: Record<string, number> = {}
  for (const method of (process.env.BENCH_METHODS ?? 'max,mean,count').split(',') as Array<'max' | 'mean' | 'count'>) {
    const session = await encoder.createPoolingSession({ method, outlierNormRatio: 100 })
    results[method] = await time(() => session.run(batch))
    await session.release()
  }
  const tokens = B * T
  console.log(
    `${readerPath ? `reader ${readerPath} at ${output}` : `synthetic reader (1 MatMul layer, d ${D})`} + ${architecture} SAE (${S} latents, k ${K}, F16 weights), batch ${B} x ${T}`
  )
  console.log(
    `reader only: ${(readerSeconds * 1000).toFixed(1)} ms/batch, ${Math.round(tokens / readerSeconds)} tokens/s`
  )
  for (const [method, s] of Object.entries(results)) {
    console.log(
      `pooled (${method}): ${(s * 1000).toFixed(1)} ms/batch, ${Math.round(tokens / s)} tokens/s; SAE + pooling ${((s - readerSeconds) * 1000).toFixed(1)} ms/batch`
    )
  }
  await encoder.close()
} finally {
  await rm(root, { recursive: true, force: true })
}
