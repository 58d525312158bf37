/** @module The encoder.json contract: reader + layer + SAE + labels, the unit users choose. */
import { z } from 'zod'

export const ReaderOutput = z.union([
  z.string().min(1),
  z.object({
    name: z.string().min(1),
    index: z.number().int().nonnegative().describe('index into a stacked hidden-states output [layers, B, T, D]')
  })
])

export const ReaderConfig = z.object({
  model: z.string().min(1).describe('path of the reader ONNX file, relative to the encoder folder'),
  tokenizer: z.string().min(1).describe('path of a Hugging Face tokenizer.json'),
  tokenizerConfig: z.string().optional().describe('path of tokenizer_config.json (chat template, special tokens)'),
  inputs: z
    .object({
      ids: z.string().min(1).optional(),
      mask: z.string().min(1).optional(),
      positions: z.string().min(1).optional()
    })
    .optional()
    .describe(
      'graph input names; when left out, told from the graph by their usual names (input_ids / ids / tokens, attention_mask / mask, position_ids)'
    ),
  output: ReaderOutput.optional().describe(
    "the graph output holding the hook's hidden states; when left out, hidden_states.<i> for the hook's index, or the one output shaped [batch, tokens, d_in]"
  ),
  hookName: z
    .string()
    .min(1)
    .optional()
    .describe(
      "SAELens hook name the output corresponds to; when left out, the SAE's (its metadata, folder or path); checked against it when both are given"
    ),
  maxTokens: z.number().int().positive().optional().describe("defaults to the SAE's context_size"),
  prependBos: z.boolean().default(true),
  longDocuments: z.enum(['truncate', 'window']).default('truncate'),
  preprocess: z
    .enum(['none', 'center'])
    .default('none')
    .describe("'center' subtracts each token's mean over d_model (for SAEs trained on centred-writing-weight models)")
})

export const SaeFormat = z.enum(['saelens', 'gemma-scope', 'sparsify', 'goodfire'])

export const SaeRef = z.object({
  format: SaeFormat.describe(
    'saelens: cfg.json + sae_weights.safetensors; gemma-scope: params.npz, or params.safetensors + config.json (Gemma Scope 2); sparsify: a layers.N folder with cfg.json + sae.safetensors; goodfire: the .pth checkpoint or a safetensors conversion of it'
  ),
  path: z
    .string()
    .min(1)
    .describe('the SAE folder (or, for gemma-scope and goodfire, the file), relative to the encoder folder'),
  hookName: z
    .string()
    .min(1)
    .optional()
    .describe(
      'the hook the SAE reads, where its files do not say (gemma-scope params.npz outside its hub path, goodfire); checked where they do'
    ),
  dIn: z.number().int().positive().optional().describe('expected d_in, checked against the tensors'),
  dSae: z.number().int().positive().optional().describe('expected number of latents, checked against the tensors'),
  contextSize: z
    .number()
    .int()
    .positive()
    .optional()
    .describe("training context length, where the SAE's files give none")
})

export const EncoderConfig = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'encoder id: lower-case letters, digits, . _ -'),
  description: z.string().optional(),
  reader: ReaderConfig,
  sae: SaeRef,
  labels: z.string().optional().describe('JSONL of { latent, label } (relative path)')
})
export type EncoderConfig = z.infer<typeof EncoderConfig>

/** What the API says about a loaded encoder. */
export const EncoderInfo = z.object({
  id: z.string(),
  description: z.string().optional(),
  fingerprint: z.string(),
  hookName: z.string(),
  dIn: z.number().int(),
  dSae: z.number().int(),
  architecture: z.string(),
  maxTokens: z.number().int(),
  labelled: z.number().int().describe('number of latents with a label'),
  labelsVersion: z
    .string()
    .optional()
    .describe(
      "digest of the encoder's labels, their sources and scores: changes when they are re-imported, which the fingerprint does not (labels do not change latent values)"
    )
})
export type EncoderInfo = z.infer<typeof EncoderInfo>

/** An encoder folder that was found but did not load, and why (the folder's name only: no machine paths). */
export const UnavailableEncoder = z.object({
  folder: z.string().describe('name of the encoder folder (its last path segment)'),
  error: z.string().describe('why it did not load, naming the encoder.json field or file at fault')
})
export type UnavailableEncoder = z.infer<typeof UnavailableEncoder>

/** GET /encoders: the encoders a deployment can use, and the folders it found that failed to load. */
export const EncoderList = z.object({
  encoders: z.array(EncoderInfo),
  unavailable: z
    .array(UnavailableEncoder)
    .describe('encoder folders that failed to load, with the reason; empty when all loaded')
})
export type EncoderList = z.infer<typeof EncoderList>
