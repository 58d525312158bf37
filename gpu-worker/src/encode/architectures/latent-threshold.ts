/** @module The graph gate of architectures whose activation is one monotone function per latent: f(h) = h where h > theta, else 0. */
import type { GraphBuilder } from '../graph-builder.ts'
import type { GraphGate } from './types.ts'

/**
 * `theta` is a scalar (standard: 0) or a per-latent [S] value (jumprelu: max(threshold, 0)); since f is monotone,
 * max pooling can take f of the pooled maximum.
 */
export function latentThresholdGate(theta: string, perLatent: boolean): GraphGate {
  return {
    monotone: true,
    isActive: (b: GraphBuilder, x: string) => b.op('Greater', [x, theta]),
    activations: (b: GraphBuilder, h: string) => b.op('Where', [b.op('Greater', [h, theta]), h, b.zero()], {}, 'acts'),
    window: (b, hg, at) => {
      const t = perLatent ? at.perLatent(theta) : theta
      return b.op('Where', [b.op('Greater', [hg, t]), hg, b.zero()])
    }
  }
}
