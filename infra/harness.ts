/**
 * @module Evaluates sst.config.ts with stand-ins for SST's globals ($config, sst.aws.*, aws.*, $interpolate,
 * $jsonStringify, $app): every resource and call is recorded with its arguments, and values that would be Pulumi
 * Outputs are tokens like `${sst.aws.Queue:Encode.arn}`, so tests can see which resource feeds which argument.
 */

export interface Recorded {
  type: string
  name: string
  args: Record<string, any>
  opts?: Record<string, any>
}

const OUT = Symbol('output')

/** An Output stand-in: a string value with placeholders; unknown properties are nested outputs; apply() runs for real. */
export interface Token {
  readonly [OUT]: true
  value: string
  apply(fn: (v: string) => unknown): Token
}

export function isToken(x: unknown): x is Token {
  return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[OUT] === true
}

function token(value: string): Token {
  const base = {
    [OUT]: true as const,
    value,
    apply: (fn: (v: string) => unknown) => {
      const r = fn(value)
      return isToken(r) ? r : token(typeof r === 'string' ? r : JSON.stringify(r))
    },
    toJSON: () => value,
    toString: () => value,
    [Symbol.toPrimitive]: () => value
  }
  return new Proxy(base, {
    get(t, p) {
      if (p in t) return (t as any)[p]
      if (typeof p === 'symbol' || p === 'then') return undefined
      return token(`${value}.${p}`)
    }
  }) as unknown as Token
}

export interface Harness {
  resources: Recorded[]
  calls: Recorded[]
  outputs: Record<string, unknown>
  app: Record<string, any>
  byType(type: string): Recorded[]
  one(type: string, name: string): Recorded
}

/** Methods that SST components have and the config calls: recorded as `${type}.${method}` calls. */
const METHODS = new Set(['subscribe'])

export async function evaluateSstConfig(
  configPath: string,
  app = { name: 'latentbase', stage: 'test' }
): Promise<Harness> {
  const resources: Recorded[] = []
  const calls: Recorded[] = []

  const resourceClass = (type: string) =>
    class {
      constructor(name: string, args: Record<string, any> = {}, opts?: Record<string, any>) {
        if (resources.some(r => r.type === type && r.name === name)) throw new Error(`duplicate ${type} "${name}"`)
        resources.push({ type, name, args, opts })
        // biome-ignore lint/correctness/noConstructorReturn: SST resources answer any output property; a Proxy stands in for them
        return new Proxy(this, {
          get(_t, p) {
            if (typeof p === 'symbol' || p === 'then') return undefined
            if (METHODS.has(p))
              return (...a: any[]) => {
                calls.push({ type: `${type}.${p}`, name, args: { arguments: a } })
                return token(`${type}:${name}.${p}()`)
              }
            return token(`\${${type}:${name}.${p}}`)
          }
        })
      }
    }
  /** A namespace where Capitalized names are resource classes and others are data-source functions. */
  const namespace = (prefix: string): any =>
    new Proxy(
      {},
      {
        get(_t, p) {
          if (typeof p === 'symbol' || p === 'then') return undefined
          const type = `${prefix}.${p}`
          if (/^[A-Z]/.test(p)) return resourceClass(type)
          if (p === 'config') return token(`\${${type}}`)
          const ns = namespace(type)
          return new Proxy(() => {}, {
            apply: (_f, _this, a: any[]) => {
              calls.push({ type, name: type, args: { arguments: a } })
              return token(`\${${type}()}`)
            },
            get: (_f, q) => ns[q as string]
          })
        }
      }
    )

  const g = globalThis as any
  const saved = Object.fromEntries(
    ['$config', 'sst', 'aws', '$interpolate', '$jsonStringify', '$app'].map(k => [k, g[k]])
  )
  g.$config = (c: unknown) => c
  g.sst = { aws: namespace('sst.aws') }
  g.aws = namespace('aws')
  g.$interpolate = (strings: TemplateStringsArray, ...values: unknown[]) =>
    token(strings.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ''), ''))
  g.$jsonStringify = (obj: unknown) => token(JSON.stringify(obj))
  g.$app = app
  try {
    const config = (await import(configPath)).default as {
      app(input: unknown): Record<string, any>
      run(): Promise<Record<string, unknown>>
    }
    const appConfig = config.app({ stage: app.stage })
    const outputs = await config.run()
    return {
      resources,
      calls,
      outputs,
      app: appConfig,
      byType: type => resources.filter(r => r.type === type),
      one(type, name) {
        const r = resources.find(x => x.type === type && x.name === name)
        if (!r)
          throw new Error(`no ${type} "${name}"; declared: ${resources.map(x => `${x.type}:${x.name}`).join(', ')}`)
        return r
      }
    }
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete g[k]
      else g[k] = v
    }
  }
}
