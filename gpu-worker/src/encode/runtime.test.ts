/** @module Tests of loadEncoder: a whole encoder folder (tiny reader, real Llama 2 tokenizer, SAELens SAE, labels) end to end. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { copyFile, mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { datasetFingerprint, loadEncoder, type EncoderBatch, type LoadedEncoder } from './runtime.ts'
import { packBatch } from '../prepare/batches.ts'
import {
  buildTinyReader,
  referenceDocument,
  referencePool,
  writeTinySae,
  type TinyReader,
  type TinySae,
  llamaModelsDir
} from './test-fixtures.ts'

const LLAMA_DIR = llamaModelsDir()
const VOCAB = 32000
const D = 16
const S = 40
const HOOK = 'blocks.0.hook_resid_post'

let root: string
let reader: TinyReader
let sae: TinySae
const quiet = { log: () => {} }

const baseConfig = () => ({
  id: 'tiny',
  description: 'test encoder',
  reader: {
    model: 'reader.onnx',
    tokenizer: 'tokenizer/tokenizer.json',
    inputs: { ids: 'input_ids', mask: 'attention_mask' },
    output: 'hidden_states.1',
    hookName: HOOK
  },
  sae: { format: 'saelens', path: 'sae' },
  labels: 'labels.jsonl'
})

/** A complete encoder folder; `edit` changes encoder.json, `files` overrides or adds files. */
async function encoderFolder(
  name: string,
  edit: (c: ReturnType<typeof baseConfig>) => unknown = c => c,
  files: Record<string, string | Uint8Array> = {}
): Promise<string> {
  const f = join(root, name)
  await mkdir(join(f, 'tokenizer'), { recursive: true })
  await copyFile(join(LLAMA_DIR, 'tokenizer.json'), join(f, 'tokenizer', 'tokenizer.json'))
  await copyFile(join(LLAMA_DIR, 'tokenizer_config.json'), join(f, 'tokenizer', 'tokenizer_config.json'))
  await writeFile(join(f, 'reader.onnx'), reader.bytes)
  await writeTinySae(join(f, 'sae'), { architecture: 'topk', k: 8, dIn: D, dSae: S, hookName: HOOK, contextSize: 64 })
  await writeFile(
    join(f, 'labels.jsonl'),
    '{"latent": 3, "label": "whales"}\n{"latent": 7, "label": "ships", "source": "test"}\n'
  )
  await writeFile(join(f, 'encoder.json'), JSON.stringify(edit(baseConfig())))
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(f, path)), { recursive: true })
    await writeFile(join(f, path), content)
  }
  return f
}

let encoder: LoadedEncoder

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'latentbase-runtime-'))
  reader = buildTinyReader({ vocab: VOCAB, d: D, unusedWidth: 64 })
  sae = await writeTinySae(join(root, 'ref-sae'), {
    architecture: 'topk',
    k: 8,
    dIn: D,
    dSae: S,
    hookName: HOOK,
    contextSize: 64
  })
  encoder = await loadEncoder(await encoderFolder('ok'), { ...quiet, intraOpNumThreads: 1 })
})
after(async () => {
  await encoder?.close()
  await rm(root, { recursive: true, force: true })
})

/** Tokenize, right-pad and mask BOS / special tokens the way the worker will. */
function batchOf(
  texts: string[],
  int64 = true
): { batch: EncoderBatch; rows: number[][]; attention: number[][]; pool: number[][] } {
  const rows = texts.map(t => encoder.tokenizer.encode(t).ids)
  const T = Math.max(...rows.map(r => r.length))
  const B = rows.length
  const ids = int64 ? new BigInt64Array(B * T) : new Int32Array(B * T)
  const attentionBytes = new Uint8Array(B * T)
  const poolMask = new Float32Array(B * T)
  const attention: number[][] = []
  const pool: number[][] = []
  const padded: number[][] = []
  rows.forEach((r, b) => {
    const row = Array.from({ length: T }, (_, t) => (t < r.length ? r[t] : encoder.padTokenId))
    padded.push(row)
    attention.push(row.map((_, t) => (t < r.length ? 1 : 0)))
    pool.push(row.map((id, t) => (t < r.length && !encoder.specialTokenIds.has(id) ? 1 : 0)))
    for (let t = 0; t < T; t++) {
      if (ids instanceof BigInt64Array) ids[b * T + t] = BigInt(row[t])
      else ids[b * T + t] = row[t]
      attentionBytes[b * T + t] = attention[b][t]
      poolMask[b * T + t] = pool[b][t]
    }
  })
  return { batch: { ids, attention: attentionBytes, poolMask, batchSize: B, seqLen: T }, rows: padded, attention, pool }
}

test('an encoder folder loads: info, tokenizer ids, special tokens, labels, defaults from the SAE', () => {
  assert.equal(encoder.info.id, 'tiny')
  assert.equal(encoder.info.hookName, HOOK)
  assert.equal(encoder.info.dIn, D)
  assert.equal(encoder.info.dSae, S)
  assert.equal(encoder.info.architecture, 'topk')
  assert.equal(encoder.info.maxTokens, 64, 'maxTokens defaults to the SAE context_size')
  assert.equal(encoder.info.labelled, 2)
  assert.equal(encoder.info.fingerprint, encoder.baseFingerprint)
  assert.match(encoder.baseFingerprint, /^[0-9a-f]{64}$/)
  assert.equal(encoder.labels[3], 'whales')
  assert.equal(encoder.labels[0], null)
  assert.equal(encoder.labelSources[7], 'test')
  assert.equal(encoder.labels.length, S)
  assert.equal(encoder.bosTokenId, 1)
  assert.equal(encoder.eosTokenId, 2)
  assert.equal(encoder.padTokenId, 2, 'no pad token: the eos id pads')
  assert.deepEqual([...encoder.specialTokenIds].sort(), [0, 1, 2])
  const ids = encoder.tokenizer.encode('Call me Ishmael.').ids
  assert.equal(ids[0], 1, 'the Llama 2 post-processor adds BOS')
  assert.equal(
    ids
      .map((id: number) => encoder.tokenText(id))
      .slice(1)
      .join(''),
    ' Call me Ishmael.'
  )
  assert.equal(encoder.tokenText(13), '\n', 'byte-fallback token <0x0A>')
  assert.equal(encoder.prepareContext.maxTokens, 64)
  assert.equal(encoder.prepareContext.longDocuments, 'truncate')
  assert.equal(encoder.prepareContext.prependBos, true)
})

test('the pooling session matches the float64 reference on tokenized text (int64 and int32 ids)', async () => {
  const session = await encoder.createPoolingSession({ method: 'max', outlierNormRatio: 100 })
  assert.equal(session.provider, 'cpu')
  for (const int64 of [true, false]) {
    const { batch, rows, attention, pool } = batchOf(
      ['Call me Ishmael. Some years ago, never mind how long precisely.', 'It was the best of times.'],
      int64
    )
    const out = await session.run(batch)
    assert.equal(out.pooled.length, 2 * S)
    assert.ok(out.argmax instanceof Int32Array && out.outliers instanceof Int32Array)
    for (let b = 0; b < 2; b++) {
      const doc = referenceDocument(reader, 1, sae, rows[b], attention[b], pool[b], 100)
      const ref = referencePool(doc, 'max', S)
      const scale = Math.max(1e-3, ...ref.max)
      assert.equal(out.outliers[b], doc.outliers)
      let active = 0
      for (let s = 0; s < S; s++) {
        assert.ok(Math.abs(out.pooled[b * S + s] - ref.pooled[s]) <= 1e-4 * scale, `doc ${b} latent ${s}`)
        if (ref.max[s] > 0) {
          active++
          const p = out.argmax[b * S + s]
          assert.ok(pool[b][p] === 1 && doc.acts[p][s] >= ref.max[s] - 1e-4 * scale)
        }
      }
      assert.ok(active > 4)
    }
  }
  await session.release()
})

test('token activations and reader-only sessions run on the same batch', async () => {
  const { batch } = batchOf(['Call me Ishmael.', 'It was the best of times, it was the worst of times.'])
  const tokens = await encoder.createTokenActivationsSession()
  const res = await tokens.run(batch)
  assert.equal(res.activations.length, batch.batchSize * batch.seqLen * S)
  assert.equal(res.norms.length, batch.batchSize * batch.seqLen)
  assert.deepEqual(
    Array.from(res.poolMask),
    Array.from(batch.poolMask),
    'no outliers here: the pool mask comes back unchanged'
  )
  const pooling = await encoder.createPoolingSession({ method: 'max', outlierNormRatio: 100 })
  const pooled = await pooling.run(batch)
  // The max over pooled tokens of the per-token activations is the pooled value.
  for (let b = 0; b < batch.batchSize; b++) {
    for (let s = 0; s < S; s++) {
      let m = 0
      for (let t = 0; t < batch.seqLen; t++)
        if (res.poolMask[b * batch.seqLen + t]) m = Math.max(m, res.activations[(b * batch.seqLen + t) * S + s])
      assert.ok(Math.abs(m - pooled.pooled[b * S + s]) <= 1e-6 * Math.max(1, m))
    }
  }
  const readerOnly = await encoder.createReaderOnlySession()
  const r = await readerOnly.run(batch)
  assert.equal(r.hiddenSum.length, batch.batchSize)
  assert.ok(r.hiddenSum.every(Number.isFinite))
  await Promise.all([tokens.release(), pooling.release(), readerOnly.release()])
  await assert.rejects(pooling.run(batch))
})

test('a batch padded to a rounded length pools the same values at the same tokens (float32 and int8)', async () => {
  const ids = encoder.tokenizer.encode(
    'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, and nothing particular to interest me on shore, I thought I would sail about a little and see the watery part of the world.'
  ).ids
  assert.ok(ids.length >= 53, `${ids.length} tokens`)
  const window = (n: number) => {
    const w = Int32Array.from(ids.slice(0, n))
    return { ids: w, poolMask: Uint8Array.from(w, id => (encoder.specialTokenIds.has(id) ? 0 : 1)) }
  }
  const seqs = [window(53), window(30)]
  const plain = packBatch(seqs, encoder.padTokenId)
  const rounded = packBatch(seqs, encoder.padTokenId, encoder.info.maxTokens)
  assert.deepEqual([plain.seqLen, rounded.seqLen], [53, 54], '53 is prime; 54 splits in blocks of 9')
  const int8 = await loadEncoder(await encoderFolder('rounded-int8'), {
    ...quiet,
    intraOpNumThreads: 1,
    saeDtype: 'int8'
  })
  for (const [saeDtype, e] of [
    ['float32', encoder],
    ['int8', int8]
  ] as const) {
    const session = await e.createPoolingSession({ method: 'max', outlierNormRatio: 100 })
    const a = await session.run(plain)
    const b = await session.run(rounded)
    assert.deepEqual(Array.from(b.argmax), Array.from(a.argmax), saeDtype)
    assert.deepEqual(Array.from(b.outliers), Array.from(a.outliers), saeDtype)
    for (let i = 0; i < a.pooled.length; i++)
      assert.ok(Math.abs(a.pooled[i] - b.pooled[i]) <= 1e-5 * Math.max(1, Math.abs(a.pooled[i])), `${saeDtype} ${i}`)
    assert.ok(a.pooled.some(v => v > 0))
    await session.release()
  }
  await int8.close()
})

test('a batch whose arrays do not fill batchSize x seqLen is refused', async () => {
  const session = await encoder.createPoolingSession({ method: 'sum', outlierNormRatio: 100 })
  const { batch } = batchOf(['a b c'])
  await assert.rejects(session.run({ ...batch, seqLen: batch.seqLen + 1 }), /must each hold batchSize x seqLen/)
  await session.release()
})

test('fingerprints: stable across loads, changed by weights, config or tokenizer; dataset fingerprint covers pooling', async () => {
  const again = await loadEncoder(await encoderFolder('ok-again'), quiet)
  assert.equal(again.baseFingerprint, encoder.baseFingerprint, 'same files, same fingerprint')
  const otherSae = await loadEncoder(await encoderFolder('other-sae'), quiet)
  await writeTinySae(join(root, 'other-sae', 'sae'), {
    architecture: 'topk',
    k: 8,
    dIn: D,
    dSae: S,
    hookName: HOOK,
    contextSize: 64,
    seed: 99
  })
  const reloaded = await loadEncoder(join(root, 'other-sae'), quiet)
  assert.equal(otherSae.baseFingerprint, encoder.baseFingerprint)
  assert.notEqual(reloaded.baseFingerprint, encoder.baseFingerprint, 'different SAE weights')
  const otherConfig = await loadEncoder(
    await encoderFolder('other-config', c => ({ ...c, reader: { ...c.reader, preprocess: 'center' } })),
    quiet
  )
  assert.notEqual(otherConfig.baseFingerprint, encoder.baseFingerprint, 'different preprocessing')
  const otherTok = await loadEncoder(
    await encoderFolder('other-tok', c => c, {
      'tokenizer/tokenizer_config.json': JSON.stringify({ bos_token: '<s>', eos_token: '</s>', pad_token: '<unk>' })
    }),
    quiet
  )
  assert.notEqual(otherTok.baseFingerprint, encoder.baseFingerprint, 'different tokenizer config')
  assert.equal(otherTok.padTokenId, 0)
  const labels = await loadEncoder(
    await encoderFolder('other-labels', c => c, { 'labels.jsonl': '{"latent": 1, "label": "x"}\n' }),
    quiet
  )
  assert.equal(labels.baseFingerprint, encoder.baseFingerprint, 'labels do not change latent values')
  assert.notEqual(labels.info.labelsVersion, encoder.info.labelsVersion, 'but they change what answers show')
  assert.equal(again.info.labelsVersion, encoder.info.labelsVersion)

  const base = encoder.baseFingerprint
  const fp = datasetFingerprint(base, { method: 'max', outlierNormRatio: 100 }, 64, 'truncate')
  assert.match(fp, /^[0-9a-f]{64}$/)
  assert.equal(fp, datasetFingerprint(base, { outlierNormRatio: 100, method: 'max' }, 64, 'truncate'))
  const variants = [
    datasetFingerprint(base, { method: 'mean', outlierNormRatio: 100 }, 64, 'truncate'),
    datasetFingerprint(base, { method: 'max', outlierNormRatio: 50 }, 64, 'truncate'),
    datasetFingerprint(base, { method: 'max', outlierNormRatio: 100 }, 128, 'truncate'),
    datasetFingerprint(base, { method: 'max', outlierNormRatio: 100 }, 64, 'window'),
    datasetFingerprint(reloaded.baseFingerprint, { method: 'max', outlierNormRatio: 100 }, 64, 'truncate')
  ]
  assert.equal(new Set([fp, ...variants]).size, 6)
})

test('a requested accelerator that is missing falls back to CPU with a log line', async () => {
  const lines: string[] = []
  const e = await loadEncoder(join(root, 'ok'), { executionProviders: ['cuda'], log: l => lines.push(l) })
  const session = await e.createPoolingSession({ method: 'max', outlierNormRatio: 100 })
  if (session.provider === 'cpu')
    assert.ok(
      lines.some(l => /cuda unavailable .*falling back to CPU/.test(l)),
      lines.join('\n')
    )
  assert.ok(lines.some(l => /running on/.test(l)))
  const { batch } = batchOf(['hello'])
  assert.equal((await session.run(batch)).pooled.length, S)
  await e.close()
})

test('configuration errors name the file and field', async () => {
  const cases: Array<[string, (c: ReturnType<typeof baseConfig>) => unknown, RegExp, Record<string, string>?]> = [
    // No reader.output and a hook (from the SAE) that neither hidden_states.<i> nor the stacked output holds: two candidates.
    [
      'no-output',
      c => ({ ...c, reader: { ...c.reader, output: undefined, hookName: undefined } }),
      /encoder\.json: reader\.output cannot be inferred from the reader graph: the hook "blocks\.3\.hook_resid_post" is hidden_states\[4\], and 2 outputs could be its hidden states \(hidden_states\.0, hidden_states\.1\)\. The graph's outputs: hidden_states\.0 \(float32 \[batch, tokens, 16\]\), .*logits/,
      {
        'sae/cfg.json': JSON.stringify({
          d_in: D,
          d_sae: S,
          architecture: 'standard',
          metadata: { hook_name: 'blocks.3.hook_resid_post', context_size: 64 }
        })
      }
    ],
    ['bad-id', c => ({ ...c, id: 'Has Spaces' }), /encoder\.json: id: encoder id/],
    [
      'hook',
      c => ({ ...c, reader: { ...c.reader, hookName: 'blocks.5.hook_resid_post' } }),
      /encoder\.json: reader\.hookName is "blocks\.5\.hook_resid_post" but the SAE's sae\/cfg\.json says metadata\.hook_name "blocks\.0\.hook_resid_post"/
    ],
    [
      'no-model',
      c => ({ ...c, reader: { ...c.reader, model: 'missing.onnx' } }),
      /encoder\.json: reader\.model: .*missing\.onnx cannot be read \(ENOENT\)/
    ],
    [
      'no-tokenizer',
      c => ({ ...c, reader: { ...c.reader, tokenizer: 'nope.json' } }),
      /encoder\.json: reader\.tokenizer: .*nope\.json cannot be read/
    ],
    [
      'no-sae',
      c => ({ ...c, sae: { format: 'saelens', path: 'elsewhere' } }),
      /encoder\.json: sae\.path: .*elsewhere\/cfg\.json cannot be read/
    ],
    [
      'unknown-input',
      c => ({ ...c, reader: { ...c.reader, inputs: { ids: 'input_id' } } }),
      /encoder\.json: reader\.inputs\.ids is "input_id" but the reader graph has no such input; its inputs: input_ids \(int64 \[batch, tokens\]\), attention_mask \(int64 \[batch, tokens\]\)/
    ],
    [
      'bad-output',
      c => ({ ...c, reader: { ...c.reader, output: 'hidden_states.9' } }),
      /reader\.onnx: reader model: no value named "hidden_states\.9"/
    ],
    [
      'bad-labels',
      c => c,
      /labels\.jsonl: 1 bad line: line 2: latent 999 is outside 0\.\.39/,
      { 'labels.jsonl': '{"latent": 1, "label": "a"}\n{"latent": 999, "label": "b"}\n' }
    ],
    [
      'bad-sae-cfg',
      c => c,
      /sae\/cfg\.json: d_sae is 41 but W_enc has shape \[16, 40\]/,
      {
        'sae/cfg.json': JSON.stringify({
          d_in: D,
          d_sae: 41,
          architecture: 'standard',
          metadata: { hook_name: HOOK, context_size: 64 }
        })
      }
    ],
    [
      'no-max-tokens',
      c => c,
      /encoder\.json: reader\.maxTokens is not set and sae\/cfg\.json has no metadata\.context_size/,
      { 'sae/cfg.json': JSON.stringify({ d_in: D, d_sae: S, architecture: 'standard', metadata: { hook_name: HOOK } }) }
    ]
  ]
  for (const [name, edit, pattern, files] of cases) {
    await assert.rejects(loadEncoder(await encoderFolder(`err-${name}`, edit, files ?? {}), quiet), pattern, name)
  }
  await assert.rejects(
    loadEncoder(join(root, 'does-not-exist'), quiet),
    /encoder\.json: cannot be read \(is this an encoder folder\?\)/
  )
  const explicit = await loadEncoder(
    await encoderFolder('max-tokens', c => ({ ...c, reader: { ...c.reader, maxTokens: 32, longDocuments: 'window' } })),
    quiet
  )
  assert.equal(explicit.info.maxTokens, 32)
  assert.equal(explicit.prepareContext.longDocuments, 'window')
})

test('a released session is reused by the next one over the same graph, and only by it', async () => {
  const opened: string[] = []
  const e = await loadEncoder(await encoderFolder('reuse'), {
    intraOpNumThreads: 1,
    log: line => {
      if (/running on/.test(line)) opened.push(line)
    }
  })
  try {
    const { batch } = batchOf([
      'Call me Ishmael. Some years ago, never mind how long precisely.',
      'It was the best of times.'
    ])
    const max = { method: 'max' as const, outlierNormRatio: 100 }
    const first = await e.createPoolingSession(max)
    const expected = await first.run(batch)
    await first.release()
    await assert.rejects(first.run(batch), /released/, 'a released handle no longer runs')
    const again = await e.createPoolingSession(max)
    assert.deepEqual(await again.run(batch), expected)
    assert.equal(opened.length, 1, 'the second session over the same graph was the first one, kept')
    // Another graph while one is in use opens its own; on release the kept session is replaced, never doubled.
    const sum = await e.createPoolingSession({ method: 'sum', outlierNormRatio: 100 })
    assert.equal(opened.length, 2)
    await again.release()
    await sum.release()
    const maxAgain = await e.createPoolingSession(max)
    assert.equal(opened.length, 3, 'only the last released session is kept')
    assert.deepEqual(await maxAgain.run(batch), expected)
    await maxAgain.release()
    // Token activations (a document shown token by token, one request after another) are kept the same way.
    const selected = { ...batch, latentIds: Int32Array.of(0, 3) }
    const tokens = await e.createTokenActivationsSession({ selectLatents: true })
    assert.equal(opened.length, 4, 'a kept pooling session is not a token-activations one')
    const perToken = await tokens.run(selected)
    await tokens.release()
    const tokensAgain = await e.createTokenActivationsSession({ selectLatents: true })
    assert.equal(opened.length, 4, 'the next document reuses the kept token-activations session')
    assert.deepEqual(await tokensAgain.run(selected), perToken)
    await tokensAgain.release()
    const all = await e.createTokenActivationsSession()
    assert.equal(opened.length, 5, 'every latent is another graph')
    await all.release()
  } finally {
    await e.close()
  }
})
