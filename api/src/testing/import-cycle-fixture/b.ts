/** @module Fixture for import-cycles.test.ts: the other half of the cycle (imports a.ts back). */
import type { A } from './a.ts'

export interface B {
  a?: A
}
