/** @module The correlations contract: query parameters and result of GET /correlations (latent pairs that co-occur, by NPMI). */
import { z } from 'zod'
import { LatentRef } from './latents.ts'
import { SliceParam } from './slice.ts'

const bool = (fallback: boolean) =>
  z
    .enum(['true', 'false'])
    .transform(v => v === 'true')
    .default(fallback)

/**
 * Defaults, and why:
 * - minFrequency 0: the floor that matters is minCount (a latent in fewer documents than minCount cannot form a
 *   listed pair, so it is dropped before pairing at no loss). Raise it to skip rare latents on purpose.
 * - maxFrequency 0.5: a latent present in p_a > 1/2 of the documents can reach NPMI at most ln(1/p_a)/(-ln p_b) with a
 *   rarer latent b (0.15 for p_b = 1%), so it only pairs with other dense (format, BOS-like) latents, while its pairs
 *   cost the most to count (work grows with frequency squared).
 * - minCount 5: pairs seen in 1-2 documents get NPMI near 1 from chance alone among rare latents; 5 still finds the
 *   paper's planted correlation at 10 documents in 10,000.
 * - minNpmi 0.5: results are sorted by NPMI, so the threshold only cuts the tail; 0.5 sits below the paper's 0.6-0.7
 *   for real data so borderline pairs stay visible. For two 1% latents NPMI 0.5 means P(a|b) ~ 0.22, 21x chance.
 * - maxLabelSimilarity 0.2: the paper's cosine between label embeddings above which two labels say the same thing.
 * - minActivation 0.5: under max pooling a latent fires weakly in most long documents, so "value > 0" (the paper's
 *   binarization) makes frequent latents co-occur through document length alone. Counting a latent only where it reaches
 *   half its value in its 16th strongest document (a high quantile that one outlier cannot move, from the stored
 *   top-16) keeps the documents where it really fires. Measured (`npm run eval:correlations`,
 *   demo encoder, 40 planted documents in 2,000): the planted pair is absent from the top 100 at 0, first at 0.5.
 *   minActivation=0 gives the paper's rule.
 * - dropPositional: latents that fire at a fixed token position (within one) in >= 90% of their documents encode where
 *   a token is, not what the text says; they pair with each other in exactly the documents long enough to reach those
 *   positions (measured: such pairs took the 21 places above the planted pair in `npm run eval:correlations`).
 * - dropAdjacent with adjacentShare 0.5 and adjacentTokens 3: two latents whose max sits within 3 tokens of each other
 *   in over half of their shared documents describe the same word or phrase (twins of one token, the pieces of a
 *   multi-token word): see CorrelationPair.adjacentShare. The paper drops pairs on the same or adjacent tokens
 *   (adjacentTokens 1), but a rare word is split into 2-5 subword tokens (Llama 2: `▁ob jections`, `▁ad ul ter ation`,
 *   `▁sa x oph on ist`) and a latent of one piece can peak on any of them, or just after them in a reader that mixes in
 *   the preceding tokens, so the latents of one word peak up to ~3 tokens apart. Measured (`npm run eval:correlations`,
 *   demo encoder): at 1, the pairs above the planted ones were pieces of one background word ("objections",
 *   "deficiency", "adulteration"; their peaks a median 2-3 tokens apart); at 3 they are dropped and the planted pairs,
 *   whose sentences sit ~60 tokens apart, move from ranks 12 and 4 to 4 and 1.
 */
export const CorrelationsQuery = z.object({
  dataset: z.string({ error: 'dataset is required: the id of the dataset to find co-occurring latents in' }).min(1),
  minNpmi: z.coerce.number().min(-1).max(1).default(0.5),
  minFrequency: z.coerce
    .number()
    .min(0)
    .max(1)
    .default(0)
    .describe('drop latents present in fewer than this share of documents before pairing'),
  maxFrequency: z.coerce
    .number()
    .min(0)
    .max(1)
    .default(0.5)
    .describe('drop latents present in more than this share of documents before pairing'),
  minCount: z.coerce.number().int().min(1).default(5).describe('documents where both latents are present'),
  maxLabelSimilarity: z.coerce
    .number()
    .min(-1)
    .max(1)
    .default(0.2)
    .describe(
      "drop pairs whose labels' embeddings have a cosine above this (1 keeps all); pairs with an unlabelled latent are kept"
    ),
  dropAdjacent: bool(true).describe(
    'drop pairs whose max positions are within adjacentTokens of each other in over adjacentShare of their shared documents (the same word or phrase)'
  ),
  dropPositional: bool(true).describe(
    'leave out positional latents: those whose max sits at the same token position (within one) in >= 90% of their documents'
  ),
  adjacentShare: z.coerce
    .number()
    .min(0)
    .max(1)
    .default(0.5)
    .describe('the share of shared documents that makes a pair adjacent'),
  adjacentTokens: z.coerce
    .number()
    .int()
    .min(0)
    .max(64)
    .default(3)
    .describe(
      "how many tokens apart two max positions may be and count as adjacent (1: the same or the next token, the paper's rule; 3 covers the pieces of a word split into up to 4 tokens)"
    ),
  minActivation: z.coerce
    .number()
    .min(0)
    .max(1)
    .default(0.5)
    .describe(
      'a latent counts as present in a document only when its pooled value reaches this share of its value in its 16th strongest document ' +
        "(0: any value > 0, the paper's rule). Under max pooling latents fire weakly in most long documents; 0.5 keeps the documents where a latent really fires"
    ),
  limit: z.coerce.number().int().min(1).max(5000).default(100),
  where: SliceParam.optional().describe(
    "only the documents of a slice (docs/slices.md): frequencies, thresholds and NPMI are the slice's own"
  )
})
export type CorrelationsQuery = z.infer<typeof CorrelationsQuery>
export type CorrelationsInput = z.input<typeof CorrelationsQuery>

export const CorrelatedLatent = LatentRef.extend({
  frequency: z.number().describe('share of documents where the latent is present'),
  documents: z.number().int().describe('documents where the latent is present')
})

export const CorrelationPair = z.object({
  a: CorrelatedLatent,
  b: CorrelatedLatent,
  npmi: z.number().describe('ln(P(a,b) / P(a)P(b)) / -ln P(a,b), over binary presence per document'),
  count: z.number().int().describe('documents where both are present'),
  pAGivenB: z.number(),
  pBGivenA: z.number(),
  adjacentShare: z
    .number()
    .describe(
      "share of the shared documents where the two latents' max-activation tokens are within adjacentTokens of each other. " +
        "An approximation: only the position of each latent's max is stored, so two latents that fire on the same " +
        'tokens but peak elsewhere are not caught, and a pair that peaks together by chance is'
    ),
  labelSimilarity: z
    .number()
    .nullable()
    .describe("cosine of the two labels' embeddings; null when a label is missing or the filter is off")
})
export type CorrelationPair = z.infer<typeof CorrelationPair>

export const CorrelationsResult = z.object({
  dataset: z.string(),
  where: z.string().optional().describe('the slice analysed (canonical text form); absent for the whole dataset'),
  encoder: z.string(),
  documents: z.number().int(),
  latentsConsidered: z.number().int().describe('latents left after the frequency filters'),
  pairsCounted: z.number().int().describe('pairs of considered latents that co-occur in at least one document'),
  dropped: z.object({
    positional: z.number().int().describe('considered latents left out as positional (dropPositional)'),
    adjacent: z.number().int().describe('pairs above minNpmi and minCount dropped as adjacent'),
    similarLabels: z
      .number()
      .int()
      .describe('pairs dropped for similar labels (among those examined to fill the limit)')
  }),
  truncated: z
    .boolean()
    .describe('more pairs passed the thresholds than were kept as candidates; the top ones are exact'),
  embedder: z.string().nullable().describe('the embedder used for label similarity (null when the filter was off)'),
  seconds: z.number(),
  pairs: z.array(CorrelationPair)
})
export type CorrelationsResult = z.infer<typeof CorrelationsResult>
