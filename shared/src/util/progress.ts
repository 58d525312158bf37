/**
 * @module Progress of several concurrent tasks for command-line steps (the demo's encodes, evals, benches). On a
 * terminal: one bar per task, redrawn in place, with log lines printed above the bars. Elsewhere (a pipe, a CI
 * log): one plain line per change, no carriage returns. Logs written with console.* while it is active go through
 * it (captureConsole), so a library that logs does not break the bars.
 */
import { format } from 'node:util'

/** The stream it draws on: process.stdout, or anything with write (and isTTY / columns for a terminal). */
export interface ProgressStream {
  write(chunk: string): unknown
  isTTY?: boolean
  columns?: number
}

export interface TaskState {
  /** Units done (documents, rows, ...). */
  done: number
  /** Units in all; null while not known (the bar then shows no fraction). */
  total: number | null
  /** A word for the state (queued, running, ...). */
  status?: string
  /** Anything else worth a glance (tokens so far). */
  detail?: string
}

export interface Progress {
  /** Adds or updates a task; on a terminal its bar is redrawn, elsewhere a line is printed if its text changed. */
  update(name: string, state: TaskState): void
  /** Ends a task with a final line (kept on screen, above the bars still running). */
  finish(name: string, line: string): void
  /** A log line, printed above the bars. */
  log(line: string): void
  /** Routes console.log/info/warn/error through log() until close(). */
  captureConsole(): void
  /** Stops: draws the last state, gives the console back. */
  close(): void
}

export interface ProgressOptions {
  stream?: ProgressStream
  /** Force the terminal (true) or line (false) mode; default: the stream's isTTY. */
  tty?: boolean
  /** Unit of done/total in words (default 'documents'). */
  unit?: string
}

const BAR_WIDTH = 24
const CLEAR_LINE = '\x1b[2K'
const up = (n: number) => (n > 0 ? `\x1b[${n}A` : '')

function percent(s: TaskState): string {
  return s.total ? `${Math.floor((100 * Math.min(s.done, s.total)) / s.total)}%` : ''
}

/** The bar itself: filled to done/total, or an empty track while the total is not known. */
export function bar(s: TaskState, width = BAR_WIDTH): string {
  if (!s.total) return `[${'·'.repeat(width)}]`
  const filled = Math.round((width * Math.min(s.done, s.total)) / s.total)
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]`
}

function counts(s: TaskState, unit: string): string {
  const n = (x: number) => x.toLocaleString('en')
  return `${n(s.done)}${s.total !== null ? `/${n(s.total)}` : ''} ${unit}`
}

/** One task as a plain line (line mode): `ham-0: running 120/2,000 documents (6%), 51,200 tokens`. */
export function plainLine(name: string, s: TaskState, unit = 'documents'): string {
  const pct = percent(s)
  return `${name}: ${s.status ? `${s.status} ` : ''}${counts(s, unit)}${pct ? ` (${pct})` : ''}${s.detail ? `, ${s.detail}` : ''}`
}

export function createProgress(options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stdout
  const tty = options.tty ?? Boolean(stream.isTTY)
  const unit = options.unit ?? 'documents'
  const tasks = new Map<string, TaskState>()
  const printed = new Map<string, string>()
  let drawn = 0
  let restore: (() => void) | null = null
  const nameWidth = () => Math.max(4, ...[...tasks.keys()].map(k => k.length))

  function barLine(name: string, s: TaskState): string {
    // Most telling first: a narrow terminal cuts the detail, not the status.
    const text = `${name.padEnd(nameWidth())} ${bar(s)} ${percent(s).padStart(4)}  ${s.status ? `${s.status.padEnd(7)}  ` : ''}${counts(s, unit)}${s.detail ? `, ${s.detail}` : ''}`
    const columns = stream.columns ?? 120
    return text.length > columns - 1 ? text.slice(0, columns - 1) : text
  }
  /** Terminal mode: erase the bars drawn last time, print `above` (logs, finished lines), draw the bars again. */
  function redraw(above: string[] = []) {
    let out = drawn ? `\r${up(drawn)}` : ''
    for (const line of above) out += `${CLEAR_LINE}${line}\n`
    for (const [name, s] of tasks) out += `${CLEAR_LINE}${barLine(name, s)}\n`
    // Lines left over from a taller previous drawing.
    const leftover = drawn - tasks.size - above.length
    for (let i = 0; i < leftover; i++) out += `${CLEAR_LINE}\n`
    if (leftover > 0) out += up(leftover)
    drawn = tasks.size
    stream.write(out)
  }

  const progress: Progress = {
    update(name, state) {
      tasks.set(name, { ...state })
      if (tty) {
        redraw()
        return
      }
      const line = plainLine(name, state, unit)
      if (printed.get(name) !== line) {
        printed.set(name, line)
        stream.write(`${line}\n`)
      }
    },
    finish(name, line) {
      tasks.delete(name)
      printed.delete(name)
      if (tty) redraw([line])
      else stream.write(`${line}\n`)
    },
    log(line) {
      if (tty) redraw(line.split('\n'))
      else stream.write(`${line}\n`)
    },
    captureConsole() {
      if (restore) return
      const saved = { log: console.log, info: console.info, warn: console.warn, error: console.error }
      const through = (...args: unknown[]) => progress.log(format(...args))
      console.log = through
      console.info = through
      console.warn = through
      console.error = through
      restore = () => Object.assign(console, saved)
    },
    close() {
      restore?.()
      restore = null
      if (tty && tasks.size) redraw()
      drawn = 0
    }
  }
  return progress
}
