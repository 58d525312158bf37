/** @module Conformance of Goodfire SAEs converted to safetensors (encoder_linear / decoder_linear), ReLU, F32 and BF16. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { zipEntries, zipEntryData } from '@latentbase/shared/tensor/npy'
import { goodfireHookFromName, loadSae } from './index.ts'
import {
  assertConforms,
  assertPooledConforms,
  graphPooled,
  graphTokenActivations,
  harness,
  randomSae,
  referenceTokens,
  safetensorsFile,
  storedValues,
  transpose,
  zipFile,
  type Harness,
  type RawSae,
  type StoredDtype
} from './fixtures.ts'
import { compareActivations, type ReferenceSae } from '../architectures/reference.ts'

const D = 32
const S = 128
let dir: string
let h: Harness
let n = 0
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'latentbase-goodfire-'))
  h = harness(D, 10)
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** The state dict of Goodfire's SparseAutoEncoder module (two nn.Linear), saved with safetensors' save_file. */
async function writeGoodfire(
  raw: RawSae,
  dtype: StoredDtype,
  name = 'Llama-3.1-8B-Instruct-SAE-l0',
  drop?: string
): Promise<string> {
  const folder = join(dir, `gf-${n++}`)
  await mkdir(folder, { recursive: true })
  const tensors: Record<string, { dtype: StoredDtype; shape: number[]; data: Float32Array }> = {
    'encoder_linear.weight': { dtype, shape: [S, D], data: transpose(raw.wEnc, D, S) },
    'encoder_linear.bias': { dtype, shape: [S], data: raw.bEnc },
    'decoder_linear.weight': { dtype, shape: [D, S], data: transpose(raw.wDec, S, D) },
    'decoder_linear.bias': { dtype, shape: [D], data: raw.bDec }
  }
  if (drop) delete tensors[drop]
  const path = join(folder, `${name}.safetensors`)
  await writeFile(path, safetensorsFile(tensors))
  return path
}

function reference(raw: RawSae, dtype: StoredDtype | 'exact', o: Partial<ReferenceSae> = {}): ReferenceSae {
  const v = (x: Float32Array) => (dtype === 'exact' ? Float64Array.from(x) : storedValues(dtype, x))
  // Goodfire's encode: relu(encoder_linear(x)); no decoder-bias subtraction, no input normalization.
  return {
    architecture: 'standard',
    dIn: D,
    dSae: S,
    wEnc: v(raw.wEnc),
    bEnc: v(raw.bEnc),
    bDec: v(raw.bDec),
    applyBDecToInput: false,
    normalize: 'none',
    ...o
  }
}

test('the layer comes from the release name', () => {
  assert.equal(goodfireHookFromName('Llama-3.1-8B-Instruct-SAE-l19'), 'blocks.19.hook_resid_post')
  assert.equal(goodfireHookFromName('Llama-3.3-70B-Instruct-SAE-l50'), 'blocks.50.hook_resid_post')
  assert.equal(goodfireHookFromName('my-sae'), null)
})

test('Goodfire (F32 and BF16) encodes like the reference: ReLU(x W^T + b), b_dec not subtracted', async () => {
  const raw = randomSae(D, S, 41)
  for (const dtype of ['F32', 'BF16'] as const) {
    const path = await writeGoodfire(raw, dtype)
    const { sae, files } = await loadSae('goodfire', path)
    assert.equal(sae.hookName, 'blocks.0.hook_resid_post')
    assert.equal(sae.architecture, 'standard')
    assert.equal(sae.sourceDtype, dtype)
    assert.deepEqual(
      files.map(f => f.role),
      ['saeWeights']
    )
    const ref = referenceTokens(h, reference(raw, dtype))
    const got = await graphTokenActivations(h, sae)
    assertConforms(
      `goodfire ${dtype}`,
      got,
      ref,
      S,
      dtype === 'F32' ? undefined : referenceTokens(h, reference(raw, 'exact'))
    )
    assert.ok(
      compareActivations(got, referenceTokens(h, reference(raw, dtype, { applyBDecToInput: true })), S, 1e-4).worst >
        1e-2
    )
    if (dtype === 'F32')
      assertPooledConforms('goodfire sum', await graphPooled(h, sae, 'sum'), ref, h.ids.length, S, 'sum')
  }
  // The folder holding the one .safetensors file loads the same SAE.
  const folderLoad = await loadSae('goodfire', join(dir, 'gf-0'), { contextSize: 256 })
  assert.equal(folderLoad.sae.contextSize, 256)
  assert.deepEqual(Array.from(folderLoad.sae.bEnc), Array.from(raw.bEnc))
})

test('bad Goodfire files fail naming the tensor and the file', async () => {
  const raw = randomSae(D, S, 42)
  await assert.rejects(
    loadSae('goodfire', await writeGoodfire(raw, 'F32', 'sae')),
    /sae\.hookName is required: the file name .*sae\.safetensors does not give the layer/
  )
  await assert.rejects(
    loadSae('goodfire', await writeGoodfire(raw, 'F32', 'x-l3', 'encoder_linear.bias')),
    /x-l3\.safetensors has no tensor "encoder_linear\.bias"/
  )
  await assert.rejects(
    loadSae('goodfire', await writeGoodfire(raw, 'F32', 'x-l3', 'encoder_linear.weight')),
    /x-l3\.safetensors: has no tensor "encoder_linear\.weight"/
  )
  await assert.rejects(
    loadSae('goodfire', await writeGoodfire(raw, 'F32', 'x-l3'), { dIn: 4096 }),
    /sae\.dIn is 4096 but .*x-l3\.safetensors has d_in 32/
  )
  const pth = join(dir, 'Llama-3.1-8B-Instruct-SAE-l19.pth')
  await writeFile(pth, 'not a zip')
  await assert.rejects(loadSae('goodfire', pth), /SAE-l19\.pth: not a zip-format torch checkpoint/)
  const two = join(dir, 'two')
  await mkdir(two)
  await writeFile(join(two, 'a.safetensors'), safetensorsFile({}))
  await writeFile(join(two, 'b.safetensors'), safetensorsFile({}))
  await assert.rejects(
    loadSae('goodfire', two),
    /two: expected one \.safetensors or \.pth file .*found a\.safetensors, b\.safetensors/
  )
})

/**
 * A state dict as torch.save writes it (zip: data.pkl pickled at protocol 2 with torch._utils._rebuild_tensor_v2
 * and FloatStorage persistent ids, data/<key> storages on 64-byte boundaries, byteorder, version), made by Python's
 * pickle with stand-ins at torch's module paths (torch is not installed here). Values: encoder_linear.weight[i] =
 * 1.5 sin(0.37 i + 1) / sqrt(8) [16, 8]; encoder_linear.bias[r] = 0.2 cos(0.9 r); decoder_linear.weight[k] =
 * 0.5 sin(0.11 k) [8, 16]; decoder_linear.bias[c] = 0.3 cos(0.5 c + 0.2), stored at offset 4 of a larger storage.
 */
const TORCH_PTH =
  'UEsDBBQAAAAAAAAAIQA88yK2FwIAABcCAAAlAD0ATGxhbWEtMy4xLThCLUluc3RydWN0LVNBRS1sMC9kYXRhLnBrbEZCOQBaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlqAAmNjb2xsZWN0aW9ucwpPcmRlcmVkRGljdApxAClScQEoWBUAAABlbmNvZGVyX2xpbmVhci53ZWlnaHRxAmN0b3JjaC5fdXRpbHMKX3JlYnVpbGRfdGVuc29yX3YyCnEDKChYBwAAAHN0b3JhZ2VxBGN0b3JjaApGbG9hdFN0b3JhZ2UKcQVYAQAAADBxBlgDAAAAY3B1cQdLgHRxCFFLAEsQSwiGcQlLCEsBhnEKiWgAKVJxC3RxDFJxDVgTAAAAZW5jb2Rlcl9saW5lYXIuYmlhc3EOaAMoKGgEaAVYAQAAADFxD2gHSxB0cRBRSwBLEIVxEUsBhXESiWgAKVJxE3RxFFJxFVgVAAAAZGVjb2Rlcl9saW5lYXIud2VpZ2h0cRZoAygoaARoBVgBAAAAMnEXaAdLgHRxGFFLAEsISxCGcRlLEEsBhnEaiWgAKVJxG3RxHFJxHVgTAAAAZGVjb2Rlcl9saW5lYXIuYmlhc3EeaAMoKGgEaAVYAQAAADNxH2gHSwx0cSBRSwRLCIVxIUsBhXEiiWgAKVJxI3RxJFJxJXV9cSZYCQAAAF9tZXRhZGF0YXEnaAApUnEoKFgAAAAAcSl9cSpYBwAAAHZlcnNpb25xK0sBc1gOAAAAZW5jb2Rlcl9saW5lYXJxLH1xLWgrSwFzWA4AAABkZWNvZGVyX2xpbmVhcnEufXEvaCtLAXN1c2IuUEsDBBQAAAAAAAAAIQCFPeMZBgAAAAYAAAAmACUATGxhbWEtMy4xLThCLUluc3RydWN0LVNBRS1sMC9ieXRlb3JkZXJGQiEAWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpabGl0dGxlUEsDBBQAAAAAAAAAIQBiFvY+AAIAAAACAAAjADkATGxhbWEtMy4xLThCLUluc3RydWN0LVNBRS1sMC9kYXRhLzBGQjUAWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlrZe+Q+ZwkFP1/TBT/+AOk+CNKmPgMeHD79JCq9s25rvmY7xr4G6/u+DMEHv9ZZ/r66xMq+CXx3vrG+X73KLg8+GnahPm565T7aNwU/saoFP2MM6D5JW6U+sJEYPublOL0Iw26+733Hvkea/L4swwe/g7L9vnmIyb5GL3S+9QNRvc+/Ej798aI+SHbmPrdkBT9sgAU/BhXnPpPioz6MAxU+nKRHvYYUcr4avsi+iEb9vrDDB78sCP2+00nIvpvfcL68RkK9FE8WPvBrpD5kb+c+/48FP5FUBT/qGuY+62eiPqJzET7yYFa9I2N1vuH7yb7G7/2+lsIHv9Na/L7LCMe+E41tvjSHM72Q3Bk+8OOlPsFl6D6vuQU/ICcFPxEe5T5U66A+/uENPrwaZb3Vrni+QjfLvv+V/r7fvwe/eqr7vmXFxb64N2q+isUkvThoHT72Wac+WlnpPsnhBT8a+AQ/fx7kPtNsnz6qTgo+zdFzvZP3e745cMy+Mjn/vou7B78k9/q+pX/EvpXfZr7qARa9AfIgPv/NqD4tSuo+TAgGP3/HBD82HOM+buydPrG5Bj78QoG9Uj1/vsGmzb5b2f++mbUHv9FA+r6QN8O+s4RjvoI8B73geSQ+BkCqPjc46z42LQY/UJUEPzsX4j4napw+HiMDPoebiL0EQIG+19rOvlBLAwQUAAAAAAAAACEA28B9DkAAAABAAAAAIwA/AExsYW1hLTMuMS04Qi1JbnN0cnVjdC1TQUUtbDAvZGF0YS8xRkI7AFpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpazcxMPoic/j28Hzq9ayc5vvinN74Vryy9MPwBPmPFTD5CLvk96YJHvXeZOr46Gza+7zEfvbOgBD4or0w+9K3zPVBLAwQUAAAAAAAAACEAk+C7gAACAAAAAgAAIwA/AExsYW1hLTMuMS04Qi1JbnN0cnVjdC1TQUUtbDAvZGF0YS8yRkI7AFpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaAAAAAHLTYD2Wd989+OglPr0UWj7VzoU+OvWcPus1sj4lT8U+zAXWPiom5D6IhO8+tv33Pn53/T7t4P8+jDL/Pndu+z5WoPQ+N93qPlBD3j6f+c4+cy+9PtkbqT7y/JI+Yi52PhJpQz4QRw4+kdmuPcAf/Dz2Msa8FoihvcrHB75eJz2+nD1wvjg2kL5ej6a+G+W6voD4zL6dkdy+L4DpvjKc875bxvq+gOj+vtb1/74c6/2+pM74vj2w8L4JqeW+J9vXvk9xx75KnrS+W5yfvoKsiL50K2C+NEgsvqif7L1cpXu9lgXYu4b3RT2SRdI9WYIfPlH0Uz4y64I+HEeaPp7Frz4zJMM+7CbUPiSZ4j4pTu4+wCH3Ppj4/D6gwP8+PHH/PmML/D6XmfU+yi/sPh7r3z6I8dA+YHG/Ps6gqz4ivZU+MxR8PhSiST4CwBQ+RCO8PakAGT1ZPZC8ay+UvXlCAb4+3Ta+JUJqvhJpjb56+6O+cZK4vkHuyr4a1tq+xBjovjaN8r4WE/q+HJP+vlz//75uU/6+fpT5vj3R8b6vIee+5qbZvpiKyb6g/ra+YjyivhqEi74xOGa+xZ8yvjK9+b0KNou9xwBYvMsSKz0zCsU9ohQZPnbKTT69AYA+IZKXPn1NrT6S8MA+mT7SPgkC4T4vDe0+yTr2PnBu/D5QSwMEFAAAAAAAAAAhAHyom84wAAAAMAAAACMAPwBMbGFtYS0zLjEtOEItSW5zdHJ1Y3QtU0FFLWwwL2RhdGEvM0ZCOwBaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWgAAEEEAABBBAAAQQQAAEEHJiZY+o/VqPvKh3j35Uh69nMk0vpDdir6MVpm+pkSCvlBLAwQUAAAAAAAAACEA0Z5nVQIAAAACAAAAJAAOAExsYW1hLTMuMS04Qi1JbnN0cnVjdC1TQUUtbDAvdmVyc2lvbkZCCgBaWlpaWlpaWlpaMwpQSwECFAMUAAAAAAAAACEAPPMithcCAAAXAgAAJQA9AAAAAAAAAAAAgAEAAAAATGxhbWEtMy4xLThCLUluc3RydWN0LVNBRS1sMC9kYXRhLnBrbEZCOQBaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpQSwECFAMUAAAAAAAAACEAhT3jGQYAAAAGAAAAJgAlAAAAAAAAAAAAgAGXAgAATGxhbWEtMy4xLThCLUluc3RydWN0LVNBRS1sMC9ieXRlb3JkZXJGQiEAWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaUEsBAhQDFAAAAAAAAAAhAGIW9j4AAgAAAAIAACMAOQAAAAAAAAAAAIABBgMAAExsYW1hLTMuMS04Qi1JbnN0cnVjdC1TQUUtbDAvZGF0YS8wRkI1AFpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaUEsBAhQDFAAAAAAAAAAhANvAfQ5AAAAAQAAAACMAPwAAAAAAAAAAAIABgAUAAExsYW1hLTMuMS04Qi1JbnN0cnVjdC1TQUUtbDAvZGF0YS8xRkI7AFpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaUEsBAhQDFAAAAAAAAAAhAJPgu4AAAgAAAAIAACMAPwAAAAAAAAAAAIABQAYAAExsYW1hLTMuMS04Qi1JbnN0cnVjdC1TQUUtbDAvZGF0YS8yRkI7AFpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaUEsBAhQDFAAAAAAAAAAhAHyom84wAAAAMAAAACMAPwAAAAAAAAAAAIABwAgAAExsYW1hLTMuMS04Qi1JbnN0cnVjdC1TQUUtbDAvZGF0YS8zRkI7AFpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaUEsBAhQDFAAAAAAAAAAhANGeZ1UCAAAAAgAAACQADgAAAAAAAAAAAIABcAkAAExsYW1hLTMuMS04Qi1JbnN0cnVjdC1TQUUtbDAvdmVyc2lvbkZCCgBaWlpaWlpaWlpaUEsFBgAAAAAHAAcAowMAAMIJAAAAAA=='

test('a Goodfire .pth (torch.save zip) is read without Python and encodes like the reference', async () => {
  const d = 8
  const s = 16
  const path = join(dir, 'Llama-3.1-8B-Instruct-SAE-l0.pth')
  await writeFile(path, Buffer.from(TORCH_PTH, 'base64'))
  const { sae } = await loadSae('goodfire', path)
  assert.equal(sae.hookName, 'blocks.0.hook_resid_post')
  assert.equal(sae.dIn, d)
  assert.equal(sae.dSae, s)
  const encW = Float32Array.from({ length: s * d }, (_, i) => (1.5 * Math.sin(0.37 * i + 1)) / Math.sqrt(d))
  const encB = Float32Array.from({ length: s }, (_, r) => 0.2 * Math.cos(0.9 * r))
  const decB = Float32Array.from({ length: d }, (_, c) => 0.3 * Math.cos(0.5 * c + 0.2))
  for (let i = 0; i < s; i++) assert.ok(Math.abs(sae.bEnc[i] - encB[i]) < 1e-6)
  for (let i = 0; i < d; i++)
    assert.ok(Math.abs(sae.bDec[i] - decB[i]) < 1e-6, 'decoder bias read from its storage offset')
  const small = harness(d, 12)
  const reference: ReferenceSae = {
    architecture: 'standard',
    dIn: d,
    dSae: s,
    wEnc: Float64Array.from(transpose(encW, s, d)),
    bEnc: Float64Array.from(encB),
    bDec: Float64Array.from(decB),
    applyBDecToInput: false,
    normalize: 'none'
  }
  assertConforms('goodfire .pth', await graphTokenActivations(small, sae), referenceTokens(small, reference), s)
})

test('a .pth missing a storage, or holding no state dict, fails naming what is wrong', async () => {
  const bytes = new Uint8Array(Buffer.from(TORCH_PTH, 'base64'))
  const entries = zipEntries(bytes).map(e => ({ name: e.name, data: zipEntryData(bytes, e) }))
  const noStorage = join(dir, 'nostorage-l0.pth')
  await writeFile(
    noStorage,
    zipFile(
      entries.filter(e => !e.name.endsWith('/data/1')),
      0
    )
  )
  await assert.rejects(
    loadSae('goodfire', noStorage),
    /nostorage-l0\.pth: storage 1 of "encoder_linear\.bias" is missing from the archive/
  )
  // A pickle of a list, not a dict: protocol 2, EMPTY_LIST, STOP.
  const notDict = join(dir, 'list-l0.pth')
  await writeFile(notDict, zipFile([{ name: 'x/data.pkl', data: Uint8Array.from([0x80, 2, 0x5d, 0x2e]) }], 8))
  await assert.rejects(loadSae('goodfire', notDict), /list-l0\.pth: the checkpoint is not a state dict/)
})
