/** @module `npm start`: runs the local all-in-one server until interrupted. */
import { startLocal } from './local-server.ts'

const server = await startLocal({ port: Number(process.env.PORT ?? 8787), hostname: process.env.HOST ?? '127.0.0.1' })
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.log(`[local] ${sig}: finishing in-flight work, then exiting`)
    void server.close().then(() => process.exit(0))
  })
}
