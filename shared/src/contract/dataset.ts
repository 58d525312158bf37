/** @module Dataset contracts: the create request, the dataset record (job state) and documents. */
import { z } from 'zod'
import { VersionInfo, Watch } from './version-info.ts'
import { LatentPeak } from './latents.ts'

export const INLINE_DOCUMENTS_MAX = 1000
/** source.maxDocuments at most; with sampleSeed, SAMPLE_DOCUMENTS_MAX (the sample is held in memory while the source is read). */
export const MAX_DOCUMENTS_LIMIT = 100_000_000
export const SAMPLE_DOCUMENTS_MAX = 1_000_000

export const SourceFormat = z.enum(['jsonl', 'json', 'csv', 'parquet', 'text'])
export type SourceFormat = z.infer<typeof SourceFormat>

export const SourceSpec = z.object({
  url: z
    .string()
    .min(1)
    .describe(
      'http(s):// URL, hf://datasets/owner/name[@revision][/path] (a Hugging Face dataset: without a path, its Parquet conversion, config "default" and split "train" unless a viewer URL .../viewer/CONFIG/SPLIT names them), upload://up_... (a file posted to POST /uploads), or (local mode) file:// URL or absolute path'
    ),
  format: SourceFormat.optional().describe('guessed from the URL extension and content when absent'),
  textField: z.string().min(1).default('text'),
  idField: z.string().min(1).optional(),
  metadataFields: z.array(z.string().min(1)).max(64).default([]),
  messagesField: z.string().min(1).optional().describe('a list of { role, content }, rendered with the chat template'),
  poolRoles: z
    .array(z.string().min(1))
    .min(1)
    .optional()
    .describe(
      "chat documents: whose turns are pooled (default the assistant's; a batch appended to a dataset takes the dataset's)"
    ),
  textUnit: z
    .enum(['line', 'paragraph', 'file'])
    .default('paragraph')
    .describe('plain text only: one document per line, per blank-line-separated paragraph, or the whole file'),
  maxDocuments: z
    .number()
    .int()
    .min(1)
    .max(MAX_DOCUMENTS_LIMIT)
    .optional()
    .describe(
      'encode at most this many documents: the first ones (reading stops there), or with sampleSeed a uniform random sample of the whole source, kept in source order'
    ),
  sampleSeed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .optional()
    .describe(
      'with maxDocuments: take a seeded uniform random sample instead of the first documents (a sorted source, e.g. by label, is not biased by its order); the same seed and source give the same sample'
    )
})
export type SourceSpec = z.infer<typeof SourceSpec>

/** Why a source spec cannot be used, or null (checked by the API before queueing, and by the worker). */
export function sourceSpecProblem(spec: { maxDocuments?: number; sampleSeed?: number }): string | null {
  if (spec.sampleSeed !== undefined && spec.maxDocuments === undefined)
    return 'source.sampleSeed samples maxDocuments documents: give source.maxDocuments too'
  if (spec.sampleSeed !== undefined && spec.maxDocuments! > SAMPLE_DOCUMENTS_MAX)
    return `source.maxDocuments with sampleSeed is at most ${SAMPLE_DOCUMENTS_MAX.toLocaleString('en-US')} (the sample is held until the source is read); without sampleSeed the first documents are taken, up to ${MAX_DOCUMENTS_LIMIT.toLocaleString('en-US')}`
  return null
}

export const ChatMessage = z.object({ role: z.string().min(1), content: z.string() })
export type ChatMessage = z.infer<typeof ChatMessage>

export const InlineDocument = z
  .object({
    id: z.string().max(512).optional(),
    text: z.string().optional(),
    messages: z.array(ChatMessage).min(1).optional(),
    metadata: z.record(z.string(), z.unknown()).optional()
  })
  .refine(d => (d.text === undefined) !== (d.messages === undefined), {
    message: 'each document needs exactly one of "text" or "messages"'
  })
export type InlineDocument = z.infer<typeof InlineDocument>

export const PoolingMethod = z.enum(['max', 'mean', 'sum', 'binary', 'count'])
export type PoolingMethod = z.infer<typeof PoolingMethod>

export const PoolingSpec = z.object({
  method: PoolingMethod.default('max'),
  outlierNormRatio: z
    .number()
    .positive()
    .default(100)
    .describe('tokens whose activation norm exceeds this multiple of the document median norm are left out of pooling')
})
export type PoolingSpec = z.infer<typeof PoolingSpec>

export const WebhookSpec = z.object({
  url: z.string().url(),
  secret: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/=]{32,}$/, 'a webhook secret looks like whsec_<base64 of at least 24 bytes>')
    .optional()
})

export const CreateDatasetRequest = z
  .object({
    name: z.string().max(200).optional(),
    source: SourceSpec.optional(),
    documents: z.array(InlineDocument).min(1).max(INLINE_DOCUMENTS_MAX).optional(),
    poolRoles: z.array(z.string().min(1)).min(1).optional().describe('inline chat documents: whose tokens are pooled'),
    encoder: z.string().default('demo'),
    pooling: PoolingSpec.default({ method: 'max', outlierNormRatio: 100 }),
    webhook: WebhookSpec.optional(),
    watch: Watch.optional().describe(
      'drift watch: when a version is appended, its batch is compared with a baseline and a dataset.drift webhook says which latents moved'
    )
  })
  .refine(r => (r.source === undefined) !== (r.documents === undefined), {
    message: 'give exactly one of "source" (a URL) or "documents" (inline)',
    path: ['source']
  })
export type CreateDatasetRequest = z.infer<typeof CreateDatasetRequest>

export const DatasetStatus = z.enum(['queued', 'running', 'ready', 'failed'])
export type DatasetStatus = z.infer<typeof DatasetStatus>

export const ProblemCode = z.string()

export const DatasetStats = z.object({
  documents: z.number().int(),
  tokens: z.number().int(),
  meanTokens: z.number(),
  truncated: z.number().int(),
  skipped: z.record(z.string(), z.number().int()).describe('skipped documents by reason'),
  maskedTokens: z.object({ special: z.number().int(), outlier: z.number().int(), role: z.number().int() }),
  activeLatents: z.number().int().describe('latents present in at least one document'),
  meanActivePerDocument: z.number(),
  seconds: z
    .object({
      total: z.number(),
      plan: z
        .number()
        .describe('the planner: reading the source, tokenizing to check each document, staging the parts'),
      tokenize: z.number().describe('tokenizing in the part jobs'),
      encode: z.number().describe('the fused reader + SAE + pooling graph'),
      write: z.number().describe('building and writing shards and statistics'),
      topExamples: z
        .number()
        .describe(
          "top examples: taking the windows the graph captured, keeping each latent's best, writing and merging the lists"
        )
    })
    .partial()
    .optional()
    .describe('time by stage: total is wall-clock; the stages add up the seconds of every worker'),
  parts: z
    .object({
      count: z.number().int(),
      redelivered: z.number().int().describe('parts finished by a redelivered job (a worker died or failed)')
    })
    .optional()
    .describe('how the encoding was split; left out of the manifest')
})
export type DatasetStats = z.infer<typeof DatasetStats>

/** A batch being appended as a new version; the dataset stays ready on its previous version meanwhile. */
export const AppendState = z.object({
  version: z.number().int().min(2),
  status: z.enum(['queued', 'running', 'failed']),
  source: z.union([SourceSpec, z.object({ inline: z.number().int() })]),
  poolRoles: z.array(z.string()).optional(),
  createdAt: z.string(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  requestKey: z.string().optional().describe('hash of the Idempotency-Key that asked for it')
})
export type AppendState = z.infer<typeof AppendState>

export const DatasetRecord = z.object({
  id: z.string(),
  tenant: z.string(),
  name: z.string(),
  status: DatasetStatus,
  encoder: z.string(),
  pooling: PoolingSpec,
  source: z.union([SourceSpec, z.object({ inline: z.number().int() })]),
  poolRoles: z.array(z.string()).optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  progress: z.object({
    documents: z.object({ done: z.number().int(), total: z.number().int().nullable() }),
    tokens: z.number().int(),
    parts: z
      .object({ done: z.number().int(), total: z.number().int() })
      .optional()
      .describe('once planned: parts encoded in parallel, and how many are done')
  }),
  stats: DatasetStats.optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  lastAttemptError: z.string().optional().describe('why the previous attempt stopped, while the job is being retried'),
  webhook: z
    .object({ url: z.string(), secret: z.string() })
    .optional()
    .describe('stored only; never returned by the API'),
  attempts: z.number().int().default(0),
  version: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('the latest committed version (absent: 1); analyses read it unless given ds_id@N'),
  versions: z
    .array(VersionInfo)
    .optional()
    .describe('per-version counts, oldest first (absent until the first append)'),
  append: AppendState.optional().describe(
    'the batch being appended (POST /datasets/{id}/documents), or the last one that failed'
  ),
  watch: Watch.optional()
})
export type DatasetRecord = z.infer<typeof DatasetRecord>

/** Whose chat turns a dataset pools: the source's poolRoles, or the inline documents' (default the assistant's). */
export const poolRolesOf = (record: Pick<DatasetRecord, 'source' | 'poolRoles'>): string[] =>
  ('url' in record.source ? (record.source as SourceSpec).poolRoles : undefined) ?? record.poolRoles ?? ['assistant']

/** The public view of a dataset: the record without its webhook secret. */
export const DatasetView = DatasetRecord.omit({ webhook: true, tenant: true }).extend({
  webhook: z.object({ url: z.string() }).optional()
})
export type DatasetView = z.infer<typeof DatasetView>

export const CreatedDataset = DatasetView.extend({
  webhookSecret: z.string().optional().describe('returned once, when the server generated the secret')
})

/** How many of a document's strongest latents get a `peak` (what the web shows of a document). */
export const DOCUMENT_PEAKED_LATENTS = 200

export const DocumentQuery = z.object({
  peaks: z
    .enum(['unlabelled', 'all', 'none'])
    .default('unlabelled')
    .describe(
      `which of the document's ${DOCUMENT_PEAKED_LATENTS} strongest latents get a \`peak\` (what they fire on, read off the dataset's stored top examples): those without a label (default), all, or none`
    )
})
export type DocumentQuery = z.infer<typeof DocumentQuery>

export const DocumentLatent = z.object({
  latent: z.number().int(),
  value: z.number(),
  position: z
    .number()
    .int()
    .describe("the token (0-based, in the reader's tokens) where the latent peaks in this document"),
  label: z.string().nullable().describe("the latent's label, the tenant's relabels included"),
  frequency: z
    .number()
    .optional()
    .describe(
      "share of the dataset's documents where the latent is present: a latent in every document says little about this one"
    ),
  labelSource: z
    .string()
    .nullable()
    .optional()
    .describe('where the label came from ("imported", the catalog\'s word, or "llm:<model>"); null without a label'),
  peak: LatentPeak.nullable()
    .optional()
    .describe(
      `what the latent fires on in the dataset's top examples (null when none has a visible peak token); on the ${DOCUMENT_PEAKED_LATENTS} strongest latents that \`peaks\` asks for, absent on the others`
    )
})
export type DocumentLatent = z.infer<typeof DocumentLatent>
export const DocumentView = z.object({
  dataset: z.string(),
  row: z.number().int(),
  id: z.string(),
  text: z.string(),
  metadata: z.record(z.string(), z.unknown()),
  tokenCount: z.number().int(),
  truncated: z.boolean(),
  latents: z.array(DocumentLatent)
})
export type DocumentView = z.infer<typeof DocumentView>

/** How many latents one request for a document's token activations may name. */
export const DOCUMENT_ACTIVATION_LATENTS = 32

/** Latent ids as a query parameter: `12,40`, each once, at most DOCUMENT_ACTIVATION_LATENTS. */
const shownLatents = (required: string) =>
  z
    .string({ error: required })
    .regex(/^\d+(,\d+)*$/, 'a comma-separated list of latent ids, e.g. 12,40,977')
    .transform(s => [...new Set(s.split(',').map(Number))])
    .refine(ids => ids.length <= DOCUMENT_ACTIVATION_LATENTS, {
      message: `at most ${DOCUMENT_ACTIVATION_LATENTS} latents per request`
    })
    .describe(`the latents whose per-token activations to return (at most ${DOCUMENT_ACTIVATION_LATENTS})`)

export const DocumentActivationsQuery = z.object({
  latents: shownLatents('latents is required: the latents to show, e.g. latents=12,40')
})
export type DocumentActivationsQuery = z.input<typeof DocumentActivationsQuery>

export const DocumentTokenLatent = z.object({
  latent: z.number().int(),
  label: z.string().nullable(),
  max: z.number().describe('the largest activation over the pooled tokens (0: the latent does not fire here)'),
  position: z.number().int().describe('the token where it is largest (the first such; -1 when it does not fire)'),
  activations: z.array(z.number()).describe('one per token of `tokens`; 0 where the token is not pooled')
})
export type DocumentTokenLatent = z.infer<typeof DocumentTokenLatent>
/** GET /datasets/{id}/documents/{row}/activations: where chosen latents fire, token by token. */
export const DocumentActivations = z.object({
  dataset: z.string(),
  row: z.number().int(),
  id: z.string(),
  encoder: z.string(),
  tokens: z
    .array(z.string())
    .describe(
      "the document's tokens as the reader read them: BOS first when the reader has one, then every kept token"
    ),
  pooled: z
    .array(z.number().int().min(0).max(1))
    .describe(
      '1 where the token counts for pooling; 0 for BOS, special tokens, unpooled chat roles and outlier tokens'
    ),
  truncated: z.boolean().describe('the document was longer than the reader reads: its tail is not in `tokens`'),
  latents: z.array(DocumentTokenLatent).describe('in the order asked')
})
export type DocumentActivations = z.infer<typeof DocumentActivations>

export const TextActivationsQuery = z.object({
  text: z
    .string({ error: 'text is required: the text to encode' })
    .trim()
    .min(1, 'text is required: the text to encode')
    .max(4000)
    .describe(
      "a text to encode with the dataset's encoder as its documents were (with format=chat, a JSON list of { role, content } messages); needs a process that holds the encoder (the local server), else 501"
    ),
  format: z
    .enum(['text', 'chat'])
    .default('text')
    .describe(
      "chat: `text` is a JSON list of { role, content } messages, rendered with the reader's chat template and pooled on the turns the dataset pools"
    ),
  latents: shownLatents('latents: a comma-separated list of latent ids')
    .optional()
    .describe(`these latents (at most ${DOCUMENT_ACTIVATION_LATENTS}) instead of the text's strongest`),
  top: z.coerce
    .number()
    .int()
    .min(1)
    .max(DOCUMENT_ACTIVATION_LATENTS)
    .default(20)
    .describe('how many of the strongest latents (largest activation on any token) to return, without `latents`'),
  order: z
    .enum(['strongest', 'distinctive'])
    .default('strongest')
    .describe(
      "without `latents`: the largest activations first, or distinctive first: activation x ln((n + 1) / (df + 1)) with the dataset's document frequencies, so latents that fire in every document sink"
    )
})
export type TextActivationsQuery = z.input<typeof TextActivationsQuery>

/** GET /datasets/{id}/activations?text=: a text's strongest latents (or chosen ones) and where each fires. */
export const TextActivations = DocumentActivations.omit({ row: true, id: true }).extend({
  text: z.string().describe('the text asked about'),
  present: z.number().int().describe('latents that fire on at least one pooled token of the text'),
  latents: z
    .array(
      DocumentTokenLatent.extend({
        frequency: z
          .number()
          .describe("share of the dataset's documents where the latent is present: one in every document says little"),
        peak: LatentPeak.nullable()
          .optional()
          .describe("on a latent without a label: what it fires on in the dataset's top examples")
      })
    )
    .describe('strongest (or most distinctive) first, or in the order asked')
})
export type TextActivations = z.infer<typeof TextActivations>

export const FacetValue = z.object({
  value: z.union([z.string(), z.number(), z.boolean(), z.null()]),
  documents: z.number().int().nonnegative(),
  meanTokens: z.number(),
  where: z.string().describe('the slice of these documents, in text form (for aWhere, bWhere, where)')
})
export type FacetValue = z.infer<typeof FacetValue>
/** The dataset's facets: its few-valued metadata keys with each value's documents, what a slice on them selects. */
export const FacetsView = z.object({
  dataset: z.string(),
  documents: z.number().int().nonnegative(),
  stored: z
    .boolean()
    .describe('false: the dataset was encoded before facets were written (slices on metadata still work, from rows)'),
  fields: z.array(
    z.object({
      field: z.string().describe('metadata.<key>'),
      values: z.array(FacetValue).describe('most documents first'),
      missing: z.number().int().nonnegative().describe('documents without the key')
    })
  ),
  other: z
    .array(z.string())
    .describe(
      'metadata fields seen that are not facets (more than 32 values, values that are not scalars, a dotted name, or no room; at most 256 listed): slices on them are counted from rows'
    )
})
export type FacetsView = z.infer<typeof FacetsView>
