/**
 * @module The README and docs/*.md hold together: every relative link reaches a file that exists and every #anchor a
 * heading of that file (GitHub's slugs), every repository path they name (`gpu-worker/src/encode/`) exists; the README
 * stays short, names the commands and links every docs page.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const DOCS = join(ROOT, 'docs')

/** Markdown without fenced code blocks and inline code spans, whose brackets are not links. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '')
}

/** Targets of inline links and images: [text](target "title"). */
export function linkTargets(markdown: string): string[] {
  const out: string[] = []
  for (const m of prose(markdown).matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push(m[1])
  return out
}

/** The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces to '-', repeats numbered. */
export function headingAnchors(markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const anchors = new Set<string>()
  const withoutFences = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')
  for (const m of withoutFences.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const slug = m[1]
      .replace(/`/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .trim()
      .replace(/\s/g, '-')
    const n = seen.get(slug) ?? 0
    seen.set(slug, n + 1)
    anchors.add(n ? `${slug}-${n}` : slug)
  }
  return anchors
}

/** Broken relative links of one markdown file: a missing file, or an anchor no heading of the target has. */
export function brokenLinks(file: string, markdown: string, read: (path: string) => string | null): string[] {
  const broken: string[] = []
  for (const target of linkTargets(markdown)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // https:, mailto:
    const [pathPart, anchor] = target.split('#', 2)
    const path = pathPart ? resolve(dirname(file), decodeURIComponent(pathPart)) : file
    const text = pathPart ? read(path) : markdown
    if (text === null) {
      broken.push(`${target}: no such file`)
      continue
    }
    if (anchor !== undefined && path.endsWith('.md') && !headingAnchors(text).has(anchor))
      broken.push(`${target}: no heading with anchor #${anchor}`)
  }
  return broken
}

const readIfExists = (path: string): string | null => {
  if (!existsSync(path)) return null
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  } // a folder: exists, has no headings
}
const files = () => [
  join(ROOT, 'README.md'),
  ...readdirSync(DOCS)
    .filter(f => f.endsWith('.md'))
    .map(f => join(DOCS, f))
]

test('the checker finds what it must: missing files, missing anchors, GitHub slugs; code is not a link', () => {
  const anchors = headingAnchors(
    '# The minimal encoder.json\n## AWS (`sst.config.ts`, SST v4)\n## Keys, tenants and URLs\n## Keys, tenants and URLs\n```\n# not a heading\n```\n'
  )
  assert.deepEqual(
    [...anchors],
    ['the-minimal-encoderjson', 'aws-sstconfigts-sst-v4', 'keys-tenants-and-urls', 'keys-tenants-and-urls-1']
  )
  const md =
    '# Top\nsee [a](other.md#there), [b](#top), [c](#nowhere), [d](https://example.org), `[e](code.md)`, [f](missing.md)\n'
  const other = '# There\n'
  const broken = brokenLinks('/x/doc.md', md, p => (p === '/x/other.md' ? other : null))
  assert.deepEqual(broken, ['#nowhere: no heading with anchor #nowhere', 'missing.md: no such file'])
})

test('every relative link in README.md and docs/*.md reaches an existing file and heading', () => {
  const all: string[] = []
  let links = 0
  for (const file of files()) {
    const markdown = readFileSync(file, 'utf8')
    links += linkTargets(markdown).length
    for (const b of brokenLinks(file, markdown, readIfExists)) all.push(`${relative(ROOT, file)}: ${b}`)
  }
  assert.ok(links > 30, `${links} links checked`)
  assert.deepEqual(all, [])
})

/** Paths from the repository root the text names (api/..., gpu-worker/..., shared/..., sdk/..., infra/...). */
export function repositoryPaths(markdown: string): string[] {
  return [...markdown.matchAll(/(?<![\w./-])((?:api|gpu-worker|shared|sdk|infra)\/[\w./-]*)/g)].map(m =>
    m[1].replace(/\.+$/, '')
  )
}

test('every repository path README.md and docs/*.md name exists (the pipeline picture included)', () => {
  assert.deepEqual(repositoryPaths('see `gpu-worker/src/encode/` and api/src/app.ts. Not xapi/y'), [
    'gpu-worker/src/encode/',
    'api/src/app.ts'
  ])
  const missing: string[] = []
  let named = 0
  for (const file of files()) {
    for (const path of repositoryPaths(readFileSync(file, 'utf8'))) {
      named++
      if (!existsSync(join(ROOT, path))) missing.push(`${relative(ROOT, file)}: ${path}`)
    }
  }
  assert.ok(named > 50, `${named} paths checked`)
  assert.deepEqual(missing, [])
})

test('the README is short, names the commands, and links every docs page', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const lines = readme.split('\n').length
  assert.ok(lines <= 160, `README.md has ${lines} lines; move detail into docs/`)
  for (const phrase of ['npm ci && npm run demo', 'npm ci && npm test', 'npm start'])
    assert.ok(readme.includes(phrase), phrase)
  const linked = new Set(linkTargets(readme).map(t => t.split('#')[0]))
  for (const page of readdirSync(DOCS).filter(f => f.endsWith('.md')))
    assert.ok(linked.has(`docs/${page}`), `README links docs/${page}`)
})

test('every `npm run` command the docs name is a script of package.json, and no script name is given twice', () => {
  const text = readFileSync(join(ROOT, 'package.json'), 'utf8')
  // JSON.parse keeps the last of two equal keys silently: a second "x" script hides the first one's command.
  const block = /^ {2}"scripts": \{\n([\s\S]*?)^ {2}\}/m.exec(text)?.[1] ?? ''
  const names = [...block.matchAll(/^ {4}"([^"]+)":/gm)].map(m => m[1])
  assert.ok(names.length > 10, 'the scripts block of package.json was found')
  const twice = names.filter((n, i) => names.indexOf(n) !== i)
  assert.deepEqual(twice, [], `package.json names these scripts twice: ${twice.join(', ')}`)
  const scripts = new Set(Object.keys(JSON.parse(text).scripts as Record<string, string>))
  const pages = [
    'README.md',
    ...readdirSync(DOCS)
      .filter(f => f.endsWith('.md'))
      .map(f => `docs/${f}`)
  ]
  for (const page of pages) {
    for (const m of readFileSync(join(ROOT, page), 'utf8').matchAll(/npm run ([a-z][\w:.-]*[\w])/g))
      assert.ok(scripts.has(m[1]), `${page} names \`npm run ${m[1]}\`, which package.json does not define`)
  }
})
