/** @module One fresh process of the cold-start benchmark: build the app over a store on disk, time its first and second call of one route. */
const [store, route, latents] = process.argv.slice(2)

export interface ColdResult {
  modulesMs: number
  firstMs: number
  secondMs: number
  /** CPU time (user + system, all threads) of this process over the same spans: on a shared machine, wall time also measures the others. */
  modulesCpuMs?: number
  firstCpuMs?: number
  secondCpuMs?: number
  status: number
}

const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000

if (store) {
  const { FsObjectStore } = await import('@latentbase/shared/store/fs-store')
  const { DatasetStore } = await import('@latentbase/shared/store/dataset-store')
  const { OfflineEmbedder } = await import('@latentbase/shared/embeddings/offline')
  const { createApp } = await import('../app.ts')
  const { syntheticCatalog, syntheticTopics } = await import('./synthetic-store.ts')
  const nLatents = Number(latents)
  const objects = new FsObjectStore(store)
  const app = createApp({
    objects,
    datasets: new DatasetStore(objects),
    encoders: syntheticCatalog('syn', nLatents, syntheticTopics(nLatents, 20, 40)),
    mode: 'local',
    tenantOf: () => 'local',
    embedder: new OfflineEmbedder(),
    queue: null as never
  })
  const modulesMs = performance.now() // since the process started
  const modulesCpuMs = cpuMs(process.cpuUsage())
  const path =
    route === 'diff'
      ? '/diff?a=ds_a&b=ds_b&limit=50'
      : route === 'search'
        ? `/search?dataset=ds_a&q=${encodeURIComponent('topic')}&limit=20`
        : '/latents/5?dataset=ds_a'
  let t = performance.now()
  let c = process.cpuUsage()
  const res = await app.request(path)
  await res.arrayBuffer()
  const firstMs = performance.now() - t
  const firstCpuMs = cpuMs(process.cpuUsage(c))
  t = performance.now()
  c = process.cpuUsage()
  // The same route, another query: what a warm process pays (the answer cache would hide a repeat).
  await (
    await app.request(
      path.replace('limit=50', 'limit=49').replace('limit=20', 'limit=19').replace('/latents/5', '/latents/6')
    )
  ).arrayBuffer()
  const secondMs = performance.now() - t
  const secondCpuMs = cpuMs(process.cpuUsage(c))
  const out: ColdResult = { modulesMs, firstMs, secondMs, modulesCpuMs, firstCpuMs, secondCpuMs, status: res.status }
  console.log(JSON.stringify(out))
}
