/**
 * @module Tokenizes the demo encoder's training corpus (JSON lines of {source, text}, written by
 * gpu-worker/tools/demo-encoder/collect_corpus.py) with the reader's Llama 2 tokenizer and writes NumPy
 * arrays for the Python training scripts: ids.npy (uint16, documents back to back, each starting with
 * BOS), starts.npy (int64, document d spans ids[starts[d] .. starts[d + 1])), sources.npy (uint8) and
 * sources.json (source names).
 *
 * Usage: node --import tsx gpu-worker/src/demo-build/tokenize-corpus.ts DOCS.jsonl OUT_DIR [maxTokens]
 */
import { createReadStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Tokenizer } from '@huggingface/tokenizers'
import { DEMO_DIR } from './ensure.ts'
import { CachedTokenizer, checkChunkable } from './fast-tokenize.ts'

/** A .npy file (format 1.0) holding a 1-d little-endian array. */
export function npyBytes(data: Uint16Array | Uint8Array | BigInt64Array | Float32Array): Buffer {
  const descr =
    data instanceof Uint16Array
      ? '<u2'
      : data instanceof Uint8Array
        ? '|u1'
        : data instanceof BigInt64Array
          ? '<i8'
          : '<f4'
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${data.length},), }`
  const total = 10 + header.length + 1
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n'
  const head = Buffer.alloc(10)
  head.write('\x93NUMPY', 0, 'latin1')
  head[6] = 1
  head[7] = 0
  head.writeUInt16LE(header.length, 8)
  return Buffer.concat([
    head,
    Buffer.from(header, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  ])
}

async function main(): Promise<void> {
  const [input, outDir, maxTokensArg] = process.argv.slice(2)
  if (!input || !outDir) throw new Error('usage: tokenize-corpus.ts DOCS.jsonl OUT_DIR [maxTokens]')
  // Documents longer than the reader's context are cut: training sees what the worker sees.
  const maxTokens = Number(maxTokensArg ?? 512)
  const tokenizerJson = JSON.parse(readFileSync(join(DEMO_DIR, 'tokenizer.json'), 'utf8'))
  const tokenizer = new Tokenizer(
    tokenizerJson,
    JSON.parse(readFileSync(join(DEMO_DIR, 'tokenizer_config.json'), 'utf8'))
  )
  checkChunkable(Object.keys(tokenizerJson.model.vocab))
  const cached = new CachedTokenizer(tokenizer)
  const bos = tokenizer.token_to_id('<s>')
  if (bos === undefined) throw new Error('tokenizer has no <s>')

  let ids = new Uint16Array(1 << 24)
  let n = 0
  const starts: bigint[] = []
  const sources: number[] = []
  const names: string[] = []
  const started = performance.now()
  for await (const line of createInterface({ input: createReadStream(input, 'utf8') })) {
    if (!line) continue
    const { source, text } = JSON.parse(line) as { source: string; text: string }
    let s = names.indexOf(source)
    if (s < 0) s = names.push(source) - 1
    const doc = cached.encode(text).slice(0, maxTokens - 1)
    if (n + doc.length + 1 > ids.length) {
      const grown = new Uint16Array(ids.length * 2)
      grown.set(ids)
      ids = grown
    }
    starts.push(BigInt(n))
    sources.push(s)
    ids[n++] = bos
    for (const id of doc) ids[n++] = id
  }
  starts.push(BigInt(n))
  mkdirSync(outDir, { recursive: true })
  writeFileSync(join(outDir, 'ids.npy'), npyBytes(ids.subarray(0, n)))
  writeFileSync(join(outDir, 'starts.npy'), npyBytes(BigInt64Array.from(starts)))
  writeFileSync(join(outDir, 'sources.npy'), npyBytes(Uint8Array.from(sources)))
  writeFileSync(join(outDir, 'sources.json'), JSON.stringify(names))
  console.log(
    `tokenized ${sources.length} documents, ${n} tokens in ${((performance.now() - started) / 1000).toFixed(1)} s`
  )
}

if (process.argv[1]?.endsWith('tokenize-corpus.ts')) await main()
