/** @module Tests for the eigen-solvers: Lanczos and tridiagonal QL against dense Jacobi, repeated eigenvalues. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { jacobiEigen, lanczosTop, tridiagonalEigen, type MatVec } from './lanczos.ts'
import { seededRng } from '../../util/random.ts'

function randomSymmetric(n: number, seed: number): Float64Array {
  const rng = seededRng(seed)
  const a = new Float64Array(n * n)
  for (let i = 0; i < n; i++)
    for (let j = i; j < n; j++) {
      const v = rng.next() - 0.5
      a[i * n + j] = v
      a[j * n + i] = v
    }
  return a
}

const denseMatVec =
  (a: Float64Array, n: number): MatVec =>
  (x, y) => {
    for (let i = 0; i < n; i++) {
      let s = 0
      for (let j = 0; j < n; j++) s += a[i * n + j] * x[j]
      y[i] = s
    }
  }

test('jacobi: A v = λ v for every pair, eigenvalues descending', () => {
  const n = 12
  const a = randomSymmetric(n, 3)
  const { values, vectors } = jacobiEigen(a, n)
  for (let t = 0; t < n; t++) {
    if (t > 0) assert.ok(values[t] <= values[t - 1])
    for (let i = 0; i < n; i++) {
      let s = 0
      for (let j = 0; j < n; j++) s += a[i * n + j] * vectors[j * n + t]
      assert.ok(Math.abs(s - values[t] * vectors[i * n + t]) < 1e-9)
    }
  }
})

test('tridiagonal QL agrees with dense Jacobi on a random tridiagonal matrix', () => {
  const m = 25
  const rng = seededRng(11)
  const d = Float64Array.from({ length: m }, () => rng.next() * 4 - 2)
  const e = Float64Array.from({ length: m - 1 }, () => rng.next() - 0.5)
  const dense = new Float64Array(m * m)
  for (let i = 0; i < m; i++) {
    dense[i * m + i] = d[i]
    if (i + 1 < m) {
      dense[i * m + i + 1] = e[i]
      dense[(i + 1) * m + i] = e[i]
    }
  }
  const ql = tridiagonalEigen(d, e, m)
  const ref = jacobiEigen(dense, m)
  for (let t = 0; t < m; t++) assert.ok(Math.abs(ql.values[t] - ref.values[m - 1 - t]) < 1e-10, `eigenvalue ${t}`)
  // Columns are eigenvectors: T v = λ v.
  for (let t = 0; t < m; t++) {
    for (let i = 0; i < m; i++) {
      let s = 0
      for (let j = 0; j < m; j++) s += dense[i * m + j] * ql.vectors[j * m + t]
      assert.ok(Math.abs(s - ql.values[t] * ql.vectors[i * m + t]) < 1e-10)
    }
  }
})

test('lanczos: leading eigenpairs of a small symmetric matrix match the dense solve', () => {
  const n = 60
  const a = randomSymmetric(n, 5)
  const k = 5
  const ref = jacobiEigen(a, n)
  const got = lanczosTop(n, denseMatVec(a, n), k, { seed: 1, tol: 1e-10, maxSteps: n })
  assert.equal(got.converged, k)
  for (let t = 0; t < k; t++) {
    assert.ok(Math.abs(got.values[t] - ref.values[t]) < 1e-8, `λ${t}: ${got.values[t]} vs ${ref.values[t]}`)
    let dot = 0
    for (let i = 0; i < n; i++) dot += got.vectors[t * n + i] * ref.vectors[i * n + t]
    assert.ok(Math.abs(Math.abs(dot) - 1) < 1e-6, `vector ${t}: |<u, v>| = ${Math.abs(dot)}`)
  }
})

test('lanczos: a repeated leading eigenvalue (disconnected blocks) is found with its multiplicity', () => {
  // Three identical blocks: every eigenvalue has multiplicity 3, which one Krylov space cannot resolve.
  const b = 8
  const block = randomSymmetric(b, 9)
  const n = 3 * b
  const a = new Float64Array(n * n)
  for (let r = 0; r < 3; r++)
    for (let i = 0; i < b; i++) for (let j = 0; j < b; j++) a[(r * b + i) * n + r * b + j] = block[i * b + j]
  const ref = jacobiEigen(a, n)
  const got = lanczosTop(n, denseMatVec(a, n), 4, { seed: 2, tol: 1e-9 })
  for (let t = 0; t < 4; t++)
    assert.ok(Math.abs(got.values[t] - ref.values[t]) < 1e-7, `λ${t}: ${got.values[t]} vs ${ref.values[t]}`)
  assert.ok(Math.abs(got.values[0] - got.values[2]) < 1e-7)
  // The three top vectors span the top eigenspace: they are orthonormal.
  for (let s = 0; s < 3; s++)
    for (let t = 0; t < 3; t++) {
      let dot = 0
      for (let i = 0; i < n; i++) dot += got.vectors[s * n + i] * got.vectors[t * n + i]
      assert.ok(Math.abs(dot - (s === t ? 1 : 0)) < 1e-8)
    }
})

test('lanczos: the same seed gives the same vectors', () => {
  const n = 40
  const a = randomSymmetric(n, 21)
  const x = lanczosTop(n, denseMatVec(a, n), 3, { seed: 4 })
  const y = lanczosTop(n, denseMatVec(a, n), 3, { seed: 4 })
  assert.deepEqual(x.vectors, y.vectors)
})

test('lanczos: out of budget it still returns k pairs (descending), counting only the converged ones', () => {
  const n = 200
  const a = randomSymmetric(n, 31)
  const got = lanczosTop(n, denseMatVec(a, n), 6, { seed: 1, maxSteps: 12, maxRestarts: 0, tol: 1e-12 })
  assert.ok(got.converged < 6)
  assert.equal(got.values.length, 6)
  for (let t = 1; t < 6; t++) assert.ok(got.values[t] <= got.values[t - 1])
})

test('lanczos: known eigenpairs are kept and the rest found orthogonally to them', () => {
  const n = 50
  const a = randomSymmetric(n, 41)
  const ref = jacobiEigen(a, n)
  // Hand over the top eigenvector; ask for the top 3.
  const top = Float64Array.from({ length: n }, (_, i) => ref.vectors[i * n])
  const got = lanczosTop(n, denseMatVec(a, n), 3, {
    seed: 2,
    tol: 1e-10,
    verify: false,
    known: { values: [ref.values[0]], vectors: top }
  })
  for (let t = 0; t < 3; t++) assert.ok(Math.abs(got.values[t] - ref.values[t]) < 1e-8, `λ${t}`)
  assert.deepEqual(got.vectors.subarray(0, n), top)
})
