/**
 * @module The container worker entry: consumes encode and webhook jobs from SQS and writes to S3.
 * Environment: QUEUE_URL, BUCKET, AWS_REGION, optional S3_ENDPOINT / SQS_ENDPOINT (S3-compatible stores),
 * ENCODERS_DIR, MAX_RECEIVES (the queue's redrive maxReceiveCount), WORKER_CONCURRENCY, EMBEDDINGS_* and
 * LATENTBASE_WARM_LABEL_EMBEDDINGS (the label embeddings written at start-up).
 */
import { awsClientsFromEnv } from '@latentbase/shared/aws/clients'
import { JobMessage } from '@latentbase/shared/contract/job'
import { S3ObjectStore } from '@latentbase/shared/store/s3-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { SqsQueue } from '@latentbase/shared/queue/sqs-queue'
import { runConsumer } from '@latentbase/shared/queue/consumer'
import { handleJob, onDeadLetter, type WorkerDeps } from './job/handler.ts'
import { findEncoderFolders, loadEncoders } from './registry.ts'
import { publishEncoderCatalog } from './publish-catalog.ts'
import { guardedFetch } from '@latentbase/shared/net/url-guard'
import { LabelEmbeddingCache } from '@latentbase/shared/embeddings/label-cache'
import { embedderFromEnv } from '@latentbase/shared/embeddings/openai'
import { warmLabelEmbeddings, warmLabelEmbeddingsFromEnv } from '@latentbase/shared/embeddings/label-warm'

function required(name: string): string {
  const v = process.env[name]
  if (!v) {
    console.error(`[worker] ${name} is not set`)
    process.exit(2)
  }
  return v
}

const { s3, sqs } = awsClientsFromEnv(process.env)
const objects = new S3ObjectStore({ client: s3, bucket: required('BUCKET') })
const datasets = new DatasetStore(objects)
const queue = new SqsQueue<JobMessage>({ client: sqs, queueUrl: required('QUEUE_URL'), schema: JobMessage })
const maxReceives = Number(process.env.MAX_RECEIVES ?? 4)
const encoders = await loadEncoders(await findEncoderFolders(process.env.ENCODERS_DIR))
// The API (Worker, Lambda) knows encoders and their labels from the store, without loading any model.
await publishEncoderCatalog(objects, encoders)
// Their label embeddings go into the store too, in the background, so no API process pays for them on a first search
// (EMBEDDINGS_* must match the API's, or LATENTBASE_WARM_LABEL_EMBEDDINGS=off).
if (warmLabelEmbeddingsFromEnv())
  void warmLabelEmbeddings(new LabelEmbeddingCache(objects), encoders.values(), embedderFromEnv(process.env), line =>
    console.log(line)
  )
const deps: WorkerDeps = {
  objects,
  datasets,
  queue,
  allowLocalSources: false,
  // Sources come from strangers: no private, loopback or metadata addresses, on any hop (SOURCE_MAX_BYTES caps them).
  encodeOptions: { sourceGuard: { maxBytes: Number(process.env.SOURCE_MAX_BYTES ?? 64 * 2 ** 30) } },
  encoder: async id => encoders.get(id),
  // Webhook receivers are strangers' URLs too.
  fetch: guardedFetch(),
  log: line => console.log(line)
}
const abort = new AbortController()
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    console.log(`[worker] ${sig}: draining`)
    abort.abort()
  })
console.log(`[worker] consuming ${process.env.QUEUE_URL} with ${encoders.size} encoder(s)`)
await runConsumer(
  queue,
  async message => {
    try {
      await handleJob(message.body, deps, abort.signal, message)
    } catch (err) {
      // The last receive before the queue's redrive policy moves it to the DLQ: say why on the dataset.
      if (message.receiveCount >= maxReceives) await onDeadLetter(deps, message.body, (err as Error).message)
      throw err
    }
  },
  {
    concurrency: Number(process.env.WORKER_CONCURRENCY ?? 1),
    visibilitySeconds: 300,
    heartbeatSeconds: 60,
    signal: abort.signal
  }
)
