/** @module Fixture for import-cycles.test.ts: half of a two-file cycle through a type-only, multi-line import. */
import type { B } from './b.ts'

export interface A {
  b?: B
}
