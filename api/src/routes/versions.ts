/**
 * @module Dataset version routes: append a batch of documents as a new version (POST /datasets/{id}/documents) and
 * change a dataset's name or drift watch (PATCH /datasets/{id}). The batch is encoded by the worker (job/append);
 * the dataset stays ready on its previous version until the new one is committed.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi'
import { DatasetView, poolRolesOf, type DatasetRecord } from '@latentbase/shared/contract/dataset'
import { AppendDocumentsRequest, UpdateDatasetRequest } from '@latentbase/shared/contract/versions'
import { layout } from '@latentbase/shared/store/layout'
import { versionLayout } from '@latentbase/shared/store/versions'
import { readUploadMeta, uploadIdOf } from '@latentbase/shared/store/uploads'
import { datasetFingerprintOf } from '@latentbase/shared/catalog/fingerprint'
import { sha256HexAsync } from '@latentbase/shared/util/sha256'
import { mapLimit } from '@latentbase/shared/util/map-limit'
import type { AppEnv, Deps } from '../deps.ts'
import { ApiError, problemResponse } from '../problem.ts'
import { checkSourceSpec, checkSourceUrl } from '../urls.ts'
import { checkIdempotencyKey, withIdempotency } from '../idempotency.ts'
import { toView } from './datasets.ts'
import { loadDatasetRecord } from '../services/ready-dataset.ts'

const IdParam = z.object({ id: z.string().min(1).max(128) })

export function registerVersionRoutes(app: OpenAPIHono<AppEnv>, deps: Deps): void {
  const now = () => (deps.now ? deps.now() : new Date()).toISOString()

  const mustGet = (tenant: string, id: string): Promise<DatasetRecord> => loadDatasetRecord(deps.datasets, tenant, id)

  /** Why this dataset cannot take a batch now, as a 409 (not ready, a batch pending, its encoder gone or changed). */
  async function checkAppendable(record: DatasetRecord): Promise<void> {
    if (record.status !== 'ready')
      throw new ApiError(
        409,
        'dataset-not-ready',
        `dataset "${record.id}" is ${record.status}: documents can be appended once it is ready`
      )
    if (record.append && record.append.status !== 'failed') {
      throw new ApiError(
        409,
        'append-in-progress',
        `version ${record.append.version} of dataset "${record.id}" is still being encoded (${record.append.status}): append the next batch once it is committed (GET /datasets/${record.id})`
      )
    }
    const manifest = await deps.datasets.getManifest(record.tenant, record.id)
    if (!manifest) throw new ApiError(409, 'dataset-not-ready', `dataset "${record.id}" has no committed version yet`)
    const encoder = deps.encoders.get(record.encoder)
    if (!encoder) {
      throw new ApiError(
        409,
        'encoder-missing',
        `encoder "${record.encoder}" that encoded dataset "${record.id}" is not loaded here: a batch must be encoded by the same encoder (GET /encoders lists those loaded)`
      )
    }
    const fingerprint = await datasetFingerprintOf(
      encoder.fingerprint,
      manifest.pooling,
      encoder.maxTokens,
      manifest.longDocuments
    )
    if (fingerprint !== manifest.encoderFingerprint) {
      throw new ApiError(
        409,
        'encoder-mismatch',
        `encoder "${record.encoder}" changed since dataset "${record.id}" was encoded (fingerprint ${fingerprint.slice(0, 12)} here, ${manifest.encoderFingerprint.slice(0, 12)} in the dataset): its latents would not be comparable; create a new dataset instead`
      )
    }
  }

  /**
   * Whose chat turns the batch pools: the dataset's unless it names others, which it may not. Rows pooled two ways in
   * one dataset would not be comparable (a diff of versions would compare whose turns, not what they say), and every
   * analysis that re-encodes a row (its windows, where latents fire) reads the dataset's roles.
   */
  function batchPoolRoles(record: DatasetRecord, req: AppendDocumentsRequest): string[] {
    const dataset = poolRolesOf(record)
    const asked = req.source?.poolRoles ?? req.poolRoles
    if (asked && !sameRoles(asked, dataset)) {
      const where = req.source?.poolRoles ? '"source.poolRoles"' : '"poolRoles"'
      throw new ApiError(
        422,
        'pool-roles-mismatch',
        `dataset "${record.id}" pools the turns of ${dataset.join(', ')}; this batch would pool ${asked.join(', ')}, and rows pooled two ways are not comparable: leave ${where} out (the batch then takes the dataset's) or give ${JSON.stringify(dataset)}, or create a new dataset`
      )
    }
    return dataset
  }

  /** Stage the batch and queue its encoding as version N + 1. */
  async function append(
    record: DatasetRecord,
    req: AppendDocumentsRequest,
    requestKey?: string
  ): Promise<DatasetRecord> {
    const poolRoles = batchPoolRoles(record, req)
    const version = (record.version ?? 1) + 1
    const prefix = layout.datasetPrefix(record.tenant, record.id)
    // A failed append of this version left its folder behind: the new batch starts clean.
    if (record.append?.status === 'failed') {
      const leftovers = await deps.objects.list(prefix + versionLayout.dir(version))
      await mapLimit(leftovers, 16, o => deps.objects.delete(o.key))
    }
    if (req.documents) {
      const jsonl = req.documents.map(d => JSON.stringify(d)).join('\n') + '\n'
      // Where the batch's planner reads it: the version folder's own input (see VersionScopedStore).
      await deps.objects.put(prefix + versionLayout.dir(version) + 'input/documents.jsonl', jsonl, {
        contentType: 'application/x-ndjson'
      })
    }
    const at = now()
    const next: DatasetRecord = {
      ...record,
      updatedAt: at,
      append: {
        version,
        status: 'queued',
        source: req.source ?? { inline: req.documents!.length },
        createdAt: at,
        poolRoles,
        ...(requestKey ? { requestKey } : {})
      }
    }
    await deps.datasets.putRecord(next)
    await deps.queue.send({ kind: 'encode', tenant: record.tenant, datasetId: record.id, version })
    return next
  }

  app.openapi(
    createRoute({
      method: 'post',
      path: '/datasets/{id}/documents',
      summary: 'Append documents to a ready dataset as a new version',
      description:
        'The batch (a source URL as in POST /datasets, or inline documents) is encoded by the encoder that encoded the dataset and becomes version N + 1; its rows continue the numbering. The dataset stays ready on version N until the new version is committed; `append` in the dataset says how the batch stands (or why it failed). With an `Idempotency-Key` header a retried request gets the first answer and appends once.',
      request: {
        params: IdParam,
        headers: z.object({ 'idempotency-key': z.string().optional() }),
        body: { required: true, content: { 'application/json': { schema: AppendDocumentsRequest } } }
      },
      responses: {
        202: {
          content: { 'application/json': { schema: DatasetView } },
          description: 'queued: `append.version` is the version it will be'
        },
        400: problemResponse('invalid request'),
        404: problemResponse('not found'),
        409: problemResponse('not ready, a batch still encoding, or the encoder missing or changed'),
        422: problemResponse(
          "refused URL, unknown upload, or a batch that would pool other chat roles than the dataset's"
        )
      }
    }),
    async c => {
      const { id } = c.req.valid('param')
      const req = c.req.valid('json')
      const tenant = c.get('tenant')
      if (req.source) {
        checkSourceUrl(req.source.url, deps.mode)
        checkSourceSpec(req.source)
      }
      const uploadId = req.source ? uploadIdOf(req.source.url) : null
      if (uploadId && !(await readUploadMeta(deps.objects, tenant, uploadId))) {
        throw new ApiError(
          422,
          'upload-not-found',
          `no upload "${uploadId}" for this API key: POST the file to /uploads first and use the url it answers`
        )
      }
      if (req.source?.messagesField && req.source.metadataFields.includes(req.source.messagesField)) {
        throw new ApiError(400, 'invalid-request', 'messagesField cannot also be a metadata field')
      }
      c.header('Location', `/datasets/${id}`)
      const idempotencyKey = c.req.header('idempotency-key')
      if (idempotencyKey !== undefined) {
        checkIdempotencyKey(idempotencyKey)
        const requestKey = await sha256HexAsync(`append\u0000${idempotencyKey}`)
        const answer = await withIdempotency(
          deps.objects,
          tenant,
          idempotencyKey,
          { append: id, request: req },
          async () => {
            const record = await mustGet(tenant, id)
            // A takeover of a request that died after queueing: its batch is already there.
            if (record.append?.requestKey === requestKey) return { status: 202, body: toView(record) }
            await checkAppendable(record)
            return { status: 202, body: toView(await append(record, req, requestKey)) }
          }
        )
        if (answer.replayed) c.header('Idempotent-Replayed', 'true')
        return c.json(answer.body as z.infer<typeof DatasetView>, 202)
      }
      const record = await mustGet(tenant, id)
      await checkAppendable(record)
      return c.json(toView(await append(record, req)), 202)
    }
  )

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/datasets/{id}',
      summary: "Change a dataset's name or drift watch",
      description:
        'A `watch` makes every appended version run a diff of its batch against a baseline batch and send a signed `dataset.drift` webhook naming the latents that moved (with intervals and q-values), or none; `watch: null` removes it.',
      request: {
        params: IdParam,
        body: { required: true, content: { 'application/json': { schema: UpdateDatasetRequest } } }
      },
      responses: {
        200: { content: { 'application/json': { schema: DatasetView } }, description: 'the dataset' },
        400: problemResponse('invalid request'),
        404: problemResponse('not found')
      }
    }),
    async c => {
      const { id } = c.req.valid('param')
      const req = c.req.valid('json')
      const record = await mustGet(c.get('tenant'), id)
      const { watch: _old, ...rest } = record
      const next: DatasetRecord = {
        ...rest,
        ...(req.name !== undefined ? { name: req.name } : {}),
        updatedAt: now(),
        ...(req.watch === null ? {} : req.watch ? { watch: req.watch } : record.watch ? { watch: record.watch } : {})
      }
      await deps.datasets.putRecord(next)
      return c.json(toView(next), 200)
    }
  )
}

/** The same roles, in any order. */
function sameRoles(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a)
  return set.size === new Set(b).size && b.every(r => set.has(r))
}
