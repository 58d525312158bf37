/**
 * @module A local server in its own process, for the kill test (api/src/kill.test.ts): DATA_DIR from the
 * environment, a short job lease so a killed worker's job comes back quickly, small parts so a kill lands mid-job, and a
 * receive limit above the number of kills.
 * Prints `{"url": ...}` once it listens.
 */
import { startLocal } from './local-server.ts'

const server = await startLocal({
  dataDir: process.env.DATA_DIR,
  port: 0,
  log: () => {},
  visibilitySeconds: 2,
  // Kills, not poison, are under test: a part may be cut off several times before it finishes.
  maxReceives: 20,
  encodeOptions: { chunkDocuments: 4, partDocuments: 6, progressIntervalMs: 0, topExamplesPerLatent: 1 }
})
process.stdout.write(JSON.stringify({ url: server.url }) + '\n')
