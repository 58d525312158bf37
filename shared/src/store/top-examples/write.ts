/** @module Writer of examples/top-examples.parquet: each latent's strongest documents with their token windows. */
import { parquetWriteBuffer } from 'hyparquet-writer'
import type { TopExampleColumns } from './columns.ts'

/** The bytes of examples/top-examples.parquet from columns of examples (any order). */
export function writeTopExamples(c: TopExampleColumns): Uint8Array {
  // Sorted by (latent, rank) so a latent page reads one contiguous run.
  const order = c.latent.map((_, i) => i).sort((x, y) => c.latent[x] - c.latent[y] || c.rank[x] - c.rank[y])
  const pick = <T>(a: T[]) => order.map(i => a[i])
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: 'latent', data: Int32Array.from(pick(c.latent)), type: 'INT32' },
      { name: 'rank', data: Int32Array.from(pick(c.rank)), type: 'INT32' },
      { name: 'doc', data: Int32Array.from(pick(c.doc)), type: 'INT32' },
      { name: 'value', data: Float32Array.from(pick(c.value)), type: 'FLOAT' },
      { name: 'position', data: Int32Array.from(pick(c.position)), type: 'INT32' },
      { name: 'window_start', data: Int32Array.from(pick(c.windowStart)), type: 'INT32' },
      { name: 'tokens', data: pick(c.tokens), type: 'JSON' },
      { name: 'activations', data: pick(c.activations), type: 'JSON' }
    ]
  })
  return new Uint8Array(buffer)
}
