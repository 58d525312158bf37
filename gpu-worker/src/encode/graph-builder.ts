/** @module A small ONNX graph builder on onnx-proto: fresh value names, typed initializers, and reductions in the form the opset wants. */
import onnxPkg from 'onnx-proto'
import type { onnx as Onnx } from 'onnx-proto'
import { float32ToHalf } from '@latentbase/shared/tensor/float16'

const { onnx } = onnxPkg
/** ONNX tensor element types (TensorProto.DataType). */
export const DT = onnx.TensorProto.DataType
const AT = onnx.AttributeProto.AttributeType

export type AttrValue = number | number[] | { float: number } | { floats: number[] }

export class GraphBuilder {
  readonly nodes: Onnx.INodeProto[] = []
  readonly initializers: Onnx.ITensorProto[] = []
  private counter = 0
  constructor(readonly opset: number) {}

  fresh(hint: string): string {
    return `latentbase/${hint}_${this.counter++}`
  }

  /** Opset domains other than ai.onnx that nodes used (e.g. com.microsoft), for the model's opset imports. */
  readonly domains = new Set<string>()

  node(
    op: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    outputs = 1,
    hint = op,
    domain?: string
  ): string[] {
    const outs = Array.from({ length: outputs }, () => this.fresh(hint))
    const attribute: Onnx.IAttributeProto[] = Object.entries(attrs).map(([name, v]) => {
      if (typeof v === 'number') return { name, type: AT.INT, i: v }
      if (Array.isArray(v)) return { name, type: AT.INTS, ints: v }
      if ('float' in v) return { name, type: AT.FLOAT, f: v.float }
      return { name, type: AT.FLOATS, floats: v.floats }
    })
    if (domain) this.domains.add(domain)
    this.nodes.push({
      opType: op,
      input: inputs,
      output: outs,
      name: this.fresh(`node_${op}`),
      attribute,
      ...(domain ? { domain } : {})
    })
    return outs
  }

  op(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, hint = op): string {
    return this.node(op, inputs, attrs, 1, hint)[0]
  }

  /** Rename a value, where it is produced and where it is read, so it becomes a graph output under that name. */
  nameLast(value: string, name: string): string {
    const rename = (o: string) => (o === value ? name : o)
    for (const n of this.nodes) {
      if (n.output?.includes(value)) n.output = n.output.map(rename)
      if (n.input?.includes(value)) n.input = n.input.map(rename)
    }
    return name
  }

  f16(values: ArrayLike<number>, dims: number[], hint = 'const'): string {
    const name = this.fresh(hint)
    const bits = float32ToHalf(values)
    this.initializers.push({
      name,
      dataType: DT.FLOAT16,
      dims,
      rawData: new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength)
    })
    return name
  }

  f32(values: ArrayLike<number>, dims: number[], hint = 'const'): string {
    const name = this.fresh(hint)
    const data = values instanceof Float32Array ? values : Float32Array.from(values)
    this.initializers.push({
      name,
      dataType: DT.FLOAT,
      dims,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    })
    return name
  }

  /** An initializer of 8-bit integers (INT8 or UINT8) from their bytes. */
  int8(values: Int8Array | Uint8Array, dims: number[], hint = 'const'): string {
    const name = this.fresh(hint)
    this.initializers.push({
      name,
      dataType: values instanceof Int8Array ? DT.INT8 : DT.UINT8,
      dims,
      rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
    })
    return name
  }

  i64(values: number[], dims: number[], hint = 'const'): string {
    const name = this.fresh(hint)
    const data = BigInt64Array.from(values, v => BigInt(v))
    this.initializers.push({ name, dataType: DT.INT64, dims, rawData: new Uint8Array(data.buffer) })
    return name
  }

  /** ReduceSum takes axes as an input from opset 13; the other reductions only from 18. */
  reduce(op: 'ReduceSum' | 'ReduceMax' | 'ReduceMean', x: string, axes: number[], keepdims: boolean): string {
    const axesAsInput = op === 'ReduceSum' ? this.opset >= 13 : this.opset >= 18
    if (axesAsInput) return this.op(op, [x, this.i64(axes, [axes.length], 'axes')], { keepdims: keepdims ? 1 : 0 })
    return this.op(op, [x], { axes, keepdims: keepdims ? 1 : 0 })
  }

  unsqueeze(x: string, axes: number[]): string {
    return this.op('Unsqueeze', [x, this.i64(axes, [axes.length], 'axes')]) // opset >= 13: axes input
  }

  cast(x: string, to: number): string {
    return this.op('Cast', [x], { to })
  }

  private zeroName: string | null = null
  /** One shared float32 scalar 0, created on first use (an unused initializer makes onnxruntime warn). */
  zero(): string {
    return (this.zeroName ??= this.f32([0], [], 'zero'))
  }
}

export function valueInfo(name: string, elemType: number, dims: (number | string)[]): Onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map(d => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) }
      }
    }
  }
}
