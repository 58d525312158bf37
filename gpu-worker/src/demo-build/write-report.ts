/**
 * @module Writes gpu-worker/encoders/demo/training-report.json after a retrain (gpu-worker/tools/demo-encoder/train.sh):
 * builds reader.onnx from the installed reader files, records its sha256 (ensure.ts warns when the installed reader
 * is not the one the SAE was fitted to) and gathers the training scripts' own reports.
 *
 * Usage: node --import tsx gpu-worker/src/demo-build/write-report.ts WORK_DIR [totalSeconds]
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { parseSafetensors } from '@latentbase/shared/tensor/safetensors'
import { DEMO_DIR, ensureDemoEncoder, READER_MIXING, READER_WEIGHTS } from './ensure.ts'
import { READER_OUTPUT } from './distributional-reader.ts'

const [work, total] = process.argv.slice(2)
if (!work) throw new Error('usage: write-report.ts WORK_DIR [totalSeconds]')
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'))
const { readerSha256 } = ensureDemoEncoder()
const readerMeta = parseSafetensors(readFileSync(join(DEMO_DIR, READER_WEIGHTS))).metadata
const sae = json(join(work, 'sae', 'train-report.json'))
const report = {
  reader: {
    sha256: readerSha256,
    kind: 'distributional: PPMI + SVD token vectors and a causal decayed context average (docs/demo-encoder.md)',
    training: readerMeta,
    mixing: json(join(DEMO_DIR, READER_MIXING)),
    output: READER_OUTPUT,
    hookName: 'blocks.0.hook_resid_post'
  },
  corpus: json(join(work, 'docs.jsonl.counts.json')),
  sae,
  labels: json(join(work, 'labels.jsonl.summary.json')),
  seconds: total ? Number(total) : null,
  environment: { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', threads: 2 }
}
writeFileSync(join(DEMO_DIR, 'training-report.json'), JSON.stringify(report, null, 2) + '\n')
console.log(`wrote training-report.json (reader sha256 ${readerSha256.slice(0, 12)})`)
