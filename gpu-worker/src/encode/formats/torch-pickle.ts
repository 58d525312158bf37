/**
 * @module Reads a state dict saved by torch.save (zip format: data.pkl + data/<key>) without Python: a pickle machine
 * that knows only the opcodes and globals a state dict uses, so nothing in the file is ever executed.
 */
import { zipEntries, zipEntryData } from '@latentbase/shared/tensor/npy'
import type { TensorEntry } from '@latentbase/shared/tensor/safetensors'

class Global {
  constructor(
    readonly module: string,
    readonly name: string
  ) {}
}
class Mark {}
class Opaque {
  constructor(readonly what: string) {}
}
interface StorageRef {
  dtype: TensorEntry['dtype']
  key: string
  numel: number
}
interface TensorRef {
  storage: StorageRef
  offset: number
  size: number[]
  stride: number[]
}

const STORAGES: Record<string, TensorEntry['dtype']> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  IntStorage: 'I32',
  LongStorage: 'I64'
}
const ELEM: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I32: 4, I64: 8 }

type Value = unknown

function isStorage(v: Value): v is StorageRef {
  return typeof v === 'object' && v !== null && 'key' in v && 'numel' in v
}
function isTensor(v: Value): v is TensorRef {
  return typeof v === 'object' && v !== null && 'storage' in v && 'size' in v
}

/** Run the pickle in data.pkl; returns the top-level object (a state dict is a Map). */
function unpickle(p: Uint8Array, what: string): Value {
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength)
  const text = (a: number, b: number) => new TextDecoder().decode(p.subarray(a, b))
  const stack: Value[] = []
  const memo = new Map<number, Value>()
  let i = 0
  const fail = (msg: string): never => {
    throw new Error(`${what}: ${msg} (at byte ${i})`)
  }
  const popMark = (): Value[] => {
    let m = stack.length - 1
    while (m >= 0 && !(stack[m] instanceof Mark)) m--
    if (m < 0) fail('pickle MARK missing')
    const items = stack.splice(m)
    items.shift()
    return items
  }
  const line = (): string => {
    const e = p.indexOf(0x0a, i)
    if (e < 0) fail('unterminated line')
    const s = text(i, e)
    i = e + 1
    return s
  }
  const reduce = (fn: Value, args: Value): Value => {
    if (!(fn instanceof Global)) return new Opaque('call')
    const a = args as Value[]
    const id = `${fn.module}.${fn.name}`
    if (id === 'collections.OrderedDict' || id === 'builtins.dict') return new Map()
    if (id === 'torch._utils._rebuild_tensor_v2' || id === 'torch._utils._rebuild_tensor') {
      const [storage, offset, size, stride] = a
      if (!isStorage(storage)) return fail('tensor without a storage')
      return {
        storage,
        offset: offset as number,
        size: size as number[],
        stride: stride as number[]
      } satisfies TensorRef
    }
    if (id === 'torch._utils._rebuild_parameter' || id === 'torch._utils._rebuild_parameter_with_state') return a[0]
    return new Opaque(id)
  }
  for (;;) {
    if (i >= p.length) fail('pickle ended without STOP')
    const op = p[i++]
    switch (op) {
      case 0x80:
        i += 1
        break // PROTO
      case 0x95:
        i += 8
        break // FRAME
      case 0x7d:
      case 0x5d:
        stack.push(op === 0x7d ? new Map() : [])
        break // EMPTY_DICT, EMPTY_LIST
      case 0x29:
        stack.push([])
        break // EMPTY_TUPLE
      case 0x28:
        stack.push(new Mark())
        break // MARK
      case 0x71:
        memo.set(p[i++], stack[stack.length - 1])
        break // BINPUT
      case 0x72:
        memo.set(v.getUint32(i, true), stack[stack.length - 1])
        i += 4
        break // LONG_BINPUT
      case 0x94:
        memo.set(memo.size, stack[stack.length - 1])
        break // MEMOIZE
      case 0x68:
        stack.push(memo.get(p[i++]))
        break // BINGET
      case 0x6a:
        stack.push(memo.get(v.getUint32(i, true)))
        i += 4
        break // LONG_BINGET
      case 0x58: {
        const n = v.getUint32(i, true)
        i += 4
        stack.push(text(i, i + n))
        i += n
        break
      } // BINUNICODE
      case 0x8c:
      case 0x55: {
        const n = p[i++]
        stack.push(text(i, i + n))
        i += n
        break
      } // SHORT_BINUNICODE, SHORT_BINSTRING
      case 0x54:
      case 0x42: {
        const n = v.getUint32(i, true)
        i += 4
        stack.push(op === 0x54 ? text(i, i + n) : p.subarray(i, i + n))
        i += n
        break
      } // BINSTRING, BINBYTES
      case 0x43: {
        const n = p[i++]
        stack.push(p.subarray(i, i + n))
        i += n
        break
      } // SHORT_BINBYTES
      case 0x63: {
        const module = line()
        stack.push(new Global(module, line()))
        break
      } // GLOBAL
      case 0x93: {
        const name = stack.pop() as string
        stack.push(new Global(stack.pop() as string, name))
        break
      } // STACK_GLOBAL
      case 0x51: {
        // BINPERSID: ('storage', storage_type, key, location, numel)
        const pid = stack.pop() as Value[]
        if (!Array.isArray(pid) || pid[0] !== 'storage' || !(pid[1] instanceof Global))
          fail('unsupported persistent id')
        const dtype = STORAGES[(pid[1] as Global).name]
        if (!dtype)
          fail(
            `storage type ${(pid[1] as Global).module}.${(pid[1] as Global).name} is not supported (float, half, bfloat16, double)`
          )
        stack.push({ dtype, key: String(pid[2]), numel: Number(pid[4]) } satisfies StorageRef)
        break
      }
      case 0x4a:
        stack.push(v.getInt32(i, true))
        i += 4
        break // BININT
      case 0x4b:
        stack.push(p[i++])
        break // BININT1
      case 0x4d:
        stack.push(v.getUint16(i, true))
        i += 2
        break // BININT2
      case 0x8a: {
        // LONG1
        const n = p[i++]
        let x = 0n
        for (let k = n - 1; k >= 0; k--) x = (x << 8n) | BigInt(p[i + k])
        if (n > 0 && p[i + n - 1] & 0x80) x -= 1n << BigInt(8 * n)
        stack.push(Number(x))
        i += n
        break
      }
      case 0x47:
        stack.push(v.getFloat64(i, false))
        i += 8
        break // BINFLOAT
      case 0x4e:
        stack.push(null)
        break // NONE
      case 0x88:
        stack.push(true)
        break // NEWTRUE
      case 0x89:
        stack.push(false)
        break // NEWFALSE
      case 0x74:
        stack.push(popMark())
        break // TUPLE
      case 0x85:
        stack.push([stack.pop()])
        break // TUPLE1
      case 0x86: {
        const b = stack.pop()
        stack.push([stack.pop(), b])
        break
      } // TUPLE2
      case 0x87: {
        const c = stack.pop()
        const b = stack.pop()
        stack.push([stack.pop(), b, c])
        break
      } // TUPLE3
      case 0x52: {
        const args = stack.pop()
        stack.push(reduce(stack.pop(), args))
        break
      } // REDUCE
      case 0x81: {
        stack.pop()
        const cls = stack.pop()
        stack.push(new Opaque(cls instanceof Global ? `${cls.module}.${cls.name}` : 'object'))
        break
      } // NEWOBJ
      case 0x73: {
        const val = stack.pop()
        const key = stack.pop()
        const d = stack[stack.length - 1]
        if (d instanceof Map) d.set(key, val)
        break
      } // SETITEM
      case 0x75: {
        // SETITEMS
        const items = popMark()
        const d = stack[stack.length - 1]
        if (d instanceof Map) for (let k = 0; k + 1 < items.length; k += 2) d.set(items[k], items[k + 1])
        break
      }
      case 0x61: {
        const x = stack.pop()
        const l = stack[stack.length - 1]
        if (Array.isArray(l)) l.push(x)
        break
      } // APPEND
      case 0x65: {
        const items = popMark()
        const l = stack[stack.length - 1]
        if (Array.isArray(l)) l.push(...items)
        break
      } // APPENDS
      case 0x62:
        stack.pop()
        break // BUILD: the state (a state dict's _metadata) is not needed
      case 0x2e:
        return stack.pop() // STOP
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16)}`)
    }
  }
}

/**
 * The tensors of a torch.save'd state dict (`.pth` / `.pt` in the zip format of torch >= 1.6), as little-endian
 * tensor entries. Only contiguous tensors (what nn.Module.state_dict() holds) are read.
 */
export function readTorchStateDict(bytes: Uint8Array, what = 'model.pth'): Map<string, TensorEntry> {
  if (bytes[0] !== 0x50 || bytes[1] !== 0x4b)
    throw new Error(`${what}: not a zip-format torch checkpoint (saved by torch < 1.6, or not torch.save output)`)
  const entries = zipEntries(bytes, what)
  const pkl = entries.find(e => e.name.endsWith('/data.pkl') || e.name === 'data.pkl')
  if (!pkl) throw new Error(`${what}: no data.pkl in the archive`)
  const prefix = pkl.name.slice(0, -'data.pkl'.length)
  const byteorder = entries.find(e => e.name === `${prefix}byteorder`)
  if (byteorder && new TextDecoder().decode(zipEntryData(bytes, byteorder, what)).trim() !== 'little')
    throw new Error(`${what}: big-endian checkpoints are not supported`)
  const root = unpickle(zipEntryData(bytes, pkl, what), `${what}: data.pkl`)
  if (!(root instanceof Map)) throw new Error(`${what}: the checkpoint is not a state dict (a dict of tensors)`)
  const byName = new Map(entries.map(e => [e.name, e]))
  const storages = new Map<string, Uint8Array>()
  const out = new Map<string, TensorEntry>()
  for (const [name, value] of root) {
    if (!isTensor(value)) continue
    const { storage, offset, size, stride } = value
    let expected = 1
    for (let d = size.length - 1; d >= 0; d--) {
      if (size[d] > 1 && stride[d] !== expected)
        throw new Error(
          `${what}: tensor "${name}" is not contiguous (stride [${stride}] for size [${size}]); save tensor.contiguous()`
        )
      expected *= size[d]
    }
    let data = storages.get(storage.key)
    if (!data) {
      const entry = byName.get(`${prefix}data/${storage.key}`)
      if (!entry) throw new Error(`${what}: storage ${storage.key} of "${name}" is missing from the archive`)
      data = zipEntryData(bytes, entry, what)
      storages.set(storage.key, data)
    }
    const elem = ELEM[storage.dtype]
    const start = offset * elem
    const end = start + expected * elem
    if (end > data.byteLength) throw new Error(`${what}: tensor "${name}" runs past its storage`)
    out.set(String(name), { dtype: storage.dtype, shape: size, bytes: data.subarray(start, end) })
  }
  return out
}
