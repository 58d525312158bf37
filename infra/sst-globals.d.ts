/**
 * @module Loose stand-in declarations of SST's globals, so `tsc -p infra/tsconfig.json` checks infra/ without
 * `sst install` (which writes the real ones to .sst/platform/config.d.ts; sst.config.ts references those).
 */
declare const sst: any
declare const aws: any
declare const $app: { name: string; stage: string }
declare function $interpolate(strings: TemplateStringsArray, ...values: unknown[]): any
declare function $jsonStringify(value: unknown): any
declare function $config(config: unknown): unknown
