/**
 * @module What a minimal encoder.json leaves out, read from the files that already say it: the reader's inputs
 * and hidden-state output from its ONNX graph, the hook from the SAE's metadata (checked against each other).
 */
import type { onnx as Onnx } from 'onnx-proto'
import { hiddenStatesIndex, sameHook } from './formats/index.ts'
import type { ReaderOutputRef } from './fused-graph.ts'

type Long = { toNumber(): number }
const num = (v: number | Long | null | undefined): number =>
  v === null || v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber()

/** A declared graph input or output: name, element type and shape as the model states them. */
export interface GraphValue {
  name: string
  /** e.g. 'int64', 'float32'; 'unknown' when the model declares no type. */
  type: string
  /** Dimensions: numbers, symbolic names, or null where undeclared; undefined when the model gives no shape. */
  shape?: (number | string | null)[]
}

export interface ReaderInputNames {
  ids: string
  mask?: string
  positions?: string
}
export type ReaderRole = keyof ReaderInputNames

const ELEM_TYPES: Record<number, string> = {
  1: 'float32',
  6: 'int32',
  7: 'int64',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  16: 'bfloat16'
}

function graphValue(v: Onnx.IValueInfoProto): GraphValue {
  const t = v.type?.tensorType
  const shape = t?.shape?.dim?.map(d => {
    const n = num(d.dimValue as number | Long | null | undefined)
    return n > 0 ? n : d.dimParam || null
  })
  return {
    name: v.name ?? '',
    type: t?.elemType ? (ELEM_TYPES[t.elemType] ?? `type ${t.elemType}`) : 'unknown',
    ...(shape ? { shape } : {})
  }
}

/** The graph's real inputs (initializers listed as inputs by old exporters left out) and its outputs. */
export function graphSignature(model: Onnx.IModelProto): { inputs: GraphValue[]; outputs: GraphValue[] } {
  const g = model.graph
  const inits = new Set((g?.initializer ?? []).map(t => t.name ?? ''))
  return {
    inputs: (g?.input ?? []).filter(v => !inits.has(v.name ?? '')).map(graphValue),
    outputs: (g?.output ?? []).map(graphValue)
  }
}

export const describeValue = (v: GraphValue): string =>
  `${v.name} (${v.type}${v.shape ? ` [${v.shape.map(d => d ?? '?').join(', ')}]` : ''})`

/** The usual names of each reader input, as Hugging Face and torch.onnx.export write them (compared case-insensitively). */
export const INPUT_NAMES: Record<ReaderRole, string[]> = {
  ids: ['input_ids', 'ids', 'tokens', 'token_ids'],
  mask: ['attention_mask', 'mask'],
  positions: ['position_ids', 'positions']
}

function roleOf(name: string): ReaderRole | null {
  const n = name.toLowerCase()
  for (const role of Object.keys(INPUT_NAMES) as ReaderRole[]) if (INPUT_NAMES[role].includes(n)) return role
  return null
}

/**
 * Map every input the reader needs to ids / mask / positions: names encoder.json gives win, the others are told
 * by their usual names. Throws, listing the graph's inputs and the encoder.json field to set, when it cannot tell.
 */
export function inferReaderInputs(
  needed: GraphValue[],
  explicit: Partial<ReaderInputNames> | undefined,
  all: GraphValue[] = needed
): ReaderInputNames {
  const out: Partial<ReaderInputNames> = {}
  for (const [role, name] of Object.entries(explicit ?? {}) as [ReaderRole, string | undefined][]) {
    if (!name) continue
    if (!all.some(v => v.name === name)) {
      throw new Error(
        `encoder.json: reader.inputs.${role} is "${name}" but the reader graph has no such input; its inputs: ${all.map(describeValue).join(', ') || 'none'}`
      )
    }
    out[role] = name
  }
  const given = new Set(Object.values(out))
  const problems: string[] = []
  for (const input of needed) {
    if (given.has(input.name)) continue
    const role = roleOf(input.name)
    if (!role) {
      problems.push(`input "${input.name}" has none of the usual names`)
      continue
    }
    if (out[role] !== undefined) {
      problems.push(`inputs "${out[role]}" and "${input.name}" both look like ${role}`)
      continue
    }
    out[role] = input.name
  }
  if (out.ids === undefined && !problems.length) problems.push('no input looks like token ids')
  if (problems.length) {
    const listing = all.map(describeValue).join(', ') || 'none'
    const example = JSON.stringify({
      ids: out.ids ?? needed[0]?.name ?? 'input_ids',
      ...(needed.length > 1 ? { mask: out.mask ?? needed[1].name } : {})
    })
    throw new Error(
      `encoder.json: reader.inputs cannot be inferred from the reader graph: ${problems.join('; ')}. ` +
        `The graph's inputs: ${listing}. Usual names: ids ${INPUT_NAMES.ids.join(' / ')}, mask ${INPUT_NAMES.mask.join(' / ')}, ` +
        `positions ${INPUT_NAMES.positions.join(' / ')}. Set reader.inputs in encoder.json, e.g. "inputs": ${example} ` +
        `(only token ids, the attention mask and position ids are fed: a reader that needs another input must be exported without it)`
    )
  }
  return out as ReaderInputNames
}

/**
 * The hook the encoder reads: the SAE's own (from its metadata, folder or path), checked against reader.hookName
 * when encoder.json gives one too. Equal names, or two names of the same residual-stream hidden state, agree.
 */
export function resolveHook(saeHook: string, saeHookOrigin: string, readerHook: string | undefined): string {
  if (readerHook === undefined) return saeHook
  if (!sameHook(saeHook, readerHook)) {
    throw new Error(
      `encoder.json: reader.hookName is "${readerHook}" but the SAE's ${saeHookOrigin} "${saeHook}": they name different hidden states; fix one, or leave reader.hookName out to use the SAE's`
    )
  }
  return readerHook
}

const HIDDEN_NAME = /^hidden_states?[._/]?(\d+)$/i
const NOT_HIDDEN = /logit|loss|past|present|key|value|attention|score/i

/**
 * The reader output holding the hook's hidden states, when encoder.json gives no reader.output: `hidden_states.<i>`
 * (or `hidden_states_<i>`) for the hook's hidden_states index i, a stacked `hidden_states` [layers, B, T, D] at i,
 * or else the one output shaped like hidden states [batch, tokens, d_in]. Throws, listing the outputs, otherwise.
 */
export function inferReaderOutput(outputs: GraphValue[], hookName: string, dIn: number): ReaderOutputRef {
  const index = hiddenStatesIndex(hookName)
  const numbered = outputs
    .map(o => ({ o, i: HIDDEN_NAME.exec(o.name) }))
    .filter(x => x.i)
    .map(x => ({ o: x.o, i: Number(x.i![1]) }))
  if (index !== null) {
    const named = numbered.find(x => x.i === index)
    if (named) return named.o.name
    const stacked = outputs.find(o => /^hidden_states$/i.test(o.name) && o.shape?.length === 4)
    if (stacked && !(typeof stacked.shape![0] === 'number' && stacked.shape![0] <= index))
      return { name: stacked.name, index }
  }
  const plausible = outputs.filter(
    o =>
      !NOT_HIDDEN.test(o.name) &&
      (o.type === 'float32' || o.type === 'float16' || o.type === 'bfloat16' || o.type === 'unknown') &&
      (!o.shape || (o.shape.length === 3 && (typeof o.shape[2] !== 'number' || o.shape[2] === dIn)))
  )
  const listing = outputs.map(describeValue).join(', ') || 'none'
  const where =
    index === null
      ? `the hook "${hookName}" is not a residual-stream hook with a hidden_states index`
      : `the hook "${hookName}" is hidden_states[${index}]`
  if (plausible.length === 1) {
    const only = plausible[0]
    const n = HIDDEN_NAME.exec(only.name)
    // A numbered output of another layer is not the hook's, however alone it is.
    if (!(n && index !== null && Number(n[1]) !== index)) return only.name
  }
  const why =
    plausible.length === 0
      ? `no output is shaped like hidden states [batch, tokens, ${dIn}] for that hook`
      : plausible.length === 1
        ? `the only hidden-state output, "${plausible[0].name}", is another layer's`
        : `${plausible.length} outputs could be its hidden states (${plausible.map(o => o.name).join(', ')})`
  throw new Error(
    `encoder.json: reader.output cannot be inferred from the reader graph: ${where}, and ${why}. ` +
      `The graph's outputs: ${listing}. Set reader.output in encoder.json to the output holding that hook's hidden states, ` +
      `e.g. "output": "hidden_states.${index ?? 'N'}", or { "name": "hidden_states", "index": ${index ?? 'N'} } for a stacked output`
  )
}
