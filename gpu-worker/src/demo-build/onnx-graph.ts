/** @module A minimal ONNX graph builder on onnx-proto, for the graphs the demo encoder writes itself. */
import onnxProto from 'onnx-proto'
import type { onnx as Onnx } from 'onnx-proto'

// onnx-proto is CommonJS (`module.exports = { onnx }`): Node exposes it only as a default export.
export const { onnx } = onnxProto

const DataType = onnx.TensorProto.DataType
const AttributeType = onnx.AttributeProto.AttributeType

/** ONNX raw_data is little-endian; we copy typed-array bytes as they are, so refuse to run elsewhere. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** An attribute value tagged with its ONNX type (a JS number cannot say whether it is an int or a float). */
export type Attr = { type: 'int'; value: number } | { type: 'float'; value: number } | { type: 'ints'; value: number[] }
export const int = (value: number): Attr => ({ type: 'int', value })
export const float = (value: number): Attr => ({ type: 'float', value })
export const ints = (value: number[]): Attr => ({ type: 'ints', value })

/** A symbolic (string) or fixed (number) dimension of a graph input or output. */
export type Dim = string | number

export type ElemType = 'float32' | 'int64' | 'bool'
const ELEM: Record<ElemType, number> = { float32: DataType.FLOAT, int64: DataType.INT64, bool: DataType.BOOL }
/** ONNX's TensorProto.DataType code of float32, for Cast's `to` attribute. */
export const FLOAT32_TYPE: number = DataType.FLOAT

function valueInfo(name: string, elem: ElemType, dims: Dim[]): Onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[elem],
        shape: { dim: dims.map(d => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) }
      }
    }
  }
}

function bytesOf(data: Float32Array | BigInt64Array | Uint16Array): Uint8Array {
  if (!LITTLE_ENDIAN) throw new Error('ONNX writing needs a little-endian machine')
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
}

/**
 * Collects nodes and initializers in order. Node outputs get unique generated names unless one is
 * given, so graph code reads like straight-line maths: `const y = g.op('Add', [a, b])`.
 */
export class GraphBuilder {
  readonly nodes: Onnx.INodeProto[] = []
  readonly initializers: Onnx.ITensorProto[] = []
  readonly inputs: Onnx.IValueInfoProto[] = []
  readonly outputs: Onnx.IValueInfoProto[] = []
  private counter = 0

  input(name: string, elem: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, elem, dims))
    return name
  }

  output(name: string, elem: ElemType, dims: Dim[]): string {
    this.outputs.push(valueInfo(name, elem, dims))
    return name
  }

  /** Adds a node with one output and returns that output's name. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, output?: string): string {
    return this.opMulti(opType, inputs, 1, attrs, output ? [output] : undefined)[0]
  }

  /** Adds a node with `count` outputs (Split, TopK). */
  opMulti(
    opType: string,
    inputs: string[],
    count: number,
    attrs: Record<string, Attr> = {},
    outputs?: string[]
  ): string[] {
    const id = this.counter++
    const names =
      outputs ?? Array.from({ length: count }, (_, i) => `${opType.toLowerCase()}_${id}${count > 1 ? `_${i}` : ''}`)
    const attribute: Onnx.IAttributeProto[] = Object.entries(attrs).map(([name, a]) => {
      switch (a.type) {
        case 'int':
          return { name, type: AttributeType.INT, i: a.value }
        case 'float':
          return { name, type: AttributeType.FLOAT, f: a.value }
        case 'ints':
          return { name, type: AttributeType.INTS, ints: a.value }
      }
      throw new Error(`attribute ${name}: unknown type`)
    })
    this.nodes.push({ name: `${opType}_${id}`, opType, input: inputs, output: names, attribute })
    return names
  }

  floatTensor(name: string, data: Float32Array, dims: number[]): string {
    this.initializers.push({ name, dataType: DataType.FLOAT, dims, rawData: bytesOf(data) })
    return name
  }

  /** A float16 initializer from IEEE half bit patterns (half the bytes of float32; Cast it before use). */
  float16Tensor(name: string, bits: Uint16Array, dims: number[]): string {
    this.initializers.push({ name, dataType: DataType.FLOAT16, dims, rawData: bytesOf(bits) })
    return name
  }

  int64Tensor(name: string, values: number[], dims: number[] = [values.length]): string {
    this.initializers.push({
      name,
      dataType: DataType.INT64,
      dims,
      rawData: bytesOf(BigInt64Array.from(values.map(BigInt)))
    })
    return name
  }

  /** A float32 scalar constant (rank 0, so it broadcasts against anything). */
  scalar(name: string, value: number): string {
    return this.floatTensor(name, Float32Array.of(value), [])
  }

  /** Serializes an opset-17 model (ONNX IR 8, the newest these protos know). */
  toModel(graphName: string, docString = '', metadata: Record<string, string> = {}): Uint8Array {
    const model: Onnx.IModelProto = {
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      producerName: 'latentbase',
      docString,
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs
      }
    }
    return onnx.ModelProto.encode(model).finish()
  }
}

/**
 * The inputs every reader graph takes (input_ids, attention_mask: int64 [batch, tokens]) and the int64 constants
 * both demo readers build on: 0 and 1 as scalars, [0] and [1] as axes.
 */
export function readerPrelude(g: GraphBuilder): {
  ids: string
  mask: string
  zero: string
  one: string
  axis0: string
  axis1: string
} {
  const ids = g.input('input_ids', 'int64', ['batch', 'tokens'])
  const mask = g.input('attention_mask', 'int64', ['batch', 'tokens'])
  const zero = g.int64Tensor('const.zero', [0], [])
  const one = g.int64Tensor('const.one', [1], [])
  const axis0 = g.int64Tensor('const.axes0', [0])
  const axis1 = g.int64Tensor('const.axes1', [1])
  return { ids, mask, zero, one, axis0, axis1 }
}
