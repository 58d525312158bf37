/** @module Tests of the progress renderer: plain lines per change off a terminal, bars redrawn in place on one, logs kept out of the bars. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bar, createProgress, plainLine } from './progress.ts'

function sink(isTTY: boolean) {
  const chunks: string[] = []
  return {
    chunks,
    stream: {
      isTTY,
      columns: 100,
      write: (s: string) => {
        chunks.push(s)
      }
    },
    text: () => chunks.join('')
  }
}

/** What a terminal would show: applies \r, cursor-up and clear-line to a grid of lines. */
function screen(output: string): string[] {
  const lines: string[] = ['']
  let row = 0
  for (let i = 0; i < output.length; ) {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the test reads the terminal's escape sequences
    const esc = /^\x1b\[(\d*)([AK])/.exec(output.slice(i))
    if (esc) {
      if (esc[2] === 'A') row = Math.max(0, row - Number(esc[1] || 1))
      else lines[row] = ''
      i += esc[0].length
      continue
    }
    const ch = output[i++]
    if (ch === '\r') continue
    if (ch === '\n') {
      row++
      lines[row] ??= ''
      continue
    }
    lines[row] += ch
  }
  return lines.filter((l, i) => l !== '' || i < row)
}

test('off a terminal: one plain line per change, none for a repeat, no carriage returns or escapes', () => {
  const out = sink(false)
  const p = createProgress({ stream: out.stream })
  p.update('ham-0', { done: 0, total: null, status: 'queued' })
  p.update('spam-0', { done: 0, total: null, status: 'queued' })
  p.update('ham-0', { done: 0, total: null, status: 'queued' })
  p.update('ham-0', { done: 250, total: 1000, status: 'running', detail: '51,200 tokens' })
  p.log('[encoder] demo pooling (max): running on cpu (2 threads)')
  p.update('ham-0', { done: 250, total: 1000, status: 'running', detail: '51,200 tokens' })
  p.finish('ham-0', 'ham-0: 1000 documents in 3.0 s')
  p.close()
  assert.equal(
    out.text(),
    [
      'ham-0: queued 0 documents',
      'spam-0: queued 0 documents',
      'ham-0: running 250/1,000 documents (25%), 51,200 tokens',
      '[encoder] demo pooling (max): running on cpu (2 threads)',
      'ham-0: 1000 documents in 3.0 s',
      ''
    ].join('\n')
  )
  // biome-ignore lint/suspicious/noControlCharactersInRegex: no escape sequence may reach a non-terminal
  assert.doesNotMatch(out.text(), /[\r\x1b]/)
})

test('on a terminal: every task has a bar, redrawn in place; logs and finished tasks print above the bars', () => {
  const out = sink(true)
  const p = createProgress({ stream: out.stream })
  p.update('ham-0', { done: 0, total: 100, status: 'running' })
  p.update('spam-0', { done: 0, total: null, status: 'queued' })
  p.update('ham-0', { done: 50, total: 100, status: 'running' })
  p.log('[encoder] running on cpu')
  p.update('spam-0', { done: 10, total: 40, status: 'running' })
  assert.deepEqual(screen(out.text()), [
    '[encoder] running on cpu',
    `ham-0  ${bar({ done: 50, total: 100 })}  50%  running  50/100 documents`,
    `spam-0 ${bar({ done: 10, total: 40 })}  25%  running  10/40 documents`
  ])
  p.finish('ham-0', 'ham-0: 100 documents')
  p.close()
  assert.deepEqual(screen(out.text()), [
    '[encoder] running on cpu',
    'ham-0: 100 documents',
    `spam-0 ${bar({ done: 10, total: 40 })}  25%  running  10/40 documents`
  ])
})

test('console output is routed through the renderer while captured, and given back on close', () => {
  const out = sink(false)
  const p = createProgress({ stream: out.stream })
  const original = console.log
  p.captureConsole()
  try {
    console.log('[encoder] %s on %s', 'running', 'cpu')
    console.error('warning: slow')
  } finally {
    p.close()
  }
  assert.equal(console.log, original)
  assert.equal(out.text(), '[encoder] running on cpu\nwarning: slow\n')
})

test('bars and lines', () => {
  assert.equal(bar({ done: 0, total: 4 }, 4), '[░░░░]')
  assert.equal(bar({ done: 3, total: 4 }, 4), '[███░]')
  assert.equal(bar({ done: 9, total: 4 }, 4), '[████]')
  assert.equal(bar({ done: 3, total: null }, 4), '[····]')
  assert.equal(plainLine('a', { done: 1234, total: 5000, status: 'running' }), 'a: running 1,234/5,000 documents (24%)')
})
