/** @module Time left in a job at the rate seen since a first observation: the CLI's --wait and the web's progress bars. */

/** When units were first seen done (the first observation with some done), and how many. */
export interface FirstSeen {
  at: number
  done: number
}

/**
 * "about 60 s left" at the rate units have been done since `first`, or "" until there is a rate to go by: two
 * observations at least 3 s apart with more done, and a known total. Times in milliseconds.
 */
export function timeLeft(first: FirstSeen | null, done: number, total: number | null, now: number): string {
  if (!first || total === null || done <= first.done || now - first.at < 3000) return ''
  const seconds = ((total - done) * (now - first.at)) / 1000 / (done - first.done)
  if (seconds < 1) return ''
  const left =
    seconds < 90
      ? `${Math.round(seconds)} s`
      : seconds < 5400
        ? `${Math.round(seconds / 60)} min`
        : `${(seconds / 3600).toFixed(1)} h`
  return `about ${left} left`
}
