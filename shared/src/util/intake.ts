/** @module What a dataset's source lost on the way in, summed from its stats: for the CLI and the web list (no zod, so the web bundle stays small). */

/** Records skipped (in all, and each reason that skipped any) and documents truncated. */
export function intakeOf(stats: { skipped: Record<string, number>; truncated: number }): {
  skipped: number
  reasons: Array<[reason: string, records: number]>
  truncated: number
} {
  const reasons = Object.entries(stats.skipped).filter(([, n]) => n > 0)
  return { skipped: reasons.reduce((sum, [, n]) => sum + n, 0), reasons, truncated: stats.truncated }
}
