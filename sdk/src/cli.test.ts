/** @module Tests of the `latentbase` CLI against the real local server (demo encoder, two encoded datasets), in-process and through its bin. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { serve, type ServerType } from '@hono/node-server'
import { ApiKeyStore } from '@latentbase/shared/auth/api-keys'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { StaticEncoderCatalog } from '@latentbase/shared/catalog/catalog'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { createApp } from '@latentbase/api/app'
import {
  startScriptedLlm,
  userText,
  type RecordedRequest,
  type ScriptedLlm,
  type ScriptedReply
} from '@latentbase/shared/llm/testkit'
import { startDemoServer, type DemoServer } from '@latentbase/api/testing/demo-server'
import { EXIT, etaOf, main } from './cli.ts'

const BIN = fileURLToPath(new URL('../bin/latentbase.js', import.meta.url))
let demo: DemoServer
let tmp: string
/** A loopback LLM for hypotheses and verify (the server reads LLM_* once, when its app is made). */
let llm: ScriptedLlm
const savedEnv = { ...process.env }

before(async () => {
  llm = await startScriptedLlm()
  Object.assign(process.env, { LLM_BASE_URL: llm.baseURL, LLM_MODEL: 'scripted-model' })
  demo = await startDemoServer(12)
  tmp = await mkdtemp(join(tmpdir(), 'latentbase-cli-'))
})
after(async () => {
  await demo?.close()
  await llm?.close()
  process.env = savedEnv
  await rm(tmp, { recursive: true, force: true })
})

/** Runs the CLI in-process with captured output; `tty` makes stderr look like a terminal. */
async function cli(args: string[], opts: { env?: Record<string, string>; tty?: boolean } = {}) {
  let stdout = ''
  let stderr = ''
  const code = await main(args, {
    stdout: {
      write: (s: string) => {
        stdout += s
      }
    },
    stderr: {
      write: (s: string) => {
        stderr += s
      },
      isTTY: opts.tty ?? false
    },
    env: { LATENTBASE_URL: demo.server.url, ...opts.env }
  })
  return { code, stdout, stderr, json: () => JSON.parse(stdout) }
}

test('encoders and datasets: human tables by default, the API JSON with --json', async () => {
  const encoders = await cli(['encoders'])
  assert.equal(encoders.code, EXIT.ok)
  assert.match(encoders.stdout, /^id\s+hookName\s+dIn\s+dSae/)
  assert.match(encoders.stdout, /\ndemo\s/)
  assert.equal((await cli(['encoders', '--json'])).json()[0].id, 'demo')

  const list = await cli(['datasets', 'list'])
  assert.match(list.stdout, new RegExp(`${demo.spam}\\s+spam\\s+ready\\s+12\\s+demo`))
  const got = await cli(['--json', 'datasets', 'get', demo.spam])
  assert.equal(got.json().status, 'ready')
  assert.equal(got.json().stats.documents, 12)

  const facets = await cli(['datasets', 'facets', demo.spam])
  assert.equal(facets.code, EXIT.ok)
  assert.match(facets.stdout, /^where\s+documents\s+meanTokens\n/)
  const view = (await cli(['--json', 'datasets', 'facets', demo.spam])).json()
  assert.ok(view.fields.length > 0)
  for (const f of view.fields)
    for (const v of f.values)
      assert.match(
        facets.stdout,
        new RegExp(`\n${v.where.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+${v.documents}\\s`)
      )
})

test('datasets create --wait shows progress lines off a terminal, a bar on one, and prints the ready dataset; --pool-roles picks chat turns; delete removes it', async () => {
  const file = join(tmp, 'notes.jsonl')
  await writeFile(
    file,
    Array.from({ length: 6 }, (_, i) =>
      JSON.stringify({ id: `n${i}`, text: `note ${i} about the harbour and its boats` })
    ).join('\n') + '\n{"id": "blank", "text": ""}\n'
  )
  const lines = await cli(['datasets', 'create', `file://${file}`, '--name', 'notes', '--wait'])
  assert.equal(lines.code, EXIT.ok, lines.stderr)
  assert.match(lines.stdout, /status\s+ready/)
  assert.match(lines.stdout, /documents\s+6\n/)
  assert.match(lines.stdout, /skipped\s+1 records \(empty-text 1\)\n/, 'what the source lost is said')
  assert.doesNotMatch(lines.stdout, /truncated/)
  assert.match(lines.stderr, /^ds_\w+ (queued|running|ready)/m)
  assert.ok(!lines.stderr.includes('\r'), 'no carriage returns in logs')
  const id = /id\s+(ds_\w+)/.exec(lines.stdout)![1]

  // A local path (not a URL) is uploaded through POST /uploads, then encoded like any source.
  const bar = await cli(['datasets', 'create', file, '--wait', '--json'], { tty: true })
  assert.equal(bar.code, EXIT.ok)
  assert.match(bar.stderr, /\r\[#{30}\] ready 100% 6\/6 documents/)
  assert.equal(bar.json().status, 'ready')
  assert.match(bar.json().source.url, /^upload:\/\/up_/)

  // A sample of the source: a seeded uniform one, or the first documents; a seed alone is refused before queueing.
  const sampled = await cli([
    'datasets',
    'create',
    `file://${file}`,
    '--max-documents',
    '4',
    '--sample-seed',
    '2',
    '--wait',
    '--json'
  ])
  assert.equal(sampled.code, EXIT.ok, sampled.stderr)
  assert.equal(sampled.json().stats.documents, 4)
  assert.deepEqual(sampled.json().stats.skipped, { 'empty-text': 1, 'not-sampled': 2 })
  const first = await cli(['datasets', 'create', `file://${file}`, '--max-documents', '2', '--wait', '--json'])
  assert.equal(first.json().stats.documents, 2)
  const seedOnly = await cli(['datasets', 'create', `file://${file}`, '--sample-seed', '2'])
  assert.equal(seedOnly.code, EXIT.refused)
  assert.match(seedOnly.stderr, /give source.maxDocuments too/)

  // Chats, pooling the user's turns: the source says so, and a document's strongest latent peaks in a user turn.
  const chats = join(tmp, 'chats.jsonl')
  await writeFile(
    chats,
    `${JSON.stringify({
      messages: [
        { role: 'user', content: 'Tell me about the lighthouse by the harbour.' },
        { role: 'assistant', content: 'Quarterly revenue grew by twelve percent.' }
      ]
    })}\n`
  )
  const chat = await cli([
    'datasets',
    'create',
    `file://${chats}`,
    '--messages-field',
    'messages',
    '--pool-roles',
    'user',
    '--wait',
    '--json'
  ])
  assert.equal(chat.code, EXIT.ok, chat.stderr)
  assert.deepEqual(chat.json().source.poolRoles, ['user'])
  const peak = (await cli(['document', chat.json().id, '0', '--json'])).json().latents[0]
  const where = (await cli(['document', chat.json().id, '0', '--latents', String(peak.latent), '--json'])).json()
  assert.equal(where.pooled[peak.position], 1)
  assert.match(where.tokens.filter((_: string, t: number) => where.pooled[t]).join(''), /lighthouse/)
  assert.equal((await cli(['datasets', 'create', `file://${chats}`, '--pool-roles', ','])).code, EXIT.usage)

  assert.equal((await cli(['datasets', 'delete', id])).code, EXIT.ok)
  const gone = await cli(['datasets', 'get', id])
  assert.equal(gone.code, EXIT.notFound)
  assert.match(gone.stderr, new RegExp(`dataset "${id}" not found`))
})

test('diff, latent, search, correlations and clusters answer as tables and JSON', async () => {
  const diff = await cli(['diff', demo.spam, demo.ham, '--limit', '5', '--json'])
  assert.equal(diff.code, EXIT.ok)
  const top = diff.json().latents[0]
  assert.equal(diff.json().latents.length, 5)
  const table = await cli(['diff', demo.spam, demo.ham, '--limit', '5'])
  assert.match(table.stdout, /^spam \(12 documents\) vs ham \(12\)/)
  assert.match(table.stdout, new RegExp(`\\n${top.latent}\\s+${top.frequencyA.toPrecision(4)}`))
  assert.equal((await cli(['diff', demo.spam, demo.ham, demo.ham, '--json', '--limit', '1'])).json().b.length, 2)
  // A latent without a label is shown by the token it peaks on.
  const wide = (await cli(['diff', demo.spam, demo.ham, '--limit', '500', '--direction', 'both', '--json'])).json()
  const bare = (
    wide.latents as Array<{ latent: number; label: string | null; peak?: { token: string; dataset: string } | null }>
  ).find(l => !l.label && l.peak)
  assert.ok(bare?.peak, 'the demo encoder leaves some latents unlabelled')
  const described = await cli(['diff', demo.spam, demo.ham, '--limit', '1', '--latents', String(bare.latent)])
  assert.ok(described.stdout.includes(`(no label; peaks on "${bare.peak.token}" in `), described.stdout)
  const bareLatent = await cli(['latent', String(bare.latent), '--dataset', bare.peak.dataset])
  assert.match(bareLatent.stdout, new RegExp(`^latent ${bare.latent}: \\(no label; peaks on ".+" in \\d+/\\d+\\)\\n`))

  const latent = await cli(['latent', String(top.latent), '--dataset', demo.spam, '--examples', '2'])
  assert.equal(latent.code, EXIT.ok)
  assert.match(latent.stdout, new RegExp(`^latent ${top.latent}: `))
  assert.match(latent.stdout, new RegExp(`in ${top.countA} documents of ${demo.spam}`))
  assert.doesNotMatch(latent.stdout, /across its values/)
  const spread = await cli([
    'latent',
    String(top.latent),
    '--dataset',
    demo.spam,
    '--intervals',
    '3',
    '--per-interval',
    '1'
  ])
  assert.equal(spread.code, EXIT.ok, spread.stderr)
  assert.match(
    spread.stdout,
    new RegExp(`across its values \\(${top.countA} documents\\):\\ninterval +docs +row +value +window\\n\\(`)
  )
  const spreadJson = await cli(['latent', String(top.latent), '--dataset', demo.spam, '--intervals', '3', '--json'])
  assert.equal(spreadJson.json().intervals.intervals.length, 3)
  assert.equal(spreadJson.json().page.latent, top.latent)

  const list = await cli(['latents', demo.spam, '--limit', '3', '--json'])
  assert.equal(list.code, EXIT.ok)
  const frequent = list.json().latents as Array<{ latent: number; documents: number }>
  assert.equal(frequent.length, 3)
  for (let i = 1; i < 3; i++) assert.ok(frequent[i].documents <= frequent[i - 1].documents)
  const listTable = (await cli(['latents', demo.spam, '--limit', '3'])).stdout
  assert.match(listTable, new RegExp(`^3 of \\d+ latents of ${demo.spam} \\(12 documents\\), most frequent first\\n`))
  assert.match(listTable, new RegExp(`\\n${frequent[0].latent}\\s`))
  const closest = await cli(['latents', demo.spam, '--q', 'click here', '--limit', '2'])
  assert.match(closest.stdout, /closest to "click here"/)
  // The words after the dataset are the text, as search takes them; not both ways at once.
  const words = await cli(['latents', demo.spam, 'click', 'here', '--limit', '2'])
  assert.equal(words.stdout, closest.stdout)
  assert.equal((await cli(['latents', demo.spam, 'click', '--q', 'here'])).code, EXIT.usage)
  const rarest = await cli(['latents', demo.spam, '--sort', 'rare', '--limit', '3'])
  assert.match(rarest.stdout, /, rarest first\n/)
  const tiedTable = await cli([
    'latents',
    demo.spam,
    '--where',
    `latent ${frequent[2].latent}`,
    '--sort',
    'npmi',
    '--limit',
    '2'
  ])
  assert.match(tiedTable.stdout, /, most tied to the slice first \(NPMI\)\n/)
  const rareJson = (await cli(['latents', demo.spam, '--sort', 'rare', '--limit', '3', '--json'])).json()
  assert.ok(rareJson.latents[0].documents <= frequent[2].documents)
  // A slice: the documents where the least frequent of the three fires; it is in every one of them.
  const rare = frequent[2]
  const sliced = await cli(['latents', demo.spam, '--where', `latent ${rare.latent} > 0`, '--limit', '500', '--json'])
  assert.equal(sliced.code, EXIT.ok, sliced.stderr)
  assert.equal(sliced.json().documents, rare.documents)
  assert.equal(sliced.json().where, `latent ${rare.latent} > 0`)
  const inSlice = (sliced.json().latents as Array<{ latent: number; frequency: number }>).find(
    l => l.latent === rare.latent
  )
  assert.equal(inSlice?.frequency, 1)
  const badSlice = await cli(['latents', demo.spam, '--where', 'latent 999999 > 0'])
  assert.equal(badSlice.code, EXIT.refused)
  assert.match(badSlice.stderr, /latent 999999 does not exist/)

  const similar = await cli(['similar', demo.spam, '0', '--limit', '3', '--json'])
  assert.equal(similar.code, EXIT.ok, similar.stderr)
  assert.equal(similar.json().row, 0)
  assert.ok(similar.json().results.length > 0 && similar.json().results.length <= 3)
  for (const r of similar.json().results) assert.notEqual(r.row, 0, 'the document itself is not its own neighbour')
  const similarTable = await cli(['similar', demo.spam, '0', '--limit', '2'])
  assert.match(similarTable.stdout, /^\d+ documents like .+ \(row 0\) of 11, by \d+ latents\n/)
  assert.match(similarTable.stdout, /#\d+/)
  assert.equal((await cli(['similar', demo.spam])).code, EXIT.usage)
  const across = await cli(['similar', demo.spam, '0', '--in', demo.ham, '--limit', '2'])
  assert.match(across.stdout, new RegExp(`of 12 in ${demo.ham}, by \\d+ latents\\n`))
  // Like a text: the local server encodes it; the document's own text finds the document first.
  const likeText = await cli(['similar', demo.spam, '--text', demo.documents.spam[0].text, '--limit', '2', '--json'])
  assert.equal(likeText.code, EXIT.ok, likeText.stderr)
  assert.equal(likeText.json().results[0].row, 0)
  const likeTable = await cli(['similar', demo.spam, '--text', 'click here', '--limit', '2'])
  assert.match(likeTable.stdout, /^\d+ documents like "click here" of 12, by \d+ latents\n/)
  assert.equal((await cli(['similar', demo.spam, '0', '--text', 'x'])).code, EXIT.usage)

  // One document: its strongest latents, then where two of them fire, token by token.
  const docTable = await cli(['document', demo.spam, '2', '--limit', '4'])
  assert.equal(docTable.code, EXIT.ok, docTable.stderr)
  assert.match(docTable.stdout, /\(row 2\), \d+ tokens, \d+ latents/)
  assert.ok(docTable.stdout.includes(demo.documents.spam[2].text.slice(0, 30)))
  const doc = (await cli(['document', demo.spam, '2', '--json'])).json()
  const two = doc.latents.slice(0, 2).map((l: { latent: number }) => l.latent)
  const fired = await cli(['document', demo.spam, '2', '--latents', two.join(',')])
  assert.equal(fired.code, EXIT.ok, fired.stderr)
  assert.match(
    fired.stdout,
    new RegExp(`latent ${two[0]}: max [\\d.]+ at token ${doc.latents[0].position}, fires on \\d+ of \\d+ tokens`)
  )
  assert.match(fired.stdout, /\n +[\d.]+ +.*\[[^\]]+\]/, 'a strongest token in context')
  assert.equal((await cli(['document', demo.spam])).code, EXIT.usage)
  assert.equal((await cli(['document', demo.spam, '2', '--latents', 'x'])).code, EXIT.usage)

  // A text: its strongest latents, as the server encodes it.
  const textTable = await cli([
    'text',
    demo.spam,
    'Click',
    'here',
    'to',
    'claim',
    'your',
    'free',
    'prize',
    '--top',
    '3'
  ])
  assert.equal(textTable.code, EXIT.ok, textTable.stderr)
  assert.match(textTable.stdout, /^\d+ tokens, \d+ latents fire; strongest:\n/)
  assert.match(textTable.stdout, /\[[^\]]+\]/, 'each peak token in brackets')
  const textJson = (await cli(['text', demo.spam, 'free prize', '--latents', '5,2', '--json'])).json()
  assert.deepEqual(
    textJson.latents.map((l: { latent: number }) => l.latent),
    [5, 2]
  )
  const distinctive = await cli(['text', demo.spam, 'free prize', '--distinctive', '--top', '2'])
  assert.match(distinctive.stdout, /latents fire; most distinctive:\n/)
  const chatText = JSON.stringify([
    { role: 'user', content: 'hi' },
    { role: 'assistant', content: 'Click here to claim your free prize' }
  ])
  const chatJson = (await cli(['text', demo.spam, chatText, '--chat', '--json'])).json()
  assert.match(chatJson.tokens.filter((_: string, t: number) => chatJson.pooled[t]).join(''), /Click here/)
  const badChat = await cli(['text', demo.spam, 'not json', '--chat'])
  assert.equal(badChat.code, EXIT.usage)
  assert.match(badChat.stderr, /--chat: the text is a JSON list of messages/)
  assert.equal((await cli(['text', demo.spam])).code, EXIT.usage)

  const search = await cli(['search', demo.spam, 'click', '--method', 'bm25', '--json'])
  assert.ok(search.json().results.length > 0)
  for (const r of search.json().results) assert.match(demo.documents.spam[r.row].text.toLowerCase(), /click/)
  const bm25Table = await cli(['search', demo.spam, 'click', '--method', 'bm25'])
  assert.doesNotMatch(bm25Table.stdout.split('\n')[1] ?? '', /\bby\b/, 'bm25 hits have no latents')
  const byLatent = await cli(['search', demo.spam, '--latents', String(top.latent)])
  assert.match(byLatent.stdout, new RegExp(`#${top.latent} 100%`), 'each hit says which latent made its score')

  const corr = await cli([
    'correlations',
    demo.spam,
    '--min-npmi',
    '0',
    '--min-count',
    '2',
    '--max-frequency',
    '1',
    '--json'
  ])
  assert.equal(corr.code, EXIT.ok)
  assert.equal(corr.json().documents, 12)

  const clusters = await cli(['clusters', demo.spam, '--k', '2', '--seed', '1', '--json'])
  assert.equal(clusters.json().assignments.length, 12)
  const clusterTable = (await cli(['clusters', demo.spam, '--k', '2', '--seed', '1'])).stdout
  assert.match(clusterTable, /^12 documents in 2 clusters \(spectral, cosine, /)
  const jaccard = await cli(['clusters', demo.spam, '--k', '2', '--seed', '1', '--similarity', 'jaccard', '--json'])
  assert.equal(jaccard.json().similarity, 'jaccard')
  const tooSmall = await cli(['clusters', demo.spam, '--k', '2', '--sample-max-docs', '5'])
  assert.notEqual(tooSmall.code, EXIT.ok)
  assert.match(tooSmall.stderr, /sampleMaxDocs/)
  const c0 = clusters.json().clusters[0]
  assert.match(
    clusterTable,
    new RegExp(
      `\\n0\\s+${c0.size}\\s+${c0.latents.map((l: { latent: number }) => l.latent).join(',')}\\s+${c0.central.join(',')}`
    )
  )
})

test('slices: --where on latent, search, correlations and clusters, --a-where / --b-where on diff (text or JSON); a bad slice exits 3 with the reason', async () => {
  const top = (await cli(['diff', demo.spam, demo.ham, '--limit', '1', '--json'])).json().latents[0]
  const present = `latent ${top.latent}`
  // One dataset, two slices: the latent's documents against the others; the JSON form of a slice says the same.
  const halves = await cli([
    'diff',
    demo.spam,
    demo.spam,
    '--a-where',
    present,
    '--b-where',
    `not ${present}`,
    '--json'
  ])
  assert.equal(halves.code, EXIT.ok, halves.stderr)
  assert.equal(halves.json().a.documents, top.countA)
  assert.equal(halves.json().b[0].documents, 12 - top.countA)
  assert.equal(halves.json().a.where, present)
  const asJson = await cli([
    'diff',
    demo.spam,
    demo.spam,
    '--a-where',
    JSON.stringify({ latent: top.latent }),
    '--b-where',
    JSON.stringify({ not: { latent: top.latent } }),
    '--json'
  ])
  assert.deepEqual(asJson.json().latents, halves.json().latents)
  const halvesTable = await cli([
    'diff',
    demo.spam,
    demo.spam,
    '--a-where',
    present,
    '--b-where',
    `not ${present}`,
    '--limit',
    '1'
  ])
  assert.match(
    halvesTable.stdout,
    new RegExp(
      `^spam \\[${present}\\] \\(${top.countA} documents\\) vs spam \\[not ${present}\\] \\(${12 - top.countA}\\)`
    )
  )
  // One --b-where applies to every b; otherwise one per b.
  const twoB = (
    await cli(['diff', demo.spam, demo.ham, demo.ham, '--b-where', present, '--json', '--limit', '1'])
  ).json()
  assert.deepEqual(
    twoB.b.map((b: { where: string }) => b.where),
    [present, present]
  )
  assert.equal(
    (
      await cli([
        'diff',
        demo.spam,
        demo.ham,
        demo.ham,
        '--b-where',
        present,
        '--b-where',
        present,
        '--b-where',
        present
      ])
    ).code,
    EXIT.usage
  )

  const page = await cli(['latent', String(top.latent), '--dataset', demo.spam, '--where', present, '--json'])
  assert.equal(page.json().documents, top.countA)
  assert.equal(page.json().frequency, 1)
  // The human page lists the slice's strongest documents too.
  const strongest = page.json().sliceStrongest as Array<{ row: number; value: number }>
  assert.ok(strongest.length > 0)
  const human = await cli(['latent', String(top.latent), '--dataset', demo.spam, '--where', present])
  assert.match(
    human.stdout,
    new RegExp(
      `strongest in the slice \\(${strongest.length}\\):\\nrow\\s+id\\s+value\\s+position\\n${strongest[0].row}\\s`
    )
  )
  assert.equal(
    (await cli(['latent', String(top.latent), '--dataset', demo.spam, '--where', `not ${present}`, '--json'])).json()
      .documents,
    0
  )

  const clusters = (await cli(['clusters', demo.spam, '--k', '2', '--seed', '1', '--where', present, '--json'])).json()
  assert.equal(clusters.documents, top.countA)
  assert.equal(clusters.where, present)
  const rows = new Set<number>(clusters.rows)
  const search = (
    await cli(['search', demo.spam, '--latents', String(top.latent), '--where', present, '--json'])
  ).json()
  assert.equal(search.where, present)
  assert.ok(search.results.length > 0)
  for (const r of search.results) assert.ok(rows.has(r.row), `search result row ${r.row} is in the slice`)
  const notIn = (
    await cli(['search', demo.spam, '--latents', String(top.latent), '--where', `not ${present}`, '--json'])
  ).json()
  for (const r of notIn.results) assert.ok(!rows.has(r.row), `search result row ${r.row} is outside the slice`)

  const corr = await cli([
    'correlations',
    demo.spam,
    '--where',
    present,
    '--min-npmi',
    '0',
    '--min-count',
    '2',
    '--max-frequency',
    '1',
    '--json'
  ])
  assert.equal(corr.code, EXIT.ok, corr.stderr)
  assert.equal(corr.json().documents, top.countA)

  // The server's 400 names the fault; the CLI prints it and exits 3 (--json: the problem document).
  const bad = await cli(['diff', demo.spam, demo.ham, '--a-where', 'metadata.group ~ "x"'])
  assert.equal(bad.code, EXIT.refused)
  assert.match(
    bad.stderr,
    /^latentbase diff: 400 Bad Request: invalid query string: aWhere: bad operator "~": use =, .* at character 16\n/
  )
  const badField = await cli(['search', demo.spam, 'click', '--where', 'colour = "red"'])
  assert.equal(badField.code, EXIT.refused)
  assert.match(badField.stderr, /unknown field "colour"/)
  for (const args of [
    ['latent', '3', '--dataset', demo.spam],
    ['correlations', demo.spam],
    ['clusters', demo.spam, '--k', '2']
  ]) {
    const refused = await cli([...args, '--where', '{"latent": -1}', '--json'])
    assert.equal(refused.code, EXIT.refused, args[0])
    assert.match(JSON.parse(refused.stderr).detail, /latent/, args[0])
  }
})

/** A loopback LLM: hypotheses citing the given latent; the judge answers YES where the document contains the quoted word. */
function scriptedAnswer(latent: number) {
  return (req: RecordedRequest): ScriptedReply => {
    const user = userText(req)
    if (/^Latent \d+:/m.test(user))
      return { json: { hypotheses: [{ text: "This response mentions 'click'.", latents: [latent] }] } }
    const word = /Statement: [^'\n]*'([^'\n]+)'/.exec(user)?.[1]
    const doc = /<document>\n([\s\S]*)\n<\/document>/.exec(user)?.[1]
    if (word === undefined || doc === undefined) return { content: 'unsure' }
    return { json: { answer: doc.toLowerCase().includes(word) ? 'YES' : 'NO' } }
  }
}

test('hypotheses and verify: --a-where / --b-where reach the LLM steps (verification samples the slices); --dry-run spends nothing; a bad slice exits 3 before any LLM call', async () => {
  const top = (await cli(['diff', demo.spam, demo.ham, '--limit', '1', '--json'])).json().latents[0]
  const present = `latent ${top.latent}`
  llm.setResponder(scriptedAnswer(top.latent))
  const calls = llm.requests.length
  const sliceArgs = ['--a-where', present, '--b-where', `not ${present}`]
  const dry = await cli(['hypotheses', demo.spam, demo.spam, ...sliceArgs, '--max', '1', '--dry-run'])
  assert.equal(dry.code, EXIT.ok, dry.stderr)
  assert.match(dry.stdout, /^estimate \(nothing spent\): 1 calls to scripted-model, \d+ input and \d+ output tokens/)
  assert.equal(llm.requests.length, calls, 'a dry run calls no LLM')

  const bad = await cli(['hypotheses', demo.spam, demo.spam, '--a-where', present, '--b-where', 'latent -1'])
  assert.equal(bad.code, EXIT.refused)
  assert.match(bad.stderr, /bWhere/)
  const badVerify = await cli(['verify', demo.spam, demo.spam, '--hypothesis', 'x', '--a-where', 'metadata.group ~ 1'])
  assert.equal(badVerify.code, EXIT.refused)
  assert.match(badVerify.stderr, /aWhere.*bad operator "~"/)
  assert.equal(llm.requests.length, calls, 'refused before any LLM call')

  const made = await cli(['hypotheses', demo.spam, demo.spam, ...sliceArgs, '--max', '1'])
  assert.equal(made.code, EXIT.ok, made.stderr)
  assert.match(
    made.stdout,
    new RegExp(
      `^1 hypotheses \\(scripted-model\\)[\\s\\S]*\\n0\\s+This response mentions 'click'\\.\\s+${top.latent}\\n`
    )
  )

  const verified = await cli([
    'verify',
    demo.spam,
    demo.spam,
    '--hypothesis',
    "This response mentions 'click'.",
    ...sliceArgs,
    '--per-dataset',
    '50',
    '--json'
  ])
  assert.equal(verified.code, EXIT.ok, verified.stderr)
  const v = verified.json()
  assert.deepEqual([v.a.where, v.b.where], [present, `not ${present}`])
  assert.deepEqual(
    [v.a.judged, v.b.judged],
    [top.countA, 12 - top.countA],
    'every document of each slice judged, none of the other'
  )
  const clicks = (rows: number[]) =>
    rows.filter(r => demo.documents.spam[r].text.toLowerCase().includes('click')).length
  assert.equal(v.hypotheses[0].yesA, clicks(v.a.rows))
  assert.equal(v.hypotheses[0].yesB, clicks(v.b.rows))
  const verifiedTable = await cli([
    'verify',
    demo.spam,
    demo.spam,
    '--hypothesis',
    "This response mentions 'click'.",
    ...sliceArgs
  ])
  assert.match(
    verifiedTable.stdout,
    new RegExp(`^${demo.spam} \\[${present}\\] \\(${top.countA} judged\\) vs ${demo.spam} \\[not ${present}\\]`)
  )
})

test('exit codes: usage 2, refused 3, not found 4, encoding failed 7, timeout 8, unreachable 6', async () => {
  assert.equal((await cli(['frobnicate'])).code, EXIT.usage)
  assert.equal((await cli(['diff', demo.spam])).code, EXIT.usage)
  assert.equal((await cli(['diff', demo.spam, demo.ham, '--bogus'])).code, EXIT.usage)
  assert.equal((await cli(['latent', '3'])).code, EXIT.usage)
  // A word the command does not take is pointed out, not dropped.
  const extra = await cli(['latent', '3', '4', '--dataset', demo.spam])
  assert.equal(extra.code, EXIT.usage)
  assert.match(extra.stderr, /unexpected argument "4" \(it takes one; options start with --\)/)
  assert.equal((await cli(['datasets', 'list', 'everything'])).code, EXIT.usage)
  const missing = await cli(['datasets', 'create', join(tmp, 'no-such-file.jsonl')])
  assert.equal(missing.code, EXIT.usage)
  assert.match(missing.stderr, /neither a URL/)

  const refused = await cli(['diff', demo.spam, demo.ham, '--limit', '0'])
  assert.equal(refused.code, EXIT.refused)
  assert.match(refused.stderr, /limit/)
  const refusedJson = await cli(['diff', demo.spam, demo.ham, '--limit', '0', '--json'])
  assert.equal(JSON.parse(refusedJson.stderr).code, 'invalid-request', '--json prints the problem document')
  assert.equal((await cli(['latent', '3', '--dataset', 'ds_missing'])).code, EXIT.notFound)

  const failed = await cli(['datasets', 'create', 'file:///nonexistent/latentbase-cli.jsonl', '--wait'])
  assert.equal(failed.code, EXIT.datasetFailed)
  assert.match(failed.stderr, /failed/)
  assert.doesNotMatch(failed.stderr, /--text-field/, 'a missing file is not about fields')
  const wrongPath = join(tmp, 'wrong-field.csv')
  await writeFile(wrongPath, 'id,Review\n1,The soup was cold and the waiter never came back.\n')
  const wrong = await cli(['datasets', 'create', wrongPath, '--wait'])
  assert.equal(wrong.code, EXIT.datasetFailed)
  assert.match(wrong.stderr, /no field "text".*most likely in "Review"/)
  assert.match(wrong.stderr, /textField is --text-field/)
  const timeout = await cli(['datasets', 'create', `file://${join(tmp, 'notes.jsonl')}`, '--wait', '--timeout', '0'])
  assert.equal(timeout.code, EXIT.timeout)

  const unreachable = await cli(['encoders', '--base-url', 'http://127.0.0.1:9'])
  assert.equal(unreachable.code, EXIT.unavailable)
  assert.match(unreachable.stderr, /cannot reach http:\/\/127\.0\.0\.1:9/)
})

test('keys create, check, list and revoke against a server that requires keys (exit 5 when refused)', async () => {
  const dataDir = join(tmp, 'keys')
  const objects = new FsObjectStore(join(dataDir, 'store'))
  const queue = { send: async () => '1' } as unknown as JobQueue<JobMessage>
  const app = createApp({
    objects,
    datasets: new DatasetStore(objects),
    queue,
    encoders: new StaticEncoderCatalog([]),
    mode: 'local',
    tenantOf: () => 'local',
    apiKeys: new ApiKeyStore(objects, 0),
    env: {}
  })
  const server: ServerType = await new Promise(ok => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => ok(s))
  })
  try {
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
    const env = { DATA_DIR: dataDir, LATENTBASE_URL: url }
    const created = await cli(['keys', 'create', '--tenant', 'acme', '--name', 'ci', '--json'], { env })
    assert.equal(created.code, EXIT.ok, created.stderr)
    const { key, hash } = created.json()
    assert.match(key, /^lb_/)
    assert.match((await cli(['keys', 'list'], { env })).stdout, new RegExp(`${hash}\\s+acme\\s+ci`))
    assert.equal((await cli(['keys', 'check'], { env })).code, EXIT.unauthorized)
    assert.equal((await cli(['keys', 'check', '--api-key', key], { env })).code, EXIT.ok)
    assert.equal((await cli(['datasets', 'list'], { env: { ...env, LATENTBASE_API_KEY: key } })).code, EXIT.ok)
    assert.equal((await cli(['keys', 'revoke', hash], { env })).code, EXIT.ok)
    assert.equal((await cli(['keys', 'check', '--api-key', key], { env })).code, EXIT.unauthorized)
    assert.equal((await cli(['keys', 'revoke', 'f'.repeat(64)], { env })).code, EXIT.notFound)
  } finally {
    await new Promise<void>(ok => server.close(() => ok()))
  }
})

test('the bin runs the CLI and exits with its code', async () => {
  const run = promisify(execFile)
  const env = { ...process.env, LATENTBASE_URL: demo.server.url }
  const ok = await run(process.execPath, [BIN, 'datasets', 'list', '--json'], { env })
  assert.ok((JSON.parse(ok.stdout) as Array<{ id: string }>).some(d => d.id === demo.ham))
  const help = await run(process.execPath, [BIN, 'datasets', 'create', '--help'], { env })
  assert.match(help.stdout, /Usage: latentbase datasets create <url\|file>/)
  await assert.rejects(
    run(process.execPath, [BIN, 'datasets', 'get', 'ds_missing'], { env }),
    (err: { code: number; stderr: string }) => err.code === EXIT.notFound && /not found/.test(err.stderr)
  )
})

test('datasets append --wait commits a new version (analyses take id@version); datasets watch sets and removes the drift watch', async () => {
  // Last in the file: it grows the ham dataset the tests above read at 12 documents.
  const file = join(tmp, 'more-ham.jsonl')
  await writeFile(
    file,
    demo.documents.ham
      .slice(0, 4)
      .map((d, i) => JSON.stringify({ id: `more${i}`, text: d.text }))
      .join('\n') + '\n'
  )
  const appended = await cli(['datasets', 'append', demo.ham, file, '--wait'])
  assert.equal(appended.code, EXIT.ok, appended.stderr)
  assert.match(appended.stdout, /version\s+2 \(v1: 12, v2: 4 documents\)/)
  assert.match(appended.stdout, /documents\s+16\n/)
  const pinned = await cli(['diff', demo.spam, `${demo.ham}@1`, '--limit', '1', '--json'])
  assert.equal(pinned.code, EXIT.ok, pinned.stderr)
  assert.deepEqual([pinned.json().b[0].id, pinned.json().b[0].documents], [`${demo.ham}@1`, 12])
  assert.equal((await cli(['diff', demo.spam, demo.ham, '--limit', '1', '--json'])).json().b[0].documents, 16)

  const watched = await cli(['datasets', 'watch', demo.ham, '--against', '1', '--min-difference', '0.2'])
  assert.equal(watched.code, EXIT.ok, watched.stderr)
  assert.match(watched.stdout, /watch\s+against 1, minDifference 0.2, maxQValue 0.05/)
  assert.doesNotMatch((await cli(['datasets', 'watch', demo.ham, '--off'])).stdout, /watch/)
  const bad = await cli(['datasets', 'append', demo.ham])
  assert.equal(bad.code, EXIT.usage)
})

test('--wait says the time left while a dataset runs (shared/src/util/time-left.ts computes it), and not once it is ready', () => {
  const at = (done: number, total: number | null, status = 'running') =>
    ({ status, progress: { documents: { done, total }, tokens: 0 } }) as Parameters<typeof etaOf>[1]
  const first = { at: 0, done: 100 }
  assert.equal(etaOf(first, at(400, 1000), 30_000), ', about 60 s left')
  assert.equal(etaOf(first, at(400, 1000), 1000), '', 'too soon to say')
  assert.equal(etaOf(first, at(1000, 1000, 'ready'), 30_000), '')
})
