/** @module Polling a dataset or an analysis job until it settles: growing intervals, a deadline and an abort signal. */

export interface PollSettings<T> {
  timeoutMs: number
  /** The first wait; each next one is 1.5x longer, up to maxIntervalMs. */
  intervalMs: number
  maxIntervalMs: number
  signal?: AbortSignal
  /** Told every state seen, the settled one included. */
  onProgress?: (state: T) => void
  /** The error message once the deadline has passed, from the last state seen. */
  notReady: (state: T) => string
}

/** Read the state until `settled` says true (it throws for a failed state); the last state is returned. */
export async function pollUntil<T>(
  get: () => Promise<T>,
  settled: (state: T) => boolean,
  o: PollSettings<T>
): Promise<T> {
  const deadline = Date.now() + o.timeoutMs
  let interval = o.intervalMs
  for (;;) {
    const state = await get()
    o.onProgress?.(state)
    if (settled(state)) return state
    if (Date.now() > deadline) throw new Error(o.notReady(state))
    o.signal?.throwIfAborted()
    await new Promise(r => setTimeout(r, interval))
    interval = Math.min(interval * 1.5, o.maxIntervalMs)
  }
}
