/** @module Length-bucketed batching of prepared windows (little padding) and packing them into right-padded reader input. */

export interface BatchPlanOptions {
  /** Cap on batchSize x longest sequence in the batch (the padded tokens the reader runs on). */
  maxTokensPerBatch?: number
  maxBatchSize?: number
  /** The cap that packBatch will round batch lengths under (roundedBatchLength): the rounded length counts. */
  lengthCap?: number
}

/**
 * Cuts a chunk of sequences into batches of similar length: sorted longest first, each batch takes
 * as many as fit `batchSize * maxLenInBatch <= maxTokensPerBatch` (a sequence longer than the cap
 * goes alone). Returns indices into `lengths`; the longest batch comes first, so running out of
 * memory shows at once.
 */
export function planBatches(lengths: Int32Array, opts: BatchPlanOptions = {}): Int32Array[] {
  const maxTokens = opts.maxTokensPerBatch ?? 8192
  const maxBatch = Math.max(1, opts.maxBatchSize ?? 32)
  const order = new Int32Array(lengths.length)
  for (let i = 0; i < order.length; i++) order[i] = i
  order.sort((a, b) => lengths[b] - lengths[a] || a - b)
  const batches: Int32Array[] = []
  let start = 0
  while (start < order.length) {
    const longest = Math.max(
      1,
      opts.lengthCap === undefined ? lengths[order[start]] : roundedBatchLength(lengths[order[start]], opts.lengthCap)
    )
    const size = Math.max(1, Math.min(maxBatch, Math.floor(maxTokens / longest), order.length - start))
    batches.push(order.slice(start, start + size))
    start += size
  }
  return batches
}

/** Reader input for one batch, right-padded: row b holds tokens [b * seqLen, (b + 1) * seqLen). */
export interface PackedBatch {
  ids: BigInt64Array
  /** 1 = real token, 0 = padding. */
  attention: Uint8Array
  /** 1 = pooled; 0 on padding and wherever the sequence's own mask is 0. */
  poolMask: Float32Array
  batchSize: number
  seqLen: number
}

/**
 * The pooled graph finds each latent's argmax token in blocks of T's largest divisor up to 16 (`maxOverTokens` in
 * fused-graph.ts): a batch length with no divisor from 8 to 16 (a prime, twice a prime, ...: more than half the
 * lengths from 100 to 512) makes its blocks small or single tokens, and the search a pass over all [B, T, S]. Padding
 * the batch a token or two to a length with such a divisor costs the reader that share of its work and saves more
 * (same process, alternating; docs/performance.md): the demo encoder's graph over 150k tokens 6-12% faster; a
 * GPT-2-sized reader with the int8 SAE 0.6-3% faster on the batches that changed (11% on a 179 -> 180 one), and
 * slower where the padding passed 2% (145 -> 150). Hence at most 1/50 of T more, never past `cap` (the encoder's
 * window, which the reader takes).
 */
export function roundedBatchLength(longest: number, cap: number): number {
  const bestBlock = (t: number) => {
    for (let k = 16; k >= 8; k--) if (t % k === 0) return true
    return false
  }
  const last = Math.min(cap, longest + Math.floor(longest / 50))
  for (let t = longest; t <= last; t++) if (bestBlock(t)) return t
  return longest
}

/**
 * Packs sequences (prepared windows) into one batch, padding on the right with `padId`; with `cap`, to the length
 * `roundedBatchLength` picks (the extra columns are padding like any other: attention and pooling masks 0).
 */
export function packBatch(
  sequences: ArrayLike<{ ids: Int32Array; poolMask: Uint8Array }>,
  padId = 0,
  cap?: number
): PackedBatch {
  const batchSize = sequences.length
  let seqLen = 0
  for (let b = 0; b < batchSize; b++) seqLen = Math.max(seqLen, sequences[b].ids.length)
  if (cap !== undefined) seqLen = roundedBatchLength(seqLen, cap)
  const n = batchSize * seqLen
  const ids = new BigInt64Array(n).fill(BigInt(padId))
  const attention = new Uint8Array(n)
  const poolMask = new Float32Array(n)
  for (let b = 0; b < batchSize; b++) {
    const s = sequences[b]
    const base = b * seqLen
    for (let t = 0; t < s.ids.length; t++) {
      ids[base + t] = BigInt(s.ids[t])
      attention[base + t] = 1
      poolMask[base + t] = s.poolMask[t]
    }
  }
  return { ids, attention, poolMask, batchSize, seqLen }
}

/** Share of the token slots in the batches that are padding. */
export function paddingFraction(lengths: Int32Array, batches: readonly Int32Array[]): number {
  let real = 0
  let slots = 0
  for (const batch of batches) {
    let longest = 0
    for (const i of batch) {
      real += lengths[i]
      longest = Math.max(longest, lengths[i])
    }
    slots += longest * batch.length
  }
  return slots === 0 ? 0 : 1 - real / slots
}
