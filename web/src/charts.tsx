/** @module Hand-written SVG charts (no chart library: each is a few dozen lines, and the bundle stays small): diff bars with 95% intervals, a value histogram, a 2-D cluster map, and token shading. */
import type { DiffLatent } from '@latentbase/shared/contract/diff'
import { fmt, peakText, shortLabel } from './ui.tsx'

const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf'
]
export const clusterColor = (c: number) => PALETTE[c % PALETTE.length]

/**
 * Horizontal bars of the difference per latent (frequencyA - frequencyB, or relative), with the 95% interval as a
 * whisker and the q-value at the end. Each row is a link (click, or Enter/Space on focus) to the latent's page.
 */
export function DiffChart({
  latents,
  metric,
  onOpen
}: {
  latents: DiffLatent[]
  metric: string
  onOpen: (l: DiffLatent) => void
}) {
  const rowH = 26
  const labelW = 330
  const barW = 420
  const qW = 120
  const width = labelW + barW + qW
  const height = 28 + latents.length * rowH
  let lo = 0
  let hi = 0
  for (const l of latents) {
    lo = Math.min(lo, l.difference, l.ci95[0])
    hi = Math.max(hi, l.difference, l.ci95[1])
  }
  if (hi - lo < 1e-9) hi = lo + 1
  const x = (v: number) => labelW + ((v - lo) / (hi - lo)) * (barW - 10) + 5
  const ticks = niceTicks(lo, hi, 5)
  return (
    <svg
      class="chart diff-chart"
      data-testid="diff-chart"
      viewBox={`0 0 ${width} ${height}`}
      width="100%"
      role="list"
      aria-label={`top ${latents.length} latents by ${metric} difference, with 95% intervals`}
    >
      {ticks.map(t => (
        <g key={t}>
          <line x1={x(t)} x2={x(t)} y1={18} y2={height} class={t === 0 ? 'axis zero' : 'axis'} />
          <text x={x(t)} y={12} class="tick" text-anchor="middle">
            {metric === 'absolute' ? fmt.pct(t) : fmt.num(t, 2)}
          </text>
        </g>
      ))}
      <text x={labelW + barW + 6} y={12} class="tick">
        q-value
      </text>
      {latents.map((l, i) => {
        const y = 24 + i * rowH
        const open = () => onOpen(l)
        return (
          <g
            key={l.latent}
            class="row"
            role="listitem"
            tabindex={0}
            data-latent={l.latent}
            aria-label={`latent ${l.latent}: ${l.label ?? (l.peak ? `no label, ${peakText(l.peak)}` : 'no label')}; difference ${fmt.pct(l.difference)}, q ${fmt.p(l.qValue)}`}
            onClick={open}
            onKeyDown={e => {
              if (e.key === 'Enter' || e.key === ' ') {
                e.preventDefault()
                open()
              }
            }}
          >
            <rect x={0} y={y - 2} width={width} height={rowH} class="hit" />
            <text x={4} y={y + 11} class={!l.label && l.peak ? 'name peak' : 'name'}>
              #{l.latent} {shortLabel(l.label ?? (l.peak ? peakText(l.peak) : null), 38)}
            </text>
            <text x={4} y={y + 22} class="meta">
              {l.labelSource ?? (l.peak ? `no label · ${l.peak.count}/${l.peak.examples} top examples` : 'no label')}
              {l.labelScore ? ` · det ${l.labelScore.detection ?? '–'} fuzz ${l.labelScore.fuzzing ?? '–'}` : ''} · A{' '}
              {fmt.pct(l.frequencyA)} vs {fmt.pct(l.frequencyB)}
            </text>
            <rect
              x={Math.min(x(0), x(l.difference))}
              y={y + 4}
              width={Math.max(1, Math.abs(x(l.difference) - x(0)))}
              height={12}
              class={l.difference >= 0 ? 'bar pos' : 'bar neg'}
            />
            <line x1={x(l.ci95[0])} x2={x(l.ci95[1])} y1={y + 10} y2={y + 10} class="ci" />
            <line x1={x(l.ci95[0])} x2={x(l.ci95[0])} y1={y + 5} y2={y + 15} class="ci" />
            <line x1={x(l.ci95[1])} x2={x(l.ci95[1])} y1={y + 5} y2={y + 15} class="ci" />
            <text x={labelW + barW + 6} y={y + 14} class={l.qValue !== null && l.qValue < 0.05 ? 'q sig' : 'q'}>
              {fmt.p(l.qValue)}
            </text>
            <title>{`#${l.latent} ${l.label ?? ''}${l.peak ? `\n${peakText(l.peak)} in ${l.peak.count} of ${l.peak.examples} top examples of ${l.peak.dataset}, e.g. ${l.peak.window}` : ''}\ndifference ${l.difference.toFixed(4)} [${l.ci95[0].toFixed(4)}, ${l.ci95[1].toFixed(4)}]\nA ${l.countA} docs (${fmt.pct(l.frequencyA)}), ${l.against}: ${l.countB} docs (${fmt.pct(l.frequencyB)})\np ${fmt.p(l.pValue)} (${l.test}), q ${fmt.p(l.qValue)}`}</title>
          </g>
        )
      })}
    </svg>
  )
}

function niceTicks(lo: number, hi: number, n: number): number[] {
  const step0 = (hi - lo) / n
  const mag = 10 ** Math.floor(Math.log10(step0))
  const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= step0) ?? step0
  const out: number[] = []
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-12; t += step) out.push(Math.round(t / step) * step)
  return out
}

/** The latent's pooled values over the documents where it is present (log-spaced bins; empty bins at the ends trimmed). */
export function Histogram({ edges, counts }: { edges: number[]; counts: number[] }) {
  let first = counts.findIndex(c => c > 0)
  let last = counts.length - 1 - [...counts].reverse().findIndex(c => c > 0)
  if (first < 0) return <p class="muted">No document has this latent.</p>
  first = Math.max(0, first - 1)
  last = Math.min(counts.length - 1, last + 1)
  const bins = counts.slice(first, last + 1)
  const max = Math.max(...bins)
  const w = 600,
    h = 140,
    pad = 24
  const bw = (w - 2 * pad) / bins.length
  return (
    <svg
      class="chart histogram"
      viewBox={`0 0 ${w} ${h + 20}`}
      width="100%"
      role="img"
      aria-label={`histogram of pooled values: ${bins.reduce((a, b) => a + b, 0)} documents`}
    >
      {bins.map((c, i) => {
        const bh = max ? (c / max) * (h - 10) : 0
        return (
          <rect key={i} x={pad + i * bw + 1} y={h - bh} width={Math.max(1, bw - 2)} height={bh} class="bar pos">
            <title>{`[${fmt.num(edges[first + i])}, ${fmt.num(edges[first + i + 1])}): ${c} documents`}</title>
          </rect>
        )
      })}
      <line x1={pad} x2={w - pad} y1={h} y2={h} class="axis" />
      <text x={pad} y={h + 15} class="tick">
        {fmt.num(edges[first])}
      </text>
      <text x={w - pad} y={h + 15} class="tick" text-anchor="end">
        {fmt.num(edges[last + 1])}
      </text>
      <text x={w / 2} y={h + 15} class="tick" text-anchor="middle">
        pooled value (log scale)
      </text>
    </svg>
  )
}

/**
 * Documents placed by their cluster affinities: cluster c sits on a circle at angle 2*pi*c/k, a document at the
 * affinity-weighted mean of its clusters' places (a RadViz projection), jittered by its row so that equal affinities do
 * not stack. Coloured by assigned cluster; a click opens the document.
 */
export function ClusterMap({
  assignments,
  affinities,
  k,
  onOpen
}: {
  assignments: number[]
  affinities?: Array<Array<[number, number]>>
  k: number
  onOpen: (row: number) => void
}) {
  const size = 420,
    r = 170,
    c0 = size / 2
  const centre = (c: number) => [
    Math.cos((2 * Math.PI * c) / k - Math.PI / 2),
    Math.sin((2 * Math.PI * c) / k - Math.PI / 2)
  ]
  const raw = assignments.map((cluster, row) => {
    const aff = affinities?.[row]?.length ? affinities[row] : [[cluster, 1] as [number, number]]
    let px = 0,
      py = 0,
      total = 0
    for (const [c, a] of aff) {
      const [cx, cy] = centre(c)
      px += a * cx
      py += a * cy
      total += a
    }
    return { row, cluster, px: total > 0 ? px / total : 0, py: total > 0 ? py / total : 0 }
  })
  // Affinities spread over clusters pull every document toward the middle: stretch so the farthest reaches 90% of the circle.
  const reach = Math.max(1e-9, ...raw.map(p => Math.hypot(p.px, p.py)))
  const points = raw.map(p => {
    const j = hash(p.row)
    return {
      row: p.row,
      cluster: p.cluster,
      x: c0 + r * ((0.9 * p.px) / reach + 0.05 * Math.cos(j)),
      y: c0 + r * ((0.9 * p.py) / reach + 0.05 * Math.sin(j))
    }
  })
  return (
    <svg
      class="chart cluster-map"
      data-testid="cluster-map"
      viewBox={`0 0 ${size} ${size}`}
      width="100%"
      role="img"
      aria-label={`map of ${assignments.length} documents in ${k} clusters`}
    >
      {Array.from({ length: k }, (_, c) => {
        const [cx, cy] = centre(c)
        return (
          <text
            key={c}
            x={c0 + r * 1.08 * cx}
            y={c0 + r * 1.08 * cy + 4}
            text-anchor="middle"
            class="tick"
            fill={clusterColor(c)}
          >{`cluster ${c}`}</text>
        )
      })}
      {points.map(p => (
        <circle
          key={p.row}
          cx={p.x}
          cy={p.y}
          r={4}
          fill={clusterColor(p.cluster)}
          class="dot"
          data-cluster={p.cluster}
          onClick={() => onOpen(p.row)}
        >
          <title>{`row ${p.row}: cluster ${p.cluster}`}</title>
        </circle>
      ))}
    </svg>
  )
}

function hash(n: number): number {
  let h = Math.imul(n ^ 0x9e3779b9, 0x85ebca6b)
  h ^= h >>> 13
  return ((h >>> 0) / 2 ** 32) * 2 * Math.PI
}

/** Tokens shaded by activation (alpha = value / max); hover or focus shows the value. */
export function TokenText({ tokens, activations, max }: { tokens: string[]; activations: number[]; max: number }) {
  return (
    <span class="tokens">
      {tokens.map((t, i) => {
        const a = activations[i] ?? 0
        const alpha = max > 0 ? Math.min(1, a / max) : 0
        return a > 0 ? (
          <mark
            key={i}
            class="tok"
            data-act={a}
            tabIndex={0}
            style={{ background: `rgba(255, 140, 0, ${0.15 + 0.85 * alpha})` }}
            title={`activation ${a}`}
          >
            {t}
            <span class="tip">{fmt.num(a)}</span>
          </mark>
        ) : (
          <span key={i} class="tok" title="activation 0">
            {t}
          </span>
        )
      })}
    </span>
  )
}
