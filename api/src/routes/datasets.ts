/** @module Dataset routes: create (queue an encode job), list, get, delete, and read one document. */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import {
  CreateDatasetRequest,
  CreatedDataset,
  DatasetView,
  DOCUMENT_PEAKED_LATENTS,
  DocumentActivations,
  DocumentActivationsQuery,
  DocumentQuery,
  DocumentView,
  TextActivations,
  TextActivationsQuery,
  FacetsView,
  type DatasetRecord,
  type DocumentLatent
} from '@latentbase/shared/contract/dataset'
import { labelSourceOf } from '@latentbase/shared/catalog/label-overlay'
import { RowParam } from '@latentbase/shared/contract/id'
import { loadDatasetRecord, loadReadyDataset } from '../services/ready-dataset.ts'
import { facetsViewOf } from '../services/slice-service.ts'
import { loadLabelInfo } from '../services/latent-page-service.ts'
import { readPeaks } from '../services/latent-peaks.ts'
import { answerDepsOf, cachedJson } from '../services/answer-cache.ts'
import { layout } from '@latentbase/shared/store/layout'
import { randomId } from '@latentbase/shared/util/random-id'
import { generateWebhookSecret } from '@latentbase/shared/webhooks/sign'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { readByDocument } from '@latentbase/shared/store/latent-shards/read-by-document'
import { readLatentStats } from '@latentbase/shared/store/stats/read'
import { withLiveProgress } from '@latentbase/shared/store/encode-progress'
import { analysisContext, type AppEnv, type Deps } from '../deps.ts'
import { SimilarDocuments, SimilarQuery, SimilarTextQuery, SimilarToText } from '@latentbase/shared/contract/similar'
import { similarDocuments, similarToText } from '../services/similar-service.ts'
import { documentActivations, textActivations } from '../services/document-activations-service.ts'
import { ApiError, problemResponse } from '../problem.ts'
import { checkSourceSpec, checkSourceUrl, checkWebhookUrl } from '../urls.ts'
import { readUploadMeta, uploadIdOf } from '@latentbase/shared/store/uploads'
import { checkIdempotencyKey, idempotentDatasetId, withIdempotency } from '../idempotency.ts'

const IdParam = z.object({ id: z.string().min(1).max(128) })

export function toView(record: DatasetRecord): z.infer<typeof DatasetView> {
  const { webhook, tenant: _tenant, ...rest } = record
  return { ...rest, ...versionsView(record), ...(webhook ? { webhook: { url: webhook.url } } : {}) }
}

/** A ready dataset answers its version and per-version counts: one version until the first append. */
function versionsView(record: DatasetRecord): Pick<DatasetRecord, 'version' | 'versions'> {
  if (record.versions || record.status !== 'ready' || !record.stats) return {}
  return {
    version: 1,
    versions: [
      {
        version: 1,
        documents: { start: 0, count: record.stats.documents },
        tokens: record.stats.tokens,
        createdAt: record.createdAt
      }
    ]
  }
}

/** Dataset ids are random, URL-safe and valid store key segments. */
export function newDatasetId(): string {
  return randomId('ds_', 12)
}

export function registerDatasetRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  const now = () => (deps.now ? deps.now() : new Date()).toISOString()

  // An id outside the contract's pattern names no dataset (like a missing one), and never reaches a store key.
  const mustGet = (tenant: string, id: string): Promise<DatasetRecord> => loadDatasetRecord(deps.datasets, tenant, id)

  /** Records the dataset, stores inline documents, queues the encode job; the 202 body. */
  async function createDataset(
    tenant: string,
    id: string,
    req: z.infer<typeof CreateDatasetRequest>,
    uploadName?: string
  ): Promise<z.infer<typeof CreatedDataset>> {
    const generatedSecret = req.webhook && !req.webhook.secret ? generateWebhookSecret() : undefined
    const at = now()
    const record: DatasetRecord = {
      id,
      tenant,
      name: req.name ?? uploadName ?? (req.source ? lastPathSegment(req.source.url) : `inline-${id}`),
      status: 'queued',
      encoder: req.encoder,
      pooling: req.pooling,
      source: req.source ?? { inline: req.documents!.length },
      ...(req.poolRoles ? { poolRoles: req.poolRoles } : {}),
      createdAt: at,
      updatedAt: at,
      progress: { documents: { done: 0, total: req.documents ? req.documents.length : null }, tokens: 0 },
      ...(req.webhook ? { webhook: { url: req.webhook.url, secret: req.webhook.secret ?? generatedSecret! } } : {}),
      ...(req.watch ? { watch: req.watch } : {}),
      attempts: 0
    }
    if (req.documents) {
      const jsonl = req.documents.map(d => JSON.stringify(d)).join('\n') + '\n'
      await deps.objects.put(layout.inlineInput(tenant, id), jsonl, { contentType: 'application/x-ndjson' })
    }
    await deps.datasets.putRecord(record)
    await deps.queue.send({ kind: 'encode', tenant, datasetId: id })
    return { ...toView(record), ...(generatedSecret ? { webhookSecret: generatedSecret } : {}) }
  }

  app.openapi(
    createRoute({
      method: 'post',
      path: '/datasets',
      summary: 'Create a dataset and queue its encoding',
      description:
        'With an `Idempotency-Key` header, a retried request (same key, same body) gets the first answer (with `Idempotent-Replayed: true`) and creates one dataset; the same key with another body is refused (422).',
      request: {
        headers: z.object({ 'idempotency-key': z.string().optional() }),
        body: { required: true, content: { 'application/json': { schema: CreateDatasetRequest } } }
      },
      responses: {
        202: { content: { 'application/json': { schema: CreatedDataset } }, description: 'queued' },
        400: problemResponse('invalid request'),
        422: problemResponse('unknown encoder or refused URL')
      }
    }),
    async c => {
      const req = c.req.valid('json')
      const tenant = c.get('tenant')
      const encoder = deps.encoders.get(req.encoder)
      if (!encoder) {
        const known =
          deps.encoders
            .list()
            .map(e => e.id)
            .join(', ') || '(none loaded)'
        throw new ApiError(
          422,
          'unknown-encoder',
          `unknown encoder "${req.encoder}"; available: ${known} (GET /encoders)`
        )
      }
      if (req.source) {
        checkSourceUrl(req.source.url, deps.mode)
        checkSourceSpec(req.source)
      }
      const uploadId = req.source ? uploadIdOf(req.source.url) : null
      // Looked up under the caller's tenant only: another tenant's upload id is not found here.
      const upload = uploadId ? await readUploadMeta(deps.objects, tenant, uploadId) : null
      if (uploadId && !upload)
        throw new ApiError(
          422,
          'upload-not-found',
          `no upload "${uploadId}" for this API key: POST the file to /uploads first and use the url it answers`
        )
      if (req.webhook) checkWebhookUrl(req.webhook.url, deps.mode)
      if (req.source?.messagesField && req.source.metadataFields.includes(req.source.messagesField)) {
        throw new ApiError(400, 'invalid-request', 'messagesField cannot also be a metadata field')
      }

      const idempotencyKey = c.req.header('idempotency-key')
      if (idempotencyKey !== undefined) {
        checkIdempotencyKey(idempotencyKey)
        const id = await idempotentDatasetId(tenant, idempotencyKey)
        const answer = await withIdempotency(deps.objects, tenant, idempotencyKey, req, async () => {
          const created = await createDataset(tenant, id, req, upload?.filename)
          return { status: 202, body: created, location: `/datasets/${id}` }
        })
        c.header('Location', answer.location ?? `/datasets/${id}`)
        if (answer.replayed) c.header('Idempotent-Replayed', 'true')
        return c.json(answer.body as z.infer<typeof CreatedDataset>, 202)
      }
      const id = newDatasetId()
      const body = await createDataset(tenant, id, req, upload?.filename)
      c.header('Location', `/datasets/${id}`)
      return c.json(body, 202)
    }
  )

  app.openapi(
    createRoute({
      method: 'get',
      path: '/datasets',
      summary: 'List datasets',
      responses: {
        200: {
          content: { 'application/json': { schema: z.object({ datasets: z.array(DatasetView) }) } },
          description: 'datasets, newest first'
        }
      }
    }),
    async c => {
      const records = await deps.datasets.listRecords(c.get('tenant'))
      records.sort((x, y) => (x.createdAt < y.createdAt ? 1 : x.createdAt > y.createdAt ? -1 : 0))
      return c.json({ datasets: records.map(toView) }, 200)
    }
  )

  app.openapi(
    createRoute({
      method: 'get',
      path: '/datasets/{id}',
      summary: 'A dataset: its status, progress, stats or error',
      request: { params: IdParam },
      responses: {
        200: { content: { 'application/json': { schema: DatasetView } }, description: 'the dataset' },
        404: problemResponse('not found (or not a dataset id)')
      }
    }),
    async c => {
      const { id } = c.req.valid('param')
      return c.json(toView(await withLiveProgress(deps.objects, await mustGet(c.get('tenant'), id))), 200)
    }
  )

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/datasets/{id}',
      summary: 'Delete a dataset (a tombstone keeps late jobs from bringing it back)',
      request: { params: IdParam },
      responses: { 204: { description: 'deleted' }, 404: problemResponse('not found (or not a dataset id)') }
    }),
    async c => {
      const { id } = c.req.valid('param')
      const tenant = c.get('tenant')
      await mustGet(tenant, id)
      await deps.datasets.deleteDataset(tenant, id)
      // Other processes never serve it either: every cached answer first loads its datasets, and this one is gone.
      if (deps.answerCache) deps.answerCache.purgeDataset(tenant, id)
      return c.body(null, 204)
    }
  )

  app.openapi(
    createRoute({
      method: 'get',
      path: '/datasets/{id}/facets',
      summary:
        "The dataset's facets: its few-valued metadata keys, each value's documents and the slice selecting them",
      description:
        'A diff of a slice on one of these keys is added up from stored counts instead of counting its rows. `id` may name a version (`ds_1@2`).',
      request: { params: IdParam },
      responses: {
        200: { content: { 'application/json': { schema: FacetsView } }, description: 'the facets' },
        404: problemResponse('not found'),
        409: problemResponse('not ready')
      }
    }),
    async c => {
      const { id } = c.req.valid('param')
      const tenant = c.get('tenant')
      return cachedJson(
        c,
        answerDepsOf(deps),
        { route: 'facets', tenant, datasets: [{ id, role: 'dataset' }], query: {} },
        async () => facetsViewOf(deps.objects, await loadReadyDataset(deps.datasets, tenant, id, 'dataset'))
      )
    }
  )

  app.openapi(
    createRoute({
      method: 'get',
      path: '/datasets/{id}/documents/{row}',
      summary: 'One document: text, metadata and its pooled latents',
      request: { params: IdParam.extend({ row: RowParam }), query: DocumentQuery },
      responses: {
        200: { content: { 'application/json': { schema: DocumentView } }, description: 'the document' },
        400: problemResponse('row is not a non-negative integer, or peaks is not unlabelled, all or none'),
        404: problemResponse('not found'),
        409: problemResponse('not ready')
      }
    }),
    async c => {
      const { id, row } = c.req.valid('param')
      const query = c.req.valid('query')
      const tenant = c.get('tenant')
      const record = await mustGet(tenant, id)
      const manifest = await deps.datasets.getManifest(tenant, id)
      if (!manifest)
        throw new ApiError(
          409,
          'dataset-not-ready',
          `dataset "${id}" is ${record.status}; documents can be read once it is ready`
        )
      if (row >= manifest.documents.count) {
        throw new ApiError(
          404,
          'document-not-found',
          `dataset "${id}" has ${manifest.documents.count} documents (rows 0-${manifest.documents.count - 1}); row ${row} does not exist`
        )
      }
      const prefix = layout.datasetPrefix(tenant, id)
      return cachedJson(
        c,
        answerDepsOf(deps),
        { route: 'document', tenant, datasets: [{ id, role: 'dataset' }], query: { row, ...query } },
        async () => {
          const [docs, csr, stats, info] = await Promise.all([
            readDocuments(deps.objects, prefix, manifest.documents.files, [row, row]),
            readByDocument(deps.objects, prefix, manifest.latents.byDocument, [row, row]),
            readLatentStats(deps.objects, prefix + manifest.stats.key, ['doc_count']),
            loadLabelInfo(deps.encoders, manifest.encoder.id, manifest.encoder.dSae, {
              objects: deps.objects,
              tenant,
              fingerprint: manifest.encoderFingerprint
            })
          ])
          const k0 = csr.indptr[0]
          const k1 = csr.indptr[csr.nDocs]
          const order = Array.from({ length: k1 - k0 }, (_, i) => k0 + i).sort((x, y) => csr.values[y] - csr.values[x])
          const latents: DocumentLatent[] = order.map(k => {
            const latent = csr.latents[k]
            return {
              latent,
              value: csr.values[k],
              position: csr.positions[k],
              label: info.labels[latent] ?? null,
              frequency: stats.docCount[latent] / manifest.documents.count,
              labelSource: labelSourceOf(info, latent)
            }
          })
          const peaked = latents
            .slice(0, DOCUMENT_PEAKED_LATENTS)
            .filter(l => query.peaks === 'all' || (query.peaks === 'unlabelled' && !l.label))
          const peaks = await readPeaks(
            deps.objects,
            { prefix, manifest },
            peaked.map(l => l.latent)
          )
          for (const l of peaked) l.peak = peaks.get(l.latent) ?? null
          return {
            dataset: id,
            row,
            id: String(docs.id[0]),
            text: String(docs.text[0]),
            metadata: parseMetadata(docs.metadata[0]),
            tokenCount: Number(docs.token_count[0]),
            truncated: Boolean(docs.truncated[0]),
            latents
          }
        }
      )
    }
  )
  app.openapi(
    createRoute({
      method: 'get',
      path: '/datasets/{id}/documents/{row}/similar',
      summary:
        'Documents like this one: cosine of their latent sets (sqrt-idf weighted), each with the latents it shares',
      request: { params: IdParam.extend({ row: RowParam }), query: SimilarQuery },
      responses: {
        200: { content: { 'application/json': { schema: SimilarDocuments } }, description: 'the closest documents' },
        400: problemResponse('row is not a non-negative integer, a bad limit, or a slice naming an unknown field'),
        404: problemResponse('no such dataset or row'),
        409: problemResponse('not ready, or `in` names a dataset encoded differently')
      }
    }),
    async c => {
      const { id, row } = c.req.valid('param')
      const query = c.req.valid('query')
      const tenant = c.get('tenant')
      return cachedJson(
        c,
        answerDepsOf(deps),
        {
          route: 'similar',
          tenant,
          // The dataset searched is read too: its deletion or new version changes the answer.
          datasets: [{ id, role: 'dataset' }, ...(query.in ? [{ id: query.in, role: 'in' }] : [])],
          query: { row, ...query }
        },
        () =>
          similarDocuments(analysisContext(deps, tenant, c.req.raw.signal), id, row, query, {
            blockEntries: deps.similarBlockEntries
          })
      )
    }
  )
  app.openapi(
    createRoute({
      method: 'get',
      path: '/datasets/{id}/documents/{row}/activations',
      summary:
        "Where chosen latents fire in one document, token by token: the document re-encoded with its dataset's encoder",
      request: { params: IdParam.extend({ row: RowParam }), query: DocumentActivationsQuery },
      responses: {
        200: {
          content: { 'application/json': { schema: DocumentActivations } },
          description: "the document's tokens and each latent's activation at each"
        },
        400: problemResponse('no latents, more than the limit, or a latent the encoder does not have'),
        404: problemResponse('no such dataset or row'),
        409: problemResponse('not ready'),
        501: problemResponse("this deployment does not hold the dataset's encoder (the local server does)")
      }
    }),
    async c => {
      const { id, row } = c.req.valid('param')
      const query = c.req.valid('query')
      const tenant = c.get('tenant')
      return cachedJson(
        c,
        // Whether a document can be re-encoded depends on the encoders this process holds.
        answerDepsOf(deps, deps.documentActivations ? 'document-activations' : ''),
        { route: 'document-activations', tenant, datasets: [{ id, role: 'dataset' }], query: { row, ...query } },
        () =>
          documentActivations(analysisContext(deps, tenant, c.req.raw.signal), id, row, {
            latents: query.latents.join(',')
          })
      )
    }
  )
  app.openapi(
    createRoute({
      method: 'get',
      path: '/datasets/{id}/activations',
      summary:
        "A text's strongest latents (or chosen ones) and where each fires, token by token: encoded with the dataset's encoder as its documents were",
      request: { params: IdParam, query: TextActivationsQuery },
      responses: {
        200: {
          content: { 'application/json': { schema: TextActivations } },
          description: "the text's tokens and each latent's activation at each"
        },
        400: problemResponse('no text, a bad top, more latents than the limit, or a latent the encoder does not have'),
        404: problemResponse('no such dataset'),
        409: problemResponse('not ready'),
        501: problemResponse("this deployment does not hold the dataset's encoder (the local server does)")
      }
    }),
    async c => {
      const { id } = c.req.valid('param')
      const query = c.req.valid('query')
      const tenant = c.get('tenant')
      return cachedJson(
        c,
        answerDepsOf(deps, deps.textActivations ? 'text-activations' : ''),
        { route: 'text-activations', tenant, datasets: [{ id, role: 'dataset' }], query },
        () =>
          textActivations(analysisContext(deps, tenant, c.req.raw.signal), id, {
            text: query.text,
            format: query.format,
            top: query.top,
            order: query.order,
            ...(query.latents ? { latents: query.latents.join(',') } : {})
          })
      )
    }
  )
  app.openapi(
    createRoute({
      method: 'get',
      path: '/datasets/{id}/similar',
      summary:
        "Documents like a text: the text encoded with the dataset's encoder as its documents were, then ranked as similar documents are",
      request: { params: IdParam, query: SimilarTextQuery },
      responses: {
        200: { content: { 'application/json': { schema: SimilarToText } }, description: 'the closest documents' },
        400: problemResponse('no text, a bad limit, or a slice naming an unknown field'),
        404: problemResponse('no such dataset'),
        409: problemResponse('not ready'),
        501: problemResponse("this deployment does not hold the dataset's encoder (the local server does)")
      }
    }),
    async c => {
      const { id } = c.req.valid('param')
      const query = c.req.valid('query')
      const tenant = c.get('tenant')
      return cachedJson(
        c,
        // Whether a text can be encoded depends on the encoders this process holds.
        answerDepsOf(deps, deps.textEncoder ? 'text-encoder' : ''),
        { route: 'similar-text', tenant, datasets: [{ id, role: 'dataset' }], query },
        () =>
          similarToText(analysisContext(deps, tenant, c.req.raw.signal), id, query, {
            blockEntries: deps.similarBlockEntries
          })
      )
    }
  )
}

function parseMetadata(raw: unknown): Record<string, unknown> {
  if (raw && typeof raw === 'object') return raw as Record<string, unknown>
  if (typeof raw === 'string' && raw) return JSON.parse(raw) as Record<string, unknown>
  return {}
}

function lastPathSegment(url: string): string {
  const path = url.split('?')[0].replace(/\/+$/, '')
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) || url
}
