/** @module onnxruntime-node sessions over an encoder's fused graphs: provider choice with a CPU fallback, batch feeds, outputs as typed arrays. */
import { createHash } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { dirname, join } from 'node:path'
import { InferenceSession, Tensor } from 'onnxruntime-node'
import type { SaeWeights } from './architectures/index.ts'
import { writeModelWithExternalData } from './external-data.ts'
import {
  buildPooledGraph,
  buildReaderOnlyGraph,
  buildTokenActivationsGraph,
  POOL_MASK_INPUT,
  type ComposedGraph,
  type GraphInput,
  type ReaderGraphOptions,
  LATENT_IDS_INPUT,
  EXAMPLE_ALL_INPUT,
  EXAMPLE_THRESHOLD_INPUT
} from './fused-graph.ts'
import type { ReaderInputNames } from './reader-inference.ts'
import type {
  EncoderBatch,
  EncoderSession,
  LoadedEncoder,
  LoadEncoderOptions,
  PoolingSession,
  TokenActivationsSession
} from './runtime.ts'

export function requestedProviders(opts: LoadEncoderOptions = {}): string[] {
  if (opts.executionProviders?.length) return opts.executionProviders
  return process.env.LATENTBASE_DEVICE === 'cuda' ? ['cuda'] : ['cpu']
}

function threadCount(opts: LoadEncoderOptions): number {
  if (opts.intraOpNumThreads) return opts.intraOpNumThreads
  const env = Number(process.env.LATENTBASE_INTRA_OP_THREADS)
  return Number.isInteger(env) && env > 0 ? env : availableParallelism()
}

/** Create a session on the requested providers; if an accelerator is missing, fall back to CPU and say so. */
async function createSession(
  bytes: Uint8Array | string,
  opts: LoadEncoderOptions,
  what: string
): Promise<{ session: InferenceSession; provider: string }> {
  const log = opts.log ?? ((line: string) => console.log(line))
  const providers = requestedProviders(opts)
  const base: InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', intraOpNumThreads: threadCount(opts) }
  const accelerated = providers.filter(p => p !== 'cpu')
  if (accelerated.length) {
    try {
      const session = await (typeof bytes === 'string'
        ? InferenceSession.create(bytes, {
            ...base,
            executionProviders: [
              ...accelerated.map(name => ({ name })),
              'cpu'
            ] as InferenceSession.ExecutionProviderConfig[]
          })
        : InferenceSession.create(bytes, {
            ...base,
            executionProviders: [
              ...accelerated.map(name => ({ name })),
              'cpu'
            ] as InferenceSession.ExecutionProviderConfig[]
          }))
      log(`[encoder] ${what}: running on ${accelerated.join(', ')} (cpu for unsupported nodes)`)
      return { session, provider: accelerated[0] }
    } catch (err) {
      log(
        `[encoder] ${what}: execution provider ${accelerated.join(', ')} unavailable (${(err as Error).message.split('\n')[0]}); falling back to CPU`
      )
    }
  }
  // No memory pattern on the CPU: it lays out a fresh block for every new batch shape (tens of thousands of page
  // faults each with the int8 product's three [B, T, S] values); the arena alone reuses its chunks. Measured over 8
  // shapes, GPT-2-small shape: int8 906-910 -> 824-837 ms per 1,024 tokens, float32 unchanged (947-949 / 941-964).
  const cpu: InferenceSession.SessionOptions = { ...base, enableMemPattern: false, executionProviders: ['cpu'] }
  const session = await (typeof bytes === 'string'
    ? InferenceSession.create(bytes, cpu)
    : InferenceSession.create(bytes, cpu))
  log(`[encoder] ${what}: running on cpu (${base.intraOpNumThreads} threads)`)
  return { session, provider: 'cpu' }
}

/** What the sessions of one loaded encoder are built from. */
export interface SessionSource {
  id: string
  readerBytes: Uint8Array
  readerPath: string
  readerSideFiles: string[]
  sae: SaeWeights
  readerOpts: ReaderGraphOptions
  /** The reader inputs the pruned graph needs, and which of them is ids / mask / positions. */
  readerInputs: GraphInput[]
  inputs: ReaderInputNames
  /** Composed graphs of external-data readers are written under it. */
  cacheDir: string
  opts: LoadEncoderOptions
}

type Sessions = Pick<
  LoadedEncoder,
  'createPoolingSession' | 'createTokenActivationsSession' | 'createReaderOnlySession' | 'close'
>

/** The session factories of a loaded encoder; `close` releases every session still open. */
export function encoderSessions(src: SessionSource): Sessions {
  const { readerBytes, sae, readerOpts, readerInputs, inputs } = src
  const feeds = (batch: EncoderBatch, withPoolMask: boolean): Record<string, Tensor> => {
    const { batchSize: B, seqLen: T } = batch
    const n = B * T
    if (batch.ids.length !== n || batch.attention.length !== n || batch.poolMask.length !== n) {
      throw new Error(
        `batch: ids (${batch.ids.length}), attention (${batch.attention.length}) and poolMask (${batch.poolMask.length}) must each hold batchSize x seqLen = ${n} values`
      )
    }
    const out: Record<string, Tensor> = {}
    for (const input of readerInputs) {
      let values: ArrayLike<number> | ArrayLike<bigint>
      if (input.name === inputs.ids) values = batch.ids
      else if (input.name === inputs.mask) values = batch.attention
      else {
        const positions = new Int32Array(n)
        for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) positions[b * T + t] = t
        values = positions
      }
      out[input.name] = toTensor(values, input.type, [B, T])
    }
    if (withPoolMask) out[POOL_MASK_INPUT] = new Tensor('float32', batch.poolMask, [B, T])
    return out
  }

  const sessions: InferenceSession[] = []
  const open = async (graph: ComposedGraph, what: string) => {
    // onnxruntime resolves external data only for a model file on disk, relative to it: write the composed graph
    // into the cache beside links to the reader's side files and its own (an SAE past the 2 GB protobuf limit), in
    // a folder named by the hash of both (the graph alone names offsets, not the weights).
    const side = graph.externalData
    const hash = createHash('sha256').update(graph.bytes)
    if (side) hash.update(side.bytes)
    const model =
      src.readerSideFiles.length || side
        ? await writeModelWithExternalData(
            join(src.cacheDir, 'composed', hash.digest('hex').slice(0, 24)),
            'model.onnx',
            graph.bytes,
            side ?? null,
            dirname(src.readerPath),
            src.readerSideFiles
          )
        : graph.bytes
    const { session, provider } = await createSession(model, src.opts, `${src.id} ${what}`)
    sessions.push(session)
    return { session, provider }
  }
  /** A session over one composed graph; release() takes it out of the encoder's list. */
  const sessionOver = async <R>(
    graph: ComposedGraph,
    what: string,
    run: (session: InferenceSession, batch: EncoderBatch) => Promise<R>
  ): Promise<EncoderSession<R>> => {
    const { session, provider } = await open(graph, what)
    return {
      provider,
      async release() {
        const i = sessions.indexOf(session)
        if (i >= 0) {
          sessions.splice(i, 1)
          await session.release()
        }
      },
      run: batch => run(session, batch)
    }
  }

  const openPoolingSession = async (
    pooling: Parameters<Sessions['createPoolingSession']>[0],
    o: NonNullable<Parameters<Sessions['createPoolingSession']>[1]>
  ): Promise<PoolingSession> => {
    const graph = buildPooledGraph(readerBytes, sae, {
      ...readerOpts,
      method: pooling.method,
      outlierNormRatio: pooling.outlierNormRatio,
      examples: o.examples
    })
    return sessionOver(
      graph,
      `pooling (${pooling.method})${o.examples ? ' + top examples' : ''}`,
      async (session, batch) => {
        const input = feeds(batch, true)
        if (o.examples) {
          const threshold = batch.exampleThreshold ?? new Float32Array(sae.dSae)
          const all = batch.exampleAll ?? new Float32Array(batch.batchSize)
          if (threshold.length !== sae.dSae || all.length !== batch.batchSize) {
            throw new Error(
              `batch: exampleThreshold must hold dSae = ${sae.dSae} values and exampleAll batchSize = ${batch.batchSize}`
            )
          }
          input[EXAMPLE_THRESHOLD_INPUT] = new Tensor('float32', threshold, [sae.dSae])
          input[EXAMPLE_ALL_INPUT] = new Tensor('float32', all, [batch.batchSize])
        }
        const r = await session.run(input)
        return {
          pooled: r.pooled.data as Float32Array,
          argmax: int32Of(r.argmax.data as BigInt64Array),
          outliers: int32Of(r.outliers.data as BigInt64Array),
          ...(o.examples
            ? {
                examples: {
                  index: int32Of(r.example_index.data as BigInt64Array),
                  activations: r.example_activations.data as Float32Array,
                  width: 2 * o.examples.halfWindow + 1
                }
              }
            : {})
        }
      }
    )
  }

  const openTokenActivationsSession = async (
    outlierNormRatio: number,
    selectLatents: boolean | undefined
  ): Promise<TokenActivationsSession> => {
    const graph = buildTokenActivationsGraph(readerBytes, sae, { ...readerOpts, outlierNormRatio, selectLatents })
    return sessionOver(graph, 'token activations', async (session, batch) => {
      const input = feeds(batch, true)
      if (selectLatents) {
        if (!batch.latentIds?.length)
          throw new Error('this token-activations session returns selected latents: give batch.latentIds')
        input[LATENT_IDS_INPUT] = new Tensor('int64', BigInt64Array.from(batch.latentIds, BigInt), [
          batch.latentIds.length
        ])
      }
      const r = await session.run(input)
      return {
        activations: r.activations.data as Float32Array,
        norms: r.norms.data as Float32Array,
        poolMask: r.pool_mask_out.data as Float32Array,
        ...(r.token_max ? { tokenMax: r.token_max.data as Float32Array } : {})
      }
    })
  }

  // A released session waits for the next one over the same graph (the next part of a job, the next document shown
  // token by token): composing, serializing and optimizing the graph takes seconds at a real reader's size, which a
  // GPU would otherwise pay for every part. One at most, released before another is opened, so memory (a GPU's too)
  // never holds two idle readers.
  let idle: { key: string; session: EncoderSession<unknown> } | null = null
  const dropIdle = async () => {
    const last = idle
    idle = null
    await last?.session.release()
  }
  const reusable = <R>(key: string, session: EncoderSession<R>): EncoderSession<R> => {
    let released = false
    return {
      provider: session.provider,
      run: batch => {
        if (released) return Promise.reject(new Error('this session was released'))
        return session.run(batch)
      },
      async release() {
        if (released) return
        released = true
        await dropIdle()
        idle = { key, session }
      }
    }
  }
  const reuseOrOpen = async <R>(key: string, open: () => Promise<EncoderSession<R>>): Promise<EncoderSession<R>> => {
    if (idle?.key === key) {
      const reused = idle.session as EncoderSession<R>
      idle = null
      return reusable(key, reused)
    }
    await dropIdle()
    return reusable(key, await open())
  }

  return {
    async createPoolingSession(pooling, o = {}) {
      const key = JSON.stringify(['pooling', pooling.method, pooling.outlierNormRatio, o.examples?.halfWindow ?? null])
      return reuseOrOpen(key, () => openPoolingSession(pooling, o))
    },

    async createTokenActivationsSession(o = {}) {
      const outlierNormRatio = o.outlierNormRatio ?? 100
      const key = JSON.stringify(['tokens', outlierNormRatio, o.selectLatents ?? false])
      return reuseOrOpen(key, () => openTokenActivationsSession(outlierNormRatio, o.selectLatents))
    },

    async createReaderOnlySession() {
      const graph = buildReaderOnlyGraph(readerBytes, readerOpts)
      return sessionOver(graph, 'reader only', async (session, batch) => {
        const r = await session.run(feeds(batch, false))
        return { hiddenSum: r.hidden_sum.data as Float32Array }
      })
    },

    async close() {
      idle = null
      const all = sessions.splice(0)
      await Promise.all(all.map(s => s.release()))
    }
  }
}

function int32Of(values: BigInt64Array): Int32Array {
  const out = new Int32Array(values.length)
  for (let i = 0; i < values.length; i++) out[i] = Number(values[i])
  return out
}

function toTensor(values: ArrayLike<number> | ArrayLike<bigint>, type: GraphInput['type'], dims: number[]): Tensor {
  const n = values.length
  switch (type) {
    case 'int64': {
      if (values instanceof BigInt64Array) return new Tensor('int64', values, dims)
      const out = new BigInt64Array(n)
      for (let i = 0; i < n; i++) out[i] = BigInt(values[i] as number)
      return new Tensor('int64', out, dims)
    }
    case 'int32': {
      if (values instanceof Int32Array) return new Tensor('int32', values, dims)
      return new Tensor('int32', Int32Array.from(values as ArrayLike<number>, Number), dims)
    }
    case 'float32':
      return new Tensor('float32', Float32Array.from(values as ArrayLike<number>, Number), dims)
    case 'bool':
      return new Tensor(
        'bool',
        Uint8Array.from(values as ArrayLike<number>, v => (Number(v) ? 1 : 0)),
        dims
      )
    case 'float16':
      throw new Error('reader inputs of type float16 are not supported')
  }
}
