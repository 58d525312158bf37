/** @module Fixture for import-cycles.test.ts: a file that imports the cycle without being part of it. */
import type { A } from './a.ts'

export type C = A
