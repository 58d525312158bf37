/** @module Publishes the worker's loaded encoders to the store, for APIs that load no model (Worker, Lambda). */
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { publishEncoderCatalog as publish, type PublishedCatalog } from '@latentbase/shared/catalog/store-catalog'
import type { LoadedEncoder } from './encode/runtime.ts'
import { LoadedEncoders } from './registry.ts'

export async function publishEncoderCatalog(
  objects: ObjectStore,
  encoders: Map<string, LoadedEncoder> | Iterable<LoadedEncoder>,
  log: (line: string) => void = console.log
): Promise<PublishedCatalog> {
  const list = encoders instanceof Map ? [...encoders.values()] : [...encoders]
  // Folders that failed to load are published too (names and reasons only), so GET /encoders says why they are missing.
  const unavailable = encoders instanceof LoadedEncoders ? encoders.unavailable : []
  const catalog = await publish(
    objects,
    list.map(e => ({ info: e.info, labels: e.labels, labelSources: e.labelSources, labelDetection: e.labelDetection })),
    undefined,
    unavailable
  )
  log(
    `[encoders] published ${list.length} encoder(s) to the store catalog (${catalog.encoders.length} listed${unavailable.length ? `, ${unavailable.length} unavailable` : ''})`
  )
  return catalog
}
