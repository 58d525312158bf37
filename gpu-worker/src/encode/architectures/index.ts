/**
 * @module The SAE architectures, one registry entry each (SAELens keeps one class per architecture in a registry
 * the same way). An architecture lives in its own file here (weights type, SAELens reading, fused-graph gate,
 * float64 reference); adding one means writing that file and listing it below.
 */
import { gated, type GatedSae } from './gated.ts'
import { jumprelu, type JumpReluSae } from './jumprelu.ts'
import { standard, type StandardSae } from './standard.ts'
import { topk, type TopKSae } from './topk.ts'
import type { ArchitectureEntry } from './types.ts'

export type { SaeCommon, SaeInputNormalization, GraphGate, WindowIndex, ArchitectureEntry } from './types.ts'
export type { StandardSae, JumpReluSae, TopKSae, GatedSae }

/** Every format is translated into this: the common weights plus the fields of one architecture, under its tag. */
export type SaeWeights = StandardSae | TopKSae | JumpReluSae | GatedSae
export type SaeArchitecture = SaeWeights['architecture']

type Registry = { [A in SaeArchitecture]: ArchitectureEntry<Extract<SaeWeights, { architecture: A }>> }

/** In the order error messages list them. */
export const SAE_ARCHITECTURES: Registry = { standard, topk, jumprelu, gated }

export function isSaeArchitecture(name: string): name is SaeArchitecture {
  return Object.hasOwn(SAE_ARCHITECTURES, name)
}

/** The registry entry of an SAE's architecture, typed for that SAE. */
export function architectureOf<W extends SaeWeights>(sae: W): ArchitectureEntry<W> {
  const entry = SAE_ARCHITECTURES[sae.architecture] as unknown as ArchitectureEntry<W> | undefined
  if (!entry)
    throw new Error(
      `SAE: architecture "${String(sae.architecture)}" is not supported (${Object.keys(SAE_ARCHITECTURES).join(', ')})`
    )
  return entry
}
