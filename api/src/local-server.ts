/** @module The all-in-one local deployment: API + in-process durable queue + worker on the CPU, storing under DATA_DIR. */
import { ApiKeyStore } from '@latentbase/shared/auth/api-keys'
import { join, resolve } from 'node:path'
import { serve, type ServerType } from '@hono/node-server'
import type { Server } from 'node:http'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { JobMessage as JobMessageSchema } from '@latentbase/shared/contract/job'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { runConsumer } from '@latentbase/shared/queue/consumer'
import { handleJob, onDeadLetter, type WorkerDeps } from '@latentbase/gpu-worker/job/handler'
import { catalogOf, findEncoderFolders, loadEncoders } from '@latentbase/gpu-worker/registry'
import type { LoadedEncoder } from '@latentbase/gpu-worker/encode/runtime'
import { encoderWindowMiner } from '@latentbase/gpu-worker/job/window-miner'
import { encoderTextEncoder } from '@latentbase/gpu-worker/job/text-encoder'
import { encoderDocumentActivations, encoderTextActivations } from '@latentbase/gpu-worker/job/document-activations'
import type { WindowMiner } from './services/context.ts'
import { embedderFromEnv } from '@latentbase/shared/embeddings/openai'
import {
  warmLabelEmbeddings,
  warmLabelEmbeddingsFromEnv,
  type LabelWarmResult
} from '@latentbase/shared/embeddings/label-warm'
import { labelCache } from './services/label-match.ts'
import { configureNodeServer } from '@latentbase/shared/net/node-server'
import { createApp } from './app.ts'
import { withWebAssets, WEB_DIST } from './web-assets.ts'
import { startLocalAnalysis } from './services/analysis-local.ts'
import { LOCAL_SIMILAR_BLOCK_ENTRIES } from './services/similar-service.ts'

export interface LocalOptions {
  dataDir?: string
  port?: number
  hostname?: string
  encodersDir?: string
  /** Already-loaded encoders (tests share one across servers). */
  encoders?: Map<string, LoadedEncoder>
  log?: (line: string) => void
  workerConcurrency?: number
  encodeOptions?: WorkerDeps['encodeOptions']
  /**
   * How long a job taken by a worker that then dies stays hidden before another takes it (default 120 s; the
   * heartbeat renews it every quarter while the worker lives).
   */
  visibilitySeconds?: number
  /** Deliveries of a job message before it is dead-lettered and its dataset failed (default 4, the SQS redrive of the deployment). */
  maxReceives?: number
  /** Embed the encoders' labels into the store at start-up (default: LATENTBASE_WARM_LABEL_EMBEDDINGS, on). */
  warmLabelEmbeddings?: boolean
  /** The web interface's build served at / (default web/dist; WEB_DIR overrides). */
  webDir?: string
}

export interface LocalServer {
  url: string
  port: number
  /** The encoders' label embeddings, written to the store at start-up unless LATENTBASE_WARM_LABEL_EMBEDDINGS=off. */
  labelsWarmed: Promise<LabelWarmResult[]>
  close(): Promise<void>
}

export async function startLocal(options: LocalOptions = {}): Promise<LocalServer> {
  const log = options.log ?? ((line: string) => console.log(line))
  const dataDir = resolve(options.dataDir ?? process.env.DATA_DIR ?? '.data')
  const objects = new FsObjectStore(join(dataDir, 'store'))
  const datasets = new DatasetStore(objects)
  const encoders =
    options.encoders ??
    (await loadEncoders(await findEncoderFolders(options.encodersDir ?? process.env.ENCODERS_DIR), log))
  if (encoders.size === 0)
    log('[local] no encoder loaded: POST /datasets will refuse every request (run `npm ci` to build the demo encoder)')

  let deadLetter: (job: JobMessage, reason: string) => Promise<void> = async () => {}
  const queue = new EmbeddedQueue<JobMessage>(join(dataDir, 'queue'), {
    maxReceives: options.maxReceives ?? 4,
    deadLetter: (message, reason) => deadLetter(message.body, reason)
  })
  const workerDeps: WorkerDeps = {
    objects,
    datasets,
    queue,
    allowLocalSources: true,
    log,
    encoder: async id => encoders.get(id),
    encodeOptions: options.encodeOptions
  }
  deadLetter = (job, reason) => onDeadLetter(workerDeps, job, reason)

  const catalog = catalogOf(encoders)
  // An OpenAI-compatible embeddings endpoint when EMBEDDINGS_BASE_URL is set, else the offline hashing embedder.
  const embedder = embedderFromEnv(process.env)
  // This process holds the encoders: relabelling can re-encode documents sampled across activation quantiles.
  const windowMiner: WindowMiner = encoderWindowMiner(objects, encoders)
  // The encoders' label embeddings go into the store now, in the background, so the first search finds them there; a
  // search that comes meanwhile waits for the same work (this is the cache the API's searches use).
  const labelsWarmed =
    (options.warmLabelEmbeddings ?? warmLabelEmbeddingsFromEnv())
      ? warmLabelEmbeddings(labelCache(objects), encoders.values(), embedder, log)
      : Promise.resolve([])
  const analysis = startLocalAnalysis({ dataDir, objects, datasets, encoders: catalog, embedder, log, windowMiner })
  // API_KEYS=required: the local server checks keys (made with `npm run keys -- create --tenant NAME`) like a deployment.
  const apiKeys = process.env.API_KEYS === 'required' ? new ApiKeyStore(objects) : undefined
  const app = createApp({
    objects,
    datasets,
    queue,
    encoders: catalog,
    mode: 'local',
    tenantOf: () => 'local',
    embedder,
    analysisQueue: analysis.queue,
    apiKeys,
    windowMiner,
    textEncoder: encoderTextEncoder(encoders),
    documentActivations: encoderDocumentActivations(objects, encoders),
    textActivations: encoderTextActivations(encoders),
    similarBlockEntries: Number(process.env.LATENTBASE_SIMILAR_BLOCK_ENTRIES) || LOCAL_SIMILAR_BLOCK_ENTRIES
  })
  const abort = new AbortController()
  const consumer = runConsumer(
    queue,
    async message => {
      const job = JobMessageSchema.parse(message.body)
      await handleJob(job, workerDeps, abort.signal, message)
    },
    {
      concurrency: options.workerConcurrency ?? 1,
      visibilitySeconds: options.visibilitySeconds ?? 120,
      heartbeatSeconds: (options.visibilitySeconds ?? 120) / 4,
      signal: abort.signal,
      onError: err => log(`[worker] job failed, will be retried: ${(err as Error).stack ?? err}`)
    }
  )

  const server: ServerType = await new Promise(ok => {
    const s = serve(
      {
        fetch: withWebAssets(app.fetch, options.webDir ?? process.env.WEB_DIR ?? WEB_DIST),
        port: options.port ?? 8787,
        hostname: options.hostname ?? '127.0.0.1'
      },
      () => ok(s)
    )
    // Idle keep-alive connections outlive any client's reuse of them (Node's default 5 s raced the SDK's polling).
    configureNodeServer(s as Server)
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 8787)
  const url = `http://${options.hostname ?? '127.0.0.1'}:${port}`
  log(
    `[local] Latentbase on ${url} (data in ${dataDir}; local mode: ${apiKeys ? 'API keys required' : 'no API keys (API_KEYS=required to check them)'}, loopback and file sources allowed)`
  )
  return {
    url,
    port,
    labelsWarmed,
    async close() {
      await labelsWarmed
      abort.abort()
      await new Promise<void>(ok => server.close(() => ok()))
      await consumer
      await queue.close()
      await analysis.close()
    }
  }
}
