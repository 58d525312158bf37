/**
 * @module The API as a Cloudflare Worker: the same Hono app, with edge adapters (R2 store, Cloudflare Queues
 * producer, the encoder catalog the GPU worker publishes to the store, API keys in R2). Cloud mode: keys required.
 * Nothing here may import node: modules or the AWS SDK (see wrangler.jsonc and api/src/worker.test.ts).
 */
import type { JobMessage } from '@latentbase/shared/contract/job'
import type { AnalysisQueueMessage } from '@latentbase/shared/contract/analysis-job'
import { R2ObjectStore, type R2BucketLike } from '@latentbase/shared/store/r2-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { CfQueueProducer, type CfQueueLike } from '@latentbase/shared/queue/cf-queue-producer'
import { SqsFetchProducer } from '@latentbase/shared/queue/sqs-fetch-producer'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import { StoreEncoderCatalog } from '@latentbase/shared/catalog/store-catalog'
import { ApiKeyStore } from '@latentbase/shared/auth/api-keys'
import { setLexiconLoader } from '@latentbase/shared/embeddings/offline'
import { LEXICON_FILE } from '@latentbase/shared/embeddings/offline-lexicon'
import { createApp, type App } from './app.ts'

export interface WorkerEnv {
  /** R2 bucket holding the latent store (the same layout as S3 / local disk). */
  STORE: R2BucketLike
  /**
   * The static assets (web/dist): the web interface, and the offline embedder's lexicon (shared/assets, copied there by
   * the web build), read on first use instead of being bundled into the script.
   */
  ASSETS?: { fetch(input: Request | string): Promise<Response> }
  /** Encode and webhook jobs on Cloudflare Queues (unless SQS_QUEUE_URL is set). */
  JOBS?: CfQueueLike<JobMessage>
  /** Heavy analyses on Cloudflare Queues; without it (or SQS_ANALYSIS_QUEUE_URL) clustering and large correlations are not offered. */
  ANALYSIS_JOBS?: CfQueueLike<AnalysisQueueMessage>
  /**
   * Jobs straight to the SQS queues the GPU container and the analysis Lambda consume (SigV4 over fetch, no SDK):
   * SQS_QUEUE_URL, optional SQS_ANALYSIS_QUEUE_URL, AWS_REGION, and the secrets AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
   * of an IAM user allowed only sqs:SendMessage on them. SQS_ENDPOINT: a compatible server (tests).
   */
  SQS_QUEUE_URL?: string
  SQS_ANALYSIS_QUEUE_URL?: string
  SQS_ENDPOINT?: string
  AWS_REGION?: string
  AWS_ACCESS_KEY_ID?: string
  AWS_SECRET_ACCESS_KEY?: string
  /** Optional key prefix inside the bucket. */
  STORE_PREFIX?: string
  /** Requests per second and burst per tenant (strings, as Worker vars are). */
  RATE_LIMIT_PER_SECOND?: string
  RATE_LIMIT_BURST?: string
  [name: string]: unknown
}

interface Built {
  app: App
  catalog: StoreEncoderCatalog
}

/** One app per isolate and env: bindings do not change between requests, and the catalog and key caches are worth keeping. */
const built = new WeakMap<object, Built>()

function strings(env: WorkerEnv): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {}
  // Settings the app reads (LLM_*, EMBEDDINGS_*); the AWS secrets stay with the SQS producer.
  for (const [k, v] of Object.entries(env)) if (typeof v === 'string' && !k.startsWith('AWS_')) out[k] = v
  return out
}

/** SQS when configured (the AWS consumers read it), else the Cloudflare Queues binding. */
function producer<T>(
  env: WorkerEnv,
  sqsUrl: string | undefined,
  binding: CfQueueLike<T> | undefined,
  what: string
): JobQueue<T> | undefined {
  if (sqsUrl) {
    if (!env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY)
      throw new Error(`${what}: an SQS queue URL is set but AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY secrets are not`)
    return new SqsFetchProducer<T>({
      queueUrl: sqsUrl,
      region: env.AWS_REGION ?? new URL(sqsUrl).hostname.split('.')[1] ?? 'us-east-1',
      endpoint: env.SQS_ENDPOINT,
      credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY }
    })
  }
  return binding ? new CfQueueProducer<T>(binding) : undefined
}

/** The offline embedder's lexicon from the static assets (any host: the binding serves by path). */
async function lexiconFromAssets(assets: NonNullable<WorkerEnv['ASSETS']>): Promise<string> {
  const res = await assets.fetch(`https://assets.invalid/${LEXICON_FILE}`)
  if (!res.ok)
    throw new Error(
      `the offline embedder's lexicon (/${LEXICON_FILE}) is not among the static assets: ${res.status}; run \`npm run build:web\` before deploying`
    )
  return res.text()
}

export function buildWorkerApp(env: WorkerEnv): Built {
  const hit = built.get(env)
  if (hit) return hit
  const objects = new R2ObjectStore({ bucket: env.STORE, prefix: env.STORE_PREFIX })
  const assets = env.ASSETS
  if (assets) setLexiconLoader(() => lexiconFromAssets(assets))
  const catalog = new StoreEncoderCatalog(objects)
  const perSecond = Number(env.RATE_LIMIT_PER_SECOND ?? 0)
  const queue = producer<JobMessage>(env, env.SQS_QUEUE_URL, env.JOBS, 'jobs')
  if (!queue) throw new Error('no job queue: bind a Cloudflare Queue as JOBS or set SQS_QUEUE_URL')
  const analysisQueue = producer<AnalysisQueueMessage>(
    env,
    env.SQS_ANALYSIS_QUEUE_URL,
    env.ANALYSIS_JOBS,
    'analysis jobs'
  )
  const app = createApp({
    objects,
    datasets: new DatasetStore(objects),
    queue,
    ...(analysisQueue ? { analysisQueue } : {}),
    encoders: catalog,
    mode: 'cloud',
    apiKeys: new ApiKeyStore(objects),
    tenantOf: () => {
      throw new Error('cloud mode resolves tenants from API keys only')
    },
    ...(perSecond > 0 ? { rateLimit: { perSecond, burst: Number(env.RATE_LIMIT_BURST ?? perSecond * 2) } } : {}),
    env: strings(env)
  })
  const out = { app, catalog }
  built.set(env, out)
  return out
}

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: unknown): Promise<Response> {
    const { app, catalog } = buildWorkerApp(env)
    await catalog.refresh()
    return app.fetch(request, env, ctx as never)
  }
}
