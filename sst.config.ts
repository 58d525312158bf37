/// <reference path="./.sst/platform/config.d.ts" />
/**
 * @module Latentbase on AWS (SST v4): the S3 store, the encode and analysis queues with dead-letter queues, the API and
 * the analysis consumer as Lambdas, and the GPU worker on ECS over EC2 GPU instances. Pieces live under infra/;
 * infra/harness.test.ts evaluates this file with stand-ins for SST's globals and checks what it declares.
 */
export default $config({
  app(input) {
    return {
      name: 'latentbase',
      home: 'aws',
      // Production keeps the bucket (datasets) when the stack is removed; other stages clean up.
      removal: input?.stage === 'production' ? 'retain' : 'remove',
      protect: input?.stage === 'production',
      // The same expression as infra/constants.ts REGION (app() runs before infra/ can be imported).
      providers: { aws: { region: process.env.AWS_REGION ?? 'us-east-1' } }
    }
  },
  async run() {
    const { storage } = await import('./infra/storage.ts')
    const { functions } = await import('./infra/functions.ts')
    const { gpuWorker } = await import('./infra/gpu.ts')
    const s = storage()
    const { api, analysisConsumer } = functions(s)
    const gpu = gpuWorker(s)
    return {
      api: api.url,
      bucket: s.bucket.name,
      encodeQueue: s.encode.url,
      encodeDlq: s.encodeDlq.url,
      analysisQueue: s.analysis.url,
      analysisDlq: s.analysisDlq.url,
      analysisConsumer: analysisConsumer.name,
      gpuWorkerRepository: gpu.repository.repositoryUrl,
      gpuCluster: gpu.cluster.name
    }
  }
})
