/** @module Publishes the worker's loaded encoders to the store, for APIs that load no model (Worker, Lambda). */
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { publishEncoderCatalog as publish, type PublishedCatalog } from '@latentbase/shared/encoders/store-catalog'
import type { LoadedEncoder } from './encoder/runtime.ts'

export async function publishEncoderCatalog(objects: ObjectStore, encoders: Map<string, LoadedEncoder> | Iterable<LoadedEncoder>,
  log: (line: string) => void = console.log): Promise<PublishedCatalog> {
  const list = encoders instanceof Map ? [...encoders.values()] : [...encoders]
  const catalog = await publish(objects, list.map((e) => ({ info: e.info, labels: e.labels, labelSources: e.labelSources, labelDetection: e.labelDetection })))
  log(`[encoders] published ${list.length} encoder(s) to the store catalog (${catalog.encoders.length} listed)`)
  return catalog
}
