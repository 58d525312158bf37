/** @module Leading eigenpairs of a symmetric operator: Lanczos with full reorthogonalization and locking, the tridiagonal QL solver, and a dense Jacobi solver (reference for tests and tiny inputs). */
import { seededRng } from '../../util/random.ts'

/** y = A x for a symmetric A of order n. */
export type MatVec = (x: Float64Array, y: Float64Array) => void

export interface Eigenpairs {
  /** Descending. */
  values: Float64Array
  /** Vector t occupies [t * n, (t + 1) * n), unit norm. */
  vectors: Float64Array
  /** Operator applications used. */
  matvecs: number
  /** Pairs whose residual ||A u - θ u|| met the tolerance. */
  converged: number
}

/**
 * Eigen-decomposition of a symmetric tridiagonal matrix (diagonal d, off-diagonal e[i] = T[i][i+1]) by the implicit
 * QL method (tql2 of EISPACK, as in JAMA). Returns eigenvalues ascending and, row-major m x m, the eigenvectors in
 * columns.
 */
export function tridiagonalEigen(
  diag: ArrayLike<number>,
  off: ArrayLike<number>,
  m: number
): { values: Float64Array; vectors: Float64Array } {
  const d = Float64Array.from({ length: m }, (_, i) => diag[i])
  const e = new Float64Array(m)
  for (let i = 0; i < m - 1; i++) e[i] = off[i]
  const V = new Float64Array(m * m)
  for (let i = 0; i < m; i++) V[i * m + i] = 1
  let f = 0
  let tst1 = 0
  const eps = 2 ** -52
  for (let l = 0; l < m; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]))
    let k = l
    while (k < m) {
      if (Math.abs(e[k]) <= eps * tst1) break
      k++
    }
    if (k > l) {
      let iter = 0
      do {
        if (++iter > 200) throw new Error('tridiagonal QL did not converge')
        let g = d[l]
        let p = (d[l + 1] - g) / (2 * e[l])
        let r = Math.hypot(p, 1)
        if (p < 0) r = -r
        d[l] = e[l] / (p + r)
        d[l + 1] = e[l] * (p + r)
        const dl1 = d[l + 1]
        let h = g - d[l]
        for (let i = l + 2; i < m; i++) d[i] -= h
        f += h
        p = d[k]
        let c = 1,
          c2 = 1,
          c3 = 1
        const el1 = e[l + 1]
        let s = 0,
          s2 = 0
        for (let i = k - 1; i >= l; i--) {
          c3 = c2
          c2 = c
          s2 = s
          g = c * e[i]
          h = c * p
          r = Math.hypot(p, e[i])
          e[i + 1] = s * r
          s = e[i] / r
          c = p / r
          p = c * d[i] - s * g
          d[i + 1] = h + s * (c * g + s * d[i])
          for (let row = 0; row < m; row++) {
            const at = row * m
            h = V[at + i + 1]
            V[at + i + 1] = s * V[at + i] + c * h
            V[at + i] = c * V[at + i] - s * h
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1
        e[l] = s * p
        d[l] = c * p
      } while (Math.abs(e[l]) > eps * tst1)
    }
    d[l] += f
    e[l] = 0
  }
  // Sort ascending, carrying the columns.
  const order = Array.from({ length: m }, (_, i) => i).sort((a, b) => d[a] - d[b] || a - b)
  const values = Float64Array.from(order, i => d[i])
  const vectors = new Float64Array(m * m)
  for (let row = 0; row < m; row++) for (let t = 0; t < m; t++) vectors[row * m + t] = V[row * m + order[t]]
  return { values, vectors }
}

/** Cyclic Jacobi on a dense symmetric matrix (row-major, copied): eigenvalues descending, vector t in column t. */
export function jacobiEigen(a: ArrayLike<number>, n: number): { values: Float64Array; vectors: Float64Array } {
  const A = Float64Array.from({ length: n * n }, (_, i) => a[i])
  const V = new Float64Array(n * n)
  for (let i = 0; i < n; i++) V[i * n + i] = 1
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += A[p * n + q] ** 2
    if (off < 1e-30) break
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q]
        if (Math.abs(apq) < 1e-300) continue
        const theta = (A[q * n + q] - A[p * n + p]) / (2 * apq)
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1))
        const c = 1 / Math.sqrt(t * t + 1)
        const s = t * c
        for (let k = 0; k < n; k++) {
          const akp = A[k * n + p],
            akq = A[k * n + q]
          A[k * n + p] = c * akp - s * akq
          A[k * n + q] = s * akp + c * akq
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p * n + k],
            aqk = A[q * n + k]
          A[p * n + k] = c * apk - s * aqk
          A[q * n + k] = s * apk + c * aqk
        }
        for (let k = 0; k < n; k++) {
          const vkp = V[k * n + p],
            vkq = V[k * n + q]
          V[k * n + p] = c * vkp - s * vkq
          V[k * n + q] = s * vkp + c * vkq
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => A[y * n + y] - A[x * n + x] || x - y)
  const values = Float64Array.from(order, i => A[i * n + i])
  const vectors = new Float64Array(n * n)
  for (let row = 0; row < n; row++) for (let t = 0; t < n; t++) vectors[row * n + t] = V[row * n + order[t]]
  return { values, vectors }
}

export interface LanczosOptions {
  seed?: number
  /** Residual ||A u - θ u|| accepted as converged (absolute; normalized affinities have spectrum in [-1, 1]). */
  tol?: number
  /** Lanczos steps per run (default min(n, max(4k + 40, 80))). */
  maxSteps?: number
  /** Runs after the first, each from a fresh start vector orthogonal to the locked vectors (default k + 2). */
  maxRestarts?: number
  /** Steps between convergence checks. */
  checkEvery?: number
  /**
   * After k pairs are locked, run once more from a fresh start to catch a missed repeated eigenvalue (default true).
   * A caller that knows the leading eigenvalues are simple (a connected similarity graph) can skip it.
   */
  verify?: boolean
  /** Eigenpairs known in advance (count x n vectors, orthonormal): locked from the start, Lanczos works orthogonally to them. */
  known?: { values: ArrayLike<number>; vectors: Float64Array }
  onStep?: (matvecs: number) => void
}

function dot(a: Float64Array, aOff: number, b: Float64Array, bOff: number, n: number): number {
  let s0 = 0,
    s1 = 0
  let i = 0
  for (; i + 1 < n; i += 2) {
    s0 += a[aOff + i] * b[bOff + i]
    s1 += a[aOff + i + 1] * b[bOff + i + 1]
  }
  if (i < n) s0 += a[aOff + i] * b[bOff + i]
  return s0 + s1
}

function axpy(alpha: number, x: Float64Array, xOff: number, y: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) y[i] += alpha * x[xOff + i]
}

/** Two passes of classical Gram-Schmidt against `count` basis vectors ("twice is enough"). */
function orthogonalize(w: Float64Array, basis: Float64Array, count: number, n: number): void {
  for (let pass = 0; pass < 2; pass++) {
    for (let t = 0; t < count; t++) {
      const c = dot(basis, t * n, w, 0, n)
      if (c !== 0) axpy(-c, basis, t * n, w, n)
    }
  }
}

/**
 * The k algebraically largest eigenpairs of a symmetric operator. Plain Lanczos from one start vector cannot see more
 * than one direction of a repeated eigenvalue, and repeated leading eigenvalues are exactly what a similarity graph
 * with several disconnected components has (eigenvalue 1 once per component). So converged Ritz pairs are locked and
 * Lanczos restarts from a fresh seeded vector orthogonal to them; the search ends when k pairs are locked and a fresh
 * run finds nothing above the k-th (or the restart budget is spent, in which case the best Ritz pairs are returned).
 * Every Lanczos vector is fully reorthogonalized against the run's basis and the locked vectors.
 */
export function lanczosTop(n: number, matvec: MatVec, k: number, options: LanczosOptions = {}): Eigenpairs {
  if (!(k >= 1 && k <= n)) throw new RangeError(`need 1 <= k <= n, got k=${k}, n=${n}`)
  const rng = seededRng(options.seed ?? 0)
  const tol = options.tol ?? 1e-6
  const maxSteps = Math.min(n, options.maxSteps ?? Math.max(4 * k + 40, 80))
  const maxRestarts = options.maxRestarts ?? k + 2
  const checkEvery = options.checkEvery ?? 5
  const cap = k + maxRestarts + 1
  const nKnown = options.known?.values.length ?? 0
  const locked = new Float64Array(Math.min(n, cap + k + nKnown) * n)
  const lockedValues: number[] = []
  if (options.known) {
    locked.set(options.known.vectors.subarray(0, nKnown * n))
    for (let t = 0; t < nKnown; t++) lockedValues.push(options.known.values[t])
  }
  let matvecs = 0
  const basis = new Float64Array(maxSteps * n)
  const w = new Float64Array(n)
  const av = new Float64Array(n)
  const alpha = new Float64Array(maxSteps)
  const beta = new Float64Array(maxSteps)
  let fallback: { values: number[]; vecs: Float64Array[] } | null = null

  const kthLocked = () => (lockedValues.length >= k ? [...lockedValues].sort((a, b) => b - a)[k - 1] : -Infinity)

  for (
    let run = 0;
    run <= maxRestarts && lockedValues.length < n && !(lockedValues.length >= k && options.verify === false);
    run++
  ) {
    const need = Math.max(1, k - lockedValues.length)
    const nLocked = lockedValues.length
    // Seeded start vector, orthogonal to the locked vectors.
    for (let i = 0; i < n; i++) w[i] = rng.next() - 0.5
    orthogonalize(w, locked, nLocked, n)
    const norm = Math.sqrt(dot(w, 0, w, 0, n))
    if (norm < 1e-12) break
    for (let i = 0; i < n; i++) basis[i] = w[i] / norm
    const steps = Math.min(maxSteps, n - nLocked)
    let m = 0
    let ritz: { values: Float64Array; vectors: Float64Array } | null = null
    let ritzM = 0
    let done = false
    let broke = false
    for (let j = 0; j < steps && !done; j++) {
      const vj = basis.subarray(j * n, (j + 1) * n)
      matvec(vj, av)
      matvecs++
      options.onStep?.(matvecs)
      w.set(av)
      alpha[j] = dot(vj, 0, w, 0, n)
      axpy(-alpha[j], basis, j * n, w, n)
      if (j > 0) axpy(-beta[j - 1], basis, (j - 1) * n, w, n)
      orthogonalize(w, locked, nLocked, n)
      orthogonalize(w, basis, j + 1, n)
      beta[j] = Math.sqrt(dot(w, 0, w, 0, n))
      m = j + 1
      const breakdown = beta[j] < 1e-10 * Math.max(1, Math.abs(alpha[j]))
      if (breakdown || m === steps || (m >= need && m % checkEvery === 0)) {
        ritz = tridiagonalEigen(alpha, beta, m)
        ritzM = m
        // Residual of Ritz pair t: |beta_m * last component of its tridiagonal eigenvector|.
        let ok = 0
        for (let t = m - 1; t >= Math.max(0, m - need); t--) {
          if (breakdown || Math.abs(beta[j] * ritz.vectors[(m - 1) * m + t]) <= tol) ok++
          else break
        }
        if (ok >= need || breakdown) done = true
        broke = breakdown
      }
      if (!done) for (let i = 0; i < n; i++) basis[(j + 1) * n + i] = w[i] / beta[j]
    }
    if (!ritz) break
    // Ritz vectors of the top `need` (converged or not), and lock the converged ones.
    const mm = ritzM
    const take = Math.min(need, mm)
    const vals: number[] = []
    const vecs: Float64Array[] = []
    const conv: boolean[] = []
    for (let q = 0; q < take; q++) {
      const t = mm - 1 - q
      const u = new Float64Array(n)
      for (let s = 0; s < mm; s++) {
        const c = ritz.vectors[s * mm + t]
        if (c !== 0) axpy(c, basis, s * n, u, n)
      }
      const un = Math.sqrt(dot(u, 0, u, 0, n))
      for (let i = 0; i < n; i++) u[i] /= un
      vals.push(ritz.values[t])
      vecs.push(u)
      conv.push(broke || Math.abs(beta[mm - 1] * ritz.vectors[(mm - 1) * mm + t]) <= tol)
    }
    if (lockedValues.length >= k) {
      // Verification run: did a fresh start find something above the k-th locked value?
      if (vals[0] <= kthLocked() + Math.max(tol, 1e-9)) break
    }
    let added = 0
    for (let q = 0; q < vals.length; q++) {
      if (!conv[q]) continue
      locked.set(vecs[q], lockedValues.length * n)
      // Keep locked vectors orthonormal to working precision.
      const slot = locked.subarray(lockedValues.length * n, (lockedValues.length + 1) * n)
      const tmp = new Float64Array(slot)
      orthogonalize(tmp, locked, lockedValues.length, n)
      const tn = Math.sqrt(dot(tmp, 0, tmp, 0, n))
      for (let i = 0; i < n; i++) slot[i] = tmp[i] / tn
      lockedValues.push(vals[q])
      added++
      if (lockedValues.length * n >= locked.length) break
    }
    // The run's unconverged pairs stand in should the budget run out before k pairs converge.
    const open = vals.map((_, q) => q).filter(q => !conv[q])
    fallback = { values: open.map(q => vals[q]), vecs: open.map(q => vecs[q]) }
    if (lockedValues.length * n >= locked.length) break
    if (added === 0 && run > 0) break
    if (lockedValues.length >= k && options.verify === false) break
  }
  // The k largest locked pairs, topped up with unconverged Ritz pairs when the budget ran out, in descending order.
  const order = lockedValues
    .map((_, i) => i)
    .sort((a, b) => lockedValues[b] - lockedValues[a] || a - b)
    .slice(0, k)
  const picked: Array<{ value: number; vector: Float64Array }> = order.map(i => ({
    value: lockedValues[i],
    vector: locked.subarray(i * n, (i + 1) * n)
  }))
  const converged = picked.length
  for (let q = 0; fallback && q < fallback.values.length && picked.length < k; q++)
    picked.push({ value: fallback.values[q], vector: fallback.vecs[q] })
  if (picked.length < k) throw new Error(`Lanczos found ${picked.length} of ${k} eigenpairs`)
  picked.sort((a, b) => b.value - a.value)
  const values = new Float64Array(k)
  const vectors = new Float64Array(k * n)
  picked.forEach((p, t) => {
    values[t] = p.value
    vectors.set(p.vector, t * n)
  })
  return { values, vectors, matvecs, converged }
}
