/**
 * @module Rows of the latent shards read from several files and pages, and their assembly into one compressed matrix:
 * by document (CSR) or by latent (CSC), the same counting sort either way.
 */

/** A run of rows of a latent shard, one array per column. */
export interface LatentPart {
  latent: Int32Array
  doc: Int32Array
  value: Float32Array
  position: Int32Array
}

export interface CompressedParts {
  /** n + 1 offsets: row i of the matrix is [indptr[i], indptr[i + 1]). */
  indptr: Int32Array
  /** The other key of each entry: latents when compressed by document, documents when by latent. */
  minor: Int32Array
  values: Float32Array
  positions: Int32Array
}

/**
 * Counting sort of the parts' rows into `n` compressed rows keyed by `major` minus `offset`. Entries of one row keep
 * their read order, so rows read in sort order stay sorted.
 */
export function compressParts(
  parts: readonly LatentPart[],
  major: 'doc' | 'latent',
  n: number,
  offset = 0
): CompressedParts {
  const minorKey = major === 'doc' ? 'latent' : 'doc'
  const indptr = new Int32Array(n + 1)
  let nnz = 0
  // Whether the parts' keys never decrease, part after part: then the sort is the read order, and the columns are the
  // parts' columns end to end (one block copy each) instead of an entry-by-entry scatter.
  let sorted = true
  let last = Number.NEGATIVE_INFINITY
  for (const p of parts) {
    const keys = p[major]
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k]
      indptr[key - offset + 1]++
      if (key < last) sorted = false
      last = key
    }
    nnz += keys.length
  }
  for (let i = 0; i < n; i++) indptr[i + 1] += indptr[i]
  if (sorted) {
    // Copied even for a single part: the parts may view a store's bytes, and callers may sort the result in place.
    const nonEmpty = parts.filter(p => p[major].length > 0)
    const join = <T extends Int32Array | Float32Array>(out: T, column: (p: LatentPart) => T): T => {
      let at = 0
      for (const p of nonEmpty) {
        out.set(column(p), at)
        at += column(p).length
      }
      return out
    }
    return {
      indptr,
      minor: join(new Int32Array(nnz), p => p[minorKey]),
      values: join(new Float32Array(nnz), p => p.value),
      positions: join(new Int32Array(nnz), p => p.position)
    }
  }
  const fill = indptr.slice(0, n)
  const minor = new Int32Array(nnz)
  const values = new Float32Array(nnz)
  const positions = new Int32Array(nnz)
  for (const p of parts) {
    const keys = p[major]
    const other = p[minorKey]
    for (let k = 0; k < keys.length; k++) {
      const at = fill[keys[k] - offset]++
      minor[at] = other[k]
      values[at] = p.value[k]
      positions[at] = p.position[k]
    }
  }
  return { indptr, minor, values, positions }
}
