/**
 * @module Browser tests of the web interface: real headless Chromium (Debian's, driven by playwright-core) against the
 * local server with two small encoded datasets. Every view loads without console errors; the diff chart shows the
 * latents that differ most (checked against frequencies counted here from the documents); a latent opens with its tokens
 * shaded; search answers; a dropped file becomes a ready dataset; a dry run shows the cost before anything is spent; a
 * server that requires keys explains its 401 and works once a key is saved; a batch appended from the datasets view
 * becomes a version that diffs against the one before; slices (where fields) change the documents
 * analysed, and a bad one shows the API's reason under its field. Screenshots go to .data/screenshots/.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { ApiKeyStore } from '@latentbase/shared/auth/api-keys'
import { FsObjectStore } from '@latentbase/shared/store/fs-store'
import { DEMO_ENCODER_DIR, loadEncoders } from '@latentbase/gpu-worker/registry'
import type { LoadedEncoder } from '@latentbase/gpu-worker/encode/runtime'
import { startLocal, type LocalServer } from '../../api/src/local-server.ts'
import { ensureWebBuild } from '../build.ts'
import { fixtureDocuments, getWithRetry, startFixture, waitReady, type Fixture } from './fixture.ts'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
/** A text for the Text view: words the cooking fixture documents use, and some they do not. */
const TEXT_SAMPLE = 'Simmer the garlic in olive oil, then bake the bread for an hour. The invoice is attached.'
const SHOTS = join(import.meta.dirname, '..', '..', '.data', 'screenshots')
/** The flags a closed network needs: without them Chromium keeps calling Google's hosts. */
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
]

/**
 * How long any page wait may take (selectors, navigation, load state): only a wait, not a speed goal. Playwright's
 * 30 s default was too short for an analysis job or the first render on a machine busy with other test files.
 */
const WAIT_MS = 180_000

/**
 * The forms of the analysis views, by their own labels. Going from one view to another is a hash change, rendered a
 * moment later: a bare `main form` can still find the previous view's form, and a click then submits that one.
 */
const CLUSTERS_FORM = 'main form[aria-label="clustering options"]'
const CORRELATIONS_FORM = 'main form[aria-label="correlation options"]'
const HYPOTHESES_FORM = 'main form[aria-label="hypotheses options"]'

let dataDir: string
let fx: Fixture
let browser: Browser
let encoders: Map<string, LoadedEncoder>
/** A stand-in LLM endpoint that only counts requests: dry runs must not reach it. */
let llm: Server
let llmRequests = 0
const savedEnv = { ...process.env }

before(async () => {
  assert.ok(
    existsSync(CHROMIUM),
    `no Chromium at ${CHROMIUM}: apt-get install -y chromium (as .ci/run does), or set CHROMIUM_PATH`
  )
  await ensureWebBuild({ log: () => {} })
  await mkdir(SHOTS, { recursive: true })
  llm = createServer((_req, res) => {
    llmRequests++
    res.writeHead(500).end()
  })
  await new Promise<void>(ok => llm.listen(0, '127.0.0.1', ok))
  // Configured, so dry runs answer; prices, so the estimate states a cost.
  Object.assign(process.env, {
    LLM_BASE_URL: `http://127.0.0.1:${(llm.address() as { port: number }).port}/v1`,
    LLM_MODEL: 'fixture-model',
    LLM_PRICE_IN: '1',
    LLM_PRICE_OUT: '2'
  })
  dataDir = await mkdtemp(join(tmpdir(), 'latentbase-web-'))
  encoders = await loadEncoders([DEMO_ENCODER_DIR], () => {})
  fx = await startFixture(dataDir, { encoders })
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS })
})

after(async () => {
  await browser?.close()
  await fx?.server.close()
  llm?.close()
  process.env = savedEnv
  await rm(dataDir, { recursive: true, force: true })
})

/** A page that records console errors and uncaught exceptions. */
async function openPage(width = 1280, height = 900): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width, height } })
  page.setDefaultTimeout(WAIT_MS)
  page.setDefaultNavigationTimeout(WAIT_MS)
  const errors: string[] = []
  page.on('console', m => {
    if (m.type() === 'error') errors.push(m.text())
  })
  page.on('pageerror', e => errors.push(String(e)))
  return { page, errors }
}

/** Waits for `selector`; on a timeout the error carries what the page shows instead (an analysis error, a job's status). */
async function waitShowing(page: Page, selector: string): Promise<void> {
  try {
    await page.waitForSelector(selector)
  } catch (err) {
    const shown = await page
      .locator('main')
      .innerText({ timeout: 5_000 })
      .catch(() => '(unreadable)')
    throw new Error(`${(err as Error).message}\nthe page shows:\n${shown}`, { cause: err })
  }
}

const json = async <T>(path: string): Promise<T> => (await getWithRetry(fx.server.url + path)).json() as Promise<T>

test('every view loads without console errors (screenshots of each, wide and narrow)', async () => {
  const { a, b } = fx
  const views: Array<[string, string, string]> = [
    ['datasets', '#/datasets', `[data-id="${a}"][data-status=ready]`],
    ['diff', `#/diff?a=${a}&b=${b}&limit=20`, '[data-testid=diff-chart] [data-latent]'],
    [
      'latent',
      `#/latent/${(await json<{ latents: Array<{ latent: number }> }>(`/diff?a=${a}&b=${b}&limit=1`)).latents[0].latent}?dataset=${a}`,
      'mark.tok'
    ],
    ['document', `#/document/${a}/0`, '[data-testid=doc-latents] tbody tr'],
    ['latents', `#/latents?dataset=${a}`, '[data-testid=latents] tbody tr'],
    ['search', `#/search?dataset=${a}&q=bread%20flour`, '[data-testid=search-results] li'],
    ['text', `#/text?dataset=${a}&text=${encodeURIComponent(TEXT_SAMPLE)}`, '[data-testid=text-latents] tbody tr'],
    ['correlations', `#/correlations?dataset=${a}`, CORRELATIONS_FORM],
    ['clusters', `#/clusters?dataset=${a}`, CLUSTERS_FORM],
    ['hypotheses', `#/hypotheses?a=${a}&b=${b}`, HYPOTHESES_FORM]
  ]
  for (const width of [1280, 420]) {
    const { page, errors } = await openPage(width)
    for (const [name, hash, ready] of views) {
      await page.goto(`${fx.server.url}/${hash}`)
      await page.waitForSelector(ready)
      await page.waitForLoadState('networkidle')
      assert.equal(await page.locator('h1').count(), 1, `${name}: one page title`)
      // Readable in a narrow window: nothing wider than the viewport but the scrolling tables.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
      assert.ok(overflow <= 1, `${name} at ${width}px: the page is ${overflow}px wider than the window`)
      await page.screenshot({ path: join(SHOTS, `${name}-${width}.png`), fullPage: true })
    }
    assert.deepEqual(errors, [], `console errors at ${width}px`)
    await page.close()
  }
})

test('the diff chart shows the latents that differ most, as counted here from the documents of A and B', async () => {
  const { a, b } = fx
  // Presence per document through the public API (each document's pooled latents), counted independently of /diff.
  const presence = async (id: string) => {
    const n = (await json<{ stats: { documents: number } }>(`/datasets/${id}`)).stats.documents
    const counts = new Map<number, number>()
    for (let row = 0; row < n; row++) {
      for (const l of (
        await json<{ latents: Array<{ latent: number; value: number }> }>(`/datasets/${id}/documents/${row}`)
      ).latents) {
        if (l.value > 0) counts.set(l.latent, (counts.get(l.latent) ?? 0) + 1)
      }
    }
    return { n, counts }
  }
  const [pa, pb] = await Promise.all([presence(a), presence(b)])
  const difference = (latent: number) => (pa.counts.get(latent) ?? 0) / pa.n - (pb.counts.get(latent) ?? 0) / pb.n
  const expected = [...new Set([...pa.counts.keys(), ...pb.counts.keys()])].map(difference).sort((x, y) => y - x)

  const { page, errors } = await openPage()
  await page.goto(`${fx.server.url}/#/diff?a=${a}&b=${b}&limit=10`)
  await page.waitForSelector('[data-testid=diff-chart] [data-latent]')
  const shown = await page
    .locator('[data-testid=diff-chart] [data-latent]')
    .evaluateAll(els => els.map(e => Number(e.getAttribute('data-latent'))))
  assert.equal(shown.length, 10)
  shown.forEach((latent, i) => {
    assert.ok(
      Math.abs(difference(latent) - expected[i]) < 1e-9,
      `row ${i}: latent ${latent} differs by ${difference(latent)}, the ${i + 1}th largest difference is ${expected[i]}`
    )
  })
  assert.ok(expected[0] > 0.5, 'cooking and football share few words: the top latent is far more frequent in A')
  // Labels with their source, and q-values, are on the chart.
  const first = page.locator('[data-testid=diff-chart] [data-latent]').first()
  const answer = (await (await fetch(`${fx.server.url}/diff?a=${a}&b=${b}&limit=10`)).json()) as {
    latents: { latent: number; labelSource?: string | null }[]
  }
  const source = answer.latents.find(l => l.latent === shown[0])?.labelSource
  assert.ok(source, 'the demo encoder labels its latents, with a source')
  const firstText = (await first.textContent()) ?? ''
  assert.ok(
    firstText.startsWith(`#${shown[0]} `) && firstText.includes(source),
    `the first row names latent ${shown[0]} and its label source ${source}: ${firstText}`
  )
  assert.match((await first.locator('text.q').textContent()) ?? '', /^\d/)
  // CSV export: a download with a header and one line per latent.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Export CSV' }).click()
  ])
  const csv = await (await import('node:fs/promises')).readFile(await download.path(), 'utf8')
  const lines = csv.trim().split('\n')
  assert.match(lines[0], /^latent,label,labelSource,peakToken,peakWindow,frequencyA,frequencyB/)
  assert.equal(lines.length, 11)
  assert.equal(Number(lines[1].split(',')[0]), shown[0])
  assert.deepEqual(errors, [])
  await page.close()
})

test('a latent opens from the chart (by keyboard) with its tokens shaded by activation; a document opens from there with its own latents', async () => {
  const { a, b } = fx
  const { page, errors } = await openPage()
  await page.goto(`${fx.server.url}/#/diff?a=${a}&b=${b}&limit=5`)
  const row = page.locator('[data-testid=diff-chart] [data-latent]').first()
  const latent = Number(await row.getAttribute('data-latent'))
  await row.focus()
  await page.keyboard.press('Enter')
  await page.waitForSelector('mark.tok')
  assert.match(page.url(), new RegExp(`#/latent/${latent}\\?dataset=${a}`))
  const marks = page.locator('[data-testid=examples] mark.tok')
  assert.ok((await marks.count()) > 0, 'activating tokens are shaded')
  const acts = await marks.evaluateAll(els => els.map(e => Number(e.getAttribute('data-act'))))
  assert.ok(acts.every(x => x > 0))
  // The page's numbers are the API's: the strongest shaded token is the latent's top example value.
  const api = await json<{
    topExamples: Array<{ value: number; activations: number[]; tokens: string[] }>
    frequency: number
  }>(`/latents/${latent}?dataset=${a}&examples=20`)
  assert.ok(Math.abs(Math.max(...acts) - api.topExamples[0].value) < 1e-3)
  await marks.first().hover()
  assert.ok(await marks.first().locator('.tip').isVisible(), 'hover shows the activation')
  // Frequency in each dataset (both fixture datasets listed).
  await page.waitForSelector('[data-testid=frequencies] tr >> nth=1')
  assert.equal(await page.locator('[data-testid=frequencies] tr').count(), 2)
  // Documents across its values, on request: the API's intervals and documents, each window shaded.
  const spread = await json<{ intervals: Array<{ documents: number; examples: Array<{ row: number }> }> }>(
    `/latents/${latent}/intervals?dataset=${a}&intervals=5&perInterval=3&seed=0`
  )
  await page.click('[data-testid=intervals] button')
  await page.waitForSelector('[data-testid=intervals] section.interval')
  assert.equal(await page.locator('[data-testid=intervals] section.interval').count(), spread.intervals.length)
  assert.deepEqual(
    await page
      .locator('[data-testid=intervals] section.interval li a')
      .evaluateAll(links => links.map(l => Number(/\/(\d+)(\?|$)/.exec(l.getAttribute('href') ?? '')![1]))),
    spread.intervals.flatMap(i => i.examples.map(e => e.row))
  )
  assert.ok((await page.locator('[data-testid=intervals] mark.tok').count()) > 0, 'the windows are shaded')
  await page.screenshot({ path: join(SHOTS, 'latent-intervals-1280.png'), fullPage: true })
  // On your text: the top example's window, encoded again on its own, shaded by this latent as the API says.
  const window = api.topExamples[0].tokens.join('')
  const own = await json<{ latents: Array<{ max: number; position: number }> }>(
    `/datasets/${a}/activations?text=${encodeURIComponent(window)}&latents=${latent}`
  )
  await page.fill('[data-testid=on-your-text] textarea', window)
  await page.click('[data-testid=on-your-text] button[type=submit]')
  await page.waitForSelector('[data-testid=on-your-text] [data-testid=shaded-by]')
  assert.match(
    await page.locator('[data-testid=on-your-text] [data-testid=shaded-by]').innerText(),
    own.latents[0].position < 0 ? /does not fire/ : new RegExp(`latent ${latent}.*at token ${own.latents[0].position}`)
  )
  const ownActs = await page
    .locator('[data-testid=on-your-text] .tok')
    .evaluateAll(els => els.map(e => Number(e.getAttribute('data-act') ?? 0)))
  assert.ok(Math.abs(Math.max(...ownActs) - own.latents[0].max) < 1e-6)
  // The example's document, with its own latents linking back.
  await page.locator('[data-testid=examples] a').first().click()
  await page.waitForSelector('[data-testid=doc-latents] tbody tr')
  // The strongest 25 first; all of them on request; distinctive first (strong here, rare in the dataset) on request.
  const openedRow = Number(/#\/document\/[^/]+\/(\d+)/.exec(page.url())![1])
  const docApi = await json<{
    latents: Array<{ latent: number; value: number; frequency: number; position: number }>
  }>(`/datasets/${a}/documents/${openedRow}`)
  // Opened from the latent's example, the text is shaded by that latent, token by token, peaking at its stored value.
  assert.match(page.url(), new RegExp(`\\?latent=${latent}$`))
  await page.waitForSelector('[data-testid=shaded-text] mark.tok')
  await page.screenshot({ path: join(SHOTS, 'document-shaded-1280.png'), fullPage: true })
  const shadedActs = await page
    .locator('[data-testid=shaded-text] .tok')
    .evaluateAll(els => els.map(e => Number(e.getAttribute('data-act') ?? 0)))
  const stored = docApi.latents.find(l => l.latent === latent)!
  const peakAt = shadedActs.indexOf(Math.max(...shadedActs))
  assert.ok(Math.abs(shadedActs[peakAt] - stored.value) < 1e-3, `${shadedActs[peakAt]} vs ${stored.value}`)
  assert.equal(peakAt, stored.position, 'the strongest shaded token is where the latent peaks')
  assert.match(
    await page.locator('[data-testid=shaded-by]').innerText(),
    new RegExp(`latent ${latent}.*at token ${stored.position}`)
  )
  // Another latent's token number shades by that one; "Plain text" shows the text as it was.
  const second = docApi.latents.find(l => l.latent !== latent)!
  await page.locator(`[data-testid=doc-latents] tr[data-latent="${second.latent}"] button`).click()
  await page.waitForURL(new RegExp(`\\?latent=${second.latent}$`))
  await page.waitForSelector(`[data-testid=doc-latents] tr[data-latent="${second.latent}"] button[aria-pressed=true]`)
  await page.waitForFunction(
    n => document.querySelector('[data-testid=shaded-by]')?.textContent?.includes(`latent ${n}`),
    second.latent
  )
  await page.getByRole('button', { name: 'Plain text' }).click()
  await page.waitForSelector('pre.doc-text')
  assert.ok(!page.url().includes('latent='))
  const listed = () =>
    page
      .locator('[data-testid=doc-latents] tbody tr')
      .evaluateAll(rows => rows.map(r => Number(r.getAttribute('data-latent'))))
  assert.deepEqual(
    await listed(),
    docApi.latents.slice(0, 25).map(l => l.latent)
  )
  if (docApi.latents.length > 25) await page.getByRole('button', { name: `Show all ${docApi.latents.length}` }).click()
  assert.equal((await listed()).length, docApi.latents.length)
  assert.ok(
    (await page.locator(`[data-testid=doc-latents] a[href^="#/latent/${latent}?"]`).count()) === 1,
    'the document lists the latent it was opened from'
  )
  await page.selectOption('select[name=latentOrder]', 'distinctive')
  const score = (l: { value: number; frequency: number }) => l.value * Math.log(1 / l.frequency)
  assert.deepEqual(
    await listed(),
    [...docApi.latents].sort((x, y) => score(y) - score(x) || x.latent - y.latent).map(l => l.latent)
  )
  // Documents like it, in the API's order; one opens, with its own neighbours.
  const docRow = Number(/#\/document\/[^/]+\/(\d+)/.exec(page.url())![1])
  const like = await json<{ results: Array<{ row: number }> }>(`/datasets/${a}/documents/${docRow}/similar?limit=10`)
  assert.ok(like.results.length > 0, 'the fixture document has neighbours')
  await page.waitForSelector('[data-testid=similar-documents] tbody tr')
  assert.deepEqual(
    await page
      .locator('[data-testid=similar-documents] tbody tr')
      .evaluateAll(rows => rows.map(r => Number(r.getAttribute('data-row')))),
    like.results.map(r => r.row)
  )
  await page.locator('[data-testid=similar-documents] tbody tr >> nth=0 >> td >> nth=0 >> a').click()
  await page.waitForURL(new RegExp(`#/document/${a}/${like.results[0].row}$`))
  await page.waitForSelector('[data-testid=similar-documents] tbody tr')
  // The same in the other dataset (encoded alike): its documents, linked to it.
  const inB = await json<{ results: Array<{ row: number }> }>(
    `/datasets/${a}/documents/${like.results[0].row}/similar?limit=10&in=${b}`
  )
  await page.selectOption('select[name=lookIn]', b)
  await page.waitForSelector(`[data-testid=similar-documents] a[href="#/document/${b}/${inB.results[0].row}"]`)
  assert.deepEqual(
    await page
      .locator('[data-testid=similar-documents] tbody tr')
      .evaluateAll(rows => rows.map(r => Number(r.getAttribute('data-row')))),
    inB.results.map(r => r.row)
  )
  assert.deepEqual(errors, [])
  await page.close()
})

test("a text's strongest latents as the API lists them; a token number shades the text by that latent, peaking there", async () => {
  const { a } = fx
  const { page, errors } = await openPage()
  await page.goto(`${fx.server.url}/#/text?dataset=${a}`)
  await page.waitForSelector(`#text-dataset option[value="${a}"]`, { state: 'attached' })
  await page.fill('textarea[name=text]', TEXT_SAMPLE)
  await page.getByRole('button', { name: 'Encode' }).click()
  await page.waitForSelector('[data-testid=text-latents] tbody tr')
  const api = await json<{ present: number; latents: Array<{ latent: number; position: number; max: number }> }>(
    `/datasets/${a}/activations?text=${encodeURIComponent(TEXT_SAMPLE)}&top=20`
  )
  const listed = await page
    .locator('[data-testid=text-latents] tbody tr')
    .evaluateAll(rows => rows.map(r => Number(r.getAttribute('data-latent'))))
  assert.deepEqual(
    listed,
    api.latents.map(l => l.latent)
  )
  assert.match(page.url(), /#\/text\?dataset=.+&text=Simmer/, 'the text is in the URL, so the result can be linked')
  const shadedPeak = async () => {
    const acts = await page
      .locator('[data-testid=text-shaded] .tok')
      .evaluateAll(els => els.map(e => Number(e.getAttribute('data-act') ?? 0)))
    return acts.indexOf(Math.max(...acts))
  }
  // The strongest latent first; another's token number shades by it, peaking at its position.
  assert.match(
    await page.locator('[data-testid=shaded-by]').innerText(),
    new RegExp(`latent ${api.latents[0].latent}\\b`)
  )
  assert.equal(await shadedPeak(), api.latents[0].position)
  const third = api.latents[2]
  await page.locator(`[data-testid=text-latents] tr[data-latent="${third.latent}"] button`).click()
  await page.waitForSelector(`[data-testid=text-latents] tr[data-latent="${third.latent}"] button[aria-pressed=true]`)
  assert.match(await page.locator('[data-testid=shaded-by]').innerText(), new RegExp(`latent ${third.latent}\\b`))
  assert.equal(await shadedPeak(), third.position)
  // Distinctive first: the API's order with order=distinctive, and the URL says so.
  const distinct = await json<{ latents: Array<{ latent: number }> }>(
    `/datasets/${a}/activations?text=${encodeURIComponent(TEXT_SAMPLE)}&top=20&order=distinctive`
  )
  await page.selectOption('select[name=order]', 'distinctive')
  await page.waitForFunction(
    want =>
      [...document.querySelectorAll('[data-testid=text-latents] tbody tr')]
        .map(r => r.getAttribute('data-latent'))
        .join(',') === want,
    distinct.latents.map(l => l.latent).join(',')
  )
  assert.match(page.url(), /order=distinctive/)
  // A chat: the assistant's turn is pooled (the fixture's datasets pool it), the user's is shown unshaded.
  await page.check('input[name=chat]')
  await page.fill(
    'textarea[name=text]',
    JSON.stringify([
      { role: 'user', content: 'What should I cook?' },
      { role: 'assistant', content: 'Simmer the garlic in olive oil.' }
    ])
  )
  await page.getByRole('button', { name: 'Encode' }).click()
  await page.waitForURL(/format=chat/)
  await page.waitForFunction(() => document.querySelector('[data-testid=text-shaded]')?.textContent?.includes('cook'))
  const marked = await page.locator('[data-testid=text-shaded] mark.tok').allTextContents()
  assert.ok(marked.length > 0 && !marked.join('').includes('cook'), marked.join('|'))
  assert.deepEqual(errors, [])
  await page.close()
})

test('search returns results with the used latents', async () => {
  const { page, errors } = await openPage()
  await page.goto(`${fx.server.url}/#/search?dataset=${fx.a}&q=bread%20oven%20flour`)
  await page.waitForSelector('[data-testid=search-results] li')
  assert.ok((await page.locator('[data-testid=search-results] li').count()) > 0)
  assert.ok((await page.locator('[data-testid=search-latents] tbody tr').count()) > 0)
  await page.waitForSelector('[data-testid=search-results] mark.hl')
  // Each hit says which latents made its score, and opens its document shaded by the first of them.
  const sae = await json<{ results: Array<{ row: number; latents: Array<{ latent: number }> }> }>(
    `/search?dataset=${fx.a}&q=bread%20oven%20flour`
  )
  const firstHit = page.locator('[data-testid=search-results] li').first()
  assert.equal(
    await firstHit.locator('.ex-head a').getAttribute('href'),
    `#/document/${fx.a}/${sae.results[0].row}?latent=${sae.results[0].latents[0].latent}`
  )
  assert.deepEqual(
    await firstHit
      .locator('.hit-latents a')
      .evaluateAll(links => links.map(l => Number(/#\/latent\/(\d+)/.exec(l.getAttribute('href') ?? '')![1]))),
    sae.results[0].latents.map(l => l.latent)
  )
  // bm25 too, from the form (whose required dataset select needs the datasets list).
  await page.waitForSelector(`main form option[value="${fx.a}"]`, { state: 'attached' })
  await page.selectOption('select[name=method]', 'bm25')
  await page.click('main form button[type=submit]')
  await page.waitForFunction(() => document.querySelector('[data-testid=search-latents] tbody')?.children.length === 0)
  assert.match((await page.locator('[data-testid=search-results] li').first().textContent()) ?? '', /bread|oven|flour/i)
  // example: the query encoded by the server; the API's documents in its order, and the latents they share.
  const text = 'Knead the dough, then bake the bread.'
  const like = await json<{ results: Array<{ row: number }> }>(
    `/datasets/${fx.a}/similar?text=${encodeURIComponent(text)}&limit=20`
  )
  await page.fill('input[name=q]', text)
  await page.selectOption('select[name=method]', 'example')
  await page.click('main form button[type=submit]')
  await page.waitForSelector('text=documents most like the query')
  assert.deepEqual(
    await page
      .locator('[data-testid=search-results] li a')
      .evaluateAll(links => links.map(l => Number(/\/(\d+)(\?|$)/.exec(l.getAttribute('href') ?? '')![1]))),
    like.results.map(r => r.row)
  )
  assert.ok((await page.locator('[data-testid=search-latents] tbody tr').count()) > 0)
  assert.deepEqual(errors, [])
  await page.close()
})

test('a dropped file is uploaded and becomes a ready dataset', async () => {
  const { page, errors } = await openPage()
  await page.goto(`${fx.server.url}/#/datasets`)
  await page.getByRole('tab', { name: 'From a file' }).click()
  const jsonl =
    fixtureDocuments('cooking', 12, 7)
      .map(d => JSON.stringify({ id: d.id, body: d.text, topic: d.metadata.topic }))
      .join('\n') +
    // Two records the worker skips; the row says which and why.
    '\n{"id": "blank", "body": "  ", "topic": "cooking"}\n{"id": "number", "body": 42, "topic": "cooking"}\n'
  const dataTransfer = await page.evaluateHandle(text => {
    const dt = new DataTransfer()
    dt.items.add(new File([text], 'dropped.jsonl', { type: 'application/x-ndjson' }))
    return dt
  }, jsonl)
  await page.dispatchEvent('[data-testid=dropzone]', 'drop', { dataTransfer })
  await page.waitForSelector('[data-testid=dropzone] >> text=dropped.jsonl')
  await page.fill('input[name=textField]', 'body')
  await page.fill('input[name=idField]', 'id')
  // A sample at least as large as the file keeps every document; the spec says what was asked.
  await page.fill('input[name=maxDocuments]', '12')
  await page.fill('input[name=sampleSeed]', '5')
  await page.fill('input[name=metadataFields]', 'topic')
  await page.click('main form button[type=submit]')
  await page.waitForSelector('[role=status] >> text=Queued dropped.jsonl')
  const row = page.locator('tr', { hasText: 'dropped.jsonl' })
  // While it encodes, the row shows a live progress bar (polled every second), then the ready badge.
  await row.locator('[role=progressbar]').waitFor()
  await page.screenshot({ path: join(SHOTS, 'datasets-progress-1280.png'), fullPage: true })
  await row.locator('.badge.ready').waitFor()
  const id = await row.getAttribute('data-id')
  const d = await json<{
    stats: { documents: number }
    source: { url: string; maxDocuments?: number; sampleSeed?: number }
  }>(`/datasets/${id}`)
  assert.equal(d.stats.documents, 12)
  assert.equal(
    await row.locator(`[data-testid=intake-${id}]`).textContent(),
    '2 records skipped (empty-text: 1, text-not-a-string: 1)'
  )
  assert.deepEqual([d.source.maxDocuments, d.source.sampleSeed], [12, 5])
  assert.match(d.source.url, /^upload:\/\/up_/)
  assert.equal(
    (await json<{ id: string; metadata: { topic: string } }>(`/datasets/${id}/documents/0`)).metadata.topic,
    'cooking'
  )
  assert.deepEqual(errors, [])
  await page.close()
})

test('latents: opened from a dataset, most frequent first, pages on, a label query ranks, a row opens its page', async () => {
  const { page, errors } = await openPage()
  await page.goto(`${fx.server.url}/#/datasets`)
  await page.click(`[data-id="${fx.a}"] a:text-is("Latents")`)
  await waitShowing(page, '[data-testid=latents] tbody tr')
  const api = await json<{ total: number; latents: Array<{ latent: number }> }>(`/latents?dataset=${fx.a}&limit=50`)
  const shown = await page
    .locator('[data-testid=latents] tbody tr')
    .evaluateAll(rows => rows.map(r => Number(r.getAttribute('data-latent'))))
  assert.deepEqual(
    shown,
    api.latents.map(l => l.latent)
  )
  if (api.total > 50) {
    await page.click('main button:text-is("Next")')
    await page.waitForFunction(
      n => document.querySelector('[data-testid=latents] tbody tr')?.getAttribute('data-latent') !== n,
      String(shown[0])
    )
  }
  // Another order: rarest first, as the API lists it.
  await page.selectOption('main form select[name=sort]', 'rare')
  await page.click('main form button[type=submit]')
  await page.waitForSelector('main p:has-text("rarest first")')
  const rare = await json<{ latents: Array<{ latent: number }> }>(`/latents?dataset=${fx.a}&limit=50&sort=rare`)
  assert.deepEqual(
    await page
      .locator('[data-testid=latents] tbody tr')
      .evaluateAll(rows => rows.map(r => Number(r.getAttribute('data-latent')))),
    rare.latents.map(l => l.latent)
  )
  await page.fill('main form input[type=search]', 'bread flour')
  await page.click('main form button[type=submit]')
  // The page's intro also says "closest to", so wait for the answer's own line, which quotes the words.
  await page.waitForSelector('main p:has-text(\'closest to "bread flour"\')')
  assert.equal(await page.locator('[data-testid=latents] thead th:text-is("Similarity")').count(), 1)
  const first = page.locator('[data-testid=latents] tbody tr >> nth=0')
  const latent = await first.getAttribute('data-latent')
  await first.locator('a.latent').click()
  await page.waitForURL(new RegExp(`#/latent/${latent}\\?dataset=${fx.a}`))
  // From the latent's page, the latents that fire with it: a sliced list by NPMI, as the API ranks it.
  await page.click('[data-testid=fires-with]')
  await page.waitForSelector('main p:has-text("most tied to the slice first")')
  const tied = await json<{ latents: Array<{ latent: number; npmi: number }> }>(
    `/latents?dataset=${fx.a}&limit=50&sort=npmi&where=${encodeURIComponent(`latent ${latent}`)}`
  )
  assert.equal(tied.latents[0].npmi, 1)
  assert.deepEqual(
    await page
      .locator('[data-testid=latents] tbody tr')
      .evaluateAll(rows => rows.map(r => Number(r.getAttribute('data-latent')))),
    tied.latents.map(l => l.latent)
  )
  assert.deepEqual(errors, [])
  await page.close()
})

test('clusters run as an analysis job and draw a map; correlations list pairs; hypotheses show the dry-run cost first, spending nothing', async () => {
  const { page, errors } = await openPage()
  await page.goto(`${fx.server.url}/#/clusters?dataset=${fx.a}`)
  // The dataset select is required: until the datasets list has loaded it holds no option for A, and the browser's
  // form validation silently refuses the submit (what made this test fail under load).
  await page.waitForSelector(`${CLUSTERS_FORM} option[value="${fx.a}"]`, { state: 'attached' })
  await page.fill(`${CLUSTERS_FORM} input[type=number] >> nth=0`, '3')
  await page.click(`${CLUSTERS_FORM} button[type=submit]`)
  await waitShowing(page, '[data-testid=cluster-map] circle')
  assert.equal(await page.locator('[data-testid=cluster-map] circle').count(), 32)
  assert.equal(await page.locator('[data-testid=clusters] tbody tr').count(), 3)
  assert.match((await page.locator('main form [role=status]').textContent()) ?? '', /Analysis job aj_\w+ done/)
  await page.screenshot({ path: join(SHOTS, 'clusters-result-1280.png'), fullPage: true })

  await page.goto(`${fx.server.url}/#/correlations?dataset=${fx.a}`)
  await page.waitForSelector(`${CORRELATIONS_FORM} option[value="${fx.a}"]`, { state: 'attached' })
  await page.click(`${CORRELATIONS_FORM} button[type=submit]`)
  await waitShowing(page, '[data-testid=correlations] tbody tr')
  await page.screenshot({ path: join(SHOTS, 'correlations-result-1280.png'), fullPage: true })
  // A pair's count opens the documents where both fire: a search by the two latents within that slice.
  const both = page.locator('[data-testid=correlations] tbody tr').first().locator('td.num a')
  const count = Number(await both.textContent())
  await both.click()
  await page.waitForURL(/#\/search\?/)
  const url = new URL(page.url().replace('#/', ''))
  const pair = url.searchParams.get('latents')!
  assert.match(pair, /^\d+,\d+$/)
  await page.waitForSelector('[data-testid=search-results] li')
  const bothApi = await json<{ sliceDocuments: number; results: Array<{ row: number }> }>(
    `/search?${new URLSearchParams({ dataset: fx.a, latents: pair, where: url.searchParams.get('where')!, limit: '20' })}`
  )
  assert.equal(bothApi.sliceDocuments, count, 'the slice is the documents the pair counts')
  assert.deepEqual(
    await page
      .locator('[data-testid=search-results] li')
      .evaluateAll(items => items.map(li => Number(li.getAttribute('data-row')))),
    bothApi.results.map(r => r.row)
  )

  await page.goto(`${fx.server.url}/#/hypotheses?a=${fx.a}&b=${fx.b}`)
  await page.waitForSelector('#hyp-b option >> nth=1', { state: 'attached' })
  await page.click(`${HYPOTHESES_FORM} button[type=submit]`)
  const estimate = page.locator('[data-testid=estimate]')
  await estimate.waitFor()
  assert.match(
    (await estimate.textContent()) ?? '',
    /nothing spent yet.*LLM calls to fixture-model.*cost \d+\.\d{4} USD/
  )
  assert.ok(await estimate.getByRole('button', { name: /Generate \(spend\)/ }).isVisible())
  assert.equal(llmRequests, 0, 'the dry run did not call the LLM')
  await page.screenshot({ path: join(SHOTS, 'hypotheses-estimate-1280.png'), fullPage: true })
  assert.deepEqual(errors, [])
  await page.close()
})

test('a dataset the URL names but the list lacks stays selected: submitting says why (404) instead of nothing', async () => {
  const { page } = await openPage()
  await page.goto(`${fx.server.url}/#/correlations?dataset=ds_nosuchdataset`)
  assert.equal(await page.locator(`${CORRELATIONS_FORM} select`).first().inputValue(), 'ds_nosuchdataset')
  await page.click(`${CORRELATIONS_FORM} button[type=submit]`)
  const alert = page.locator('main [role=alert]')
  await alert.waitFor()
  assert.match((await alert.textContent()) ?? '', /404/)
  await page.close()
})

test("slices: a where field per diff side changes the document counts (two slices of one dataset), a bad slice shows the API's reason under its field; search and latent pages take one too", async () => {
  const { a } = fx
  const docs = fixtureDocuments('cooking', 32, 1)
  const rainy = docs.filter(d => d.metadata.weather).length
  assert.ok(rainy > 0 && rainy < docs.length)
  const { page, errors } = await openPage()
  await page.goto(`${fx.server.url}/#/diff`)
  await page.waitForSelector(`#diff-a option[value="${a}"]`, { state: 'attached' })
  await page.selectOption('#diff-a', a)
  // A's facets are offered as slices to pick, each with its documents.
  const rainyOption = page.locator('[data-testid=aWhere-facets] option[value="metadata.weather = true"]')
  await rainyOption.waitFor({ state: 'attached' })
  assert.equal(await rainyOption.textContent(), `${rainy} documents`)
  await page.fill('input[name=aWhere]', 'metadata.weather = true')
  await page.fill('input[name=bWhere]', 'not metadata.weather = true')
  // With a slice, A itself can be a B: two parts of one dataset.
  await page.check(`[data-testid=diff-b] input[value="${a}"]`)
  // An empty B where would be the rest of A's dataset: the field says so.
  assert.match((await page.getAttribute('input[name=bWhere]', 'placeholder')) ?? '', /the rest of A/)
  await page.click('main form button[type=submit]')
  const sides = page.locator('[data-testid=diff-sides]')
  await sides.waitFor()
  assert.equal(
    await sides.textContent(),
    `cooking [metadata.weather = true] (${rainy} docs) vs cooking [not metadata.weather = true] (${docs.length - rainy})`
  )
  const hash = new URLSearchParams((await page.evaluate(() => location.hash)).split('?')[1])
  assert.equal(hash.get('aWhere'), 'metadata.weather = true', 'the slice is kept in the URL')
  await page.screenshot({ path: join(SHOTS, 'diff-slices-1280.png'), fullPage: true })
  // Reloading the link gives the same comparison.
  await page.reload()
  await page.locator('[data-testid=diff-sides]').waitFor()
  assert.match((await page.locator('[data-testid=diff-sides]').textContent()) ?? '', new RegExp(`\\(${rainy} docs\\)`))
  const slicedSides = await page.locator('[data-testid=diff-sides]').textContent()

  // The datasets page lists A's metadata values; one value's "diff against the rest" is the same comparison.
  await page.goto(`${fx.server.url}/#/datasets`)
  await page.click(`tr[data-id="${a}"] button[aria-controls="metadata-${a}"]`)
  const value = page.locator(`[data-testid=metadata-${a}] tr[data-where="metadata.weather = true"]`)
  await value.waitFor()
  await page.screenshot({ path: join(SHOTS, 'datasets-metadata-1280.png'), fullPage: true })
  assert.equal(await value.locator('td.num >> nth=0').textContent(), String(rainy))
  await value.locator('a').click()
  await page.locator('[data-testid=diff-sides]').waitFor()
  assert.equal(
    (await page.locator('[data-testid=diff-sides]').textContent())?.replace(
      'not (metadata.weather = true)',
      'not metadata.weather = true'
    ),
    slicedSides
  )

  await page.fill('input[name=aWhere]', 'metadata.weather ~ true')
  await page.click('main form button[type=submit]')
  const aError = page.locator('[data-testid=aWhere-error]')
  await aError.waitFor()
  assert.match((await aError.textContent()) ?? '', /bad operator "~".*at character 18/)
  assert.equal(await page.locator('[data-testid=bWhere-error]').count(), 0, 'only the faulty side is marked')
  assert.equal(await sides.count(), 0)
  await page.screenshot({ path: join(SHOTS, 'diff-slice-error-1280.png'), fullPage: true })

  await page.goto(`${fx.server.url}/#/search?dataset=${a}&q=flour&method=bm25`)
  await page.waitForSelector('[data-testid=search-results] li')
  // A search the URL describes runs before the datasets list loads; the form's required select needs it to submit.
  await page.waitForSelector(`main form option[value="${a}"]`, { state: 'attached' })
  await page.fill('input[name=where]', 'colour = "red"')
  await page.click('main form button[type=submit]')
  assert.match((await page.locator('[data-testid=where-error]').textContent()) ?? '', /unknown field "colour"/)
  await page.fill('input[name=where]', 'metadata.weather = true')
  await page.click('main form button[type=submit]')
  // The unsliced results are still on the page until the sliced answer arrives: wait for the list to change to it.
  const inSlice = docs.filter(d => d.metadata.weather).map(d => d.id)
  await page.waitForFunction(ids => {
    const shown = [...document.querySelectorAll('[data-testid=search-results] a')].map(e => e.textContent ?? '')
    return shown.length > 0 && shown.every(id => ids.includes(id))
  }, inSlice)
  const rows = await page.locator('[data-testid=search-results] a').evaluateAll(els => els.map(e => e.textContent))
  assert.ok(rows.length > 0)
  for (const id of rows) assert.ok(docs.find(d => d.id === id)?.metadata.weather, `${id} is in the slice`)

  const latent = (await json<{ latents: Array<{ latent: number }> }>(`/diff?a=${a}&b=${fx.b}&limit=1`)).latents[0]
    .latent
  const sliced = await json<{ documents: number; sliceStrongest: Array<{ row: number }> }>(
    `/latents/${latent}?dataset=${a}&examples=20&where=${encodeURIComponent('metadata.weather = true')}`
  )
  await page.goto(
    `${fx.server.url}/#/latent/${latent}?dataset=${a}&where=${encodeURIComponent('metadata.weather = true')}`
  )
  await page.waitForSelector(`main >> text=in ${sliced.documents} documents of ${a} [metadata.weather = true]`)
  // The slice's strongest documents (the page asks for 20), each a link to the document, in the API's order.
  assert.ok(sliced.sliceStrongest.length > 0)
  assert.deepEqual(
    await page
      .locator('[data-testid=slice-strongest] a')
      .evaluateAll(els => els.map(e => (e as HTMLAnchorElement).getAttribute('href'))),
    sliced.sliceStrongest.map(s => `#/document/${a}/${s.row}?latent=${latent}`)
  )

  // Clusters of a slice: one dot per document of the slice.
  await page.goto(`${fx.server.url}/#/clusters?dataset=${a}`)
  await page.waitForSelector(`${CLUSTERS_FORM} option[value="${a}"]`, { state: 'attached' })
  await page.fill(`${CLUSTERS_FORM} input[type=number] >> nth=0`, '2')
  await page.fill(`${CLUSTERS_FORM} input[name=where]`, 'metadata.weather = true')
  await page.click(`${CLUSTERS_FORM} button[type=submit]`)
  await waitShowing(page, '[data-testid=cluster-map] circle')
  assert.equal(await page.locator('[data-testid=cluster-map] circle').count(), rainy)

  // Latents of a slice: the slice's own counts, as the API gives them; a row opens the latent's page of the slice.
  const slicedList = await json<{ documents: number; latents: Array<{ latent: number; documents: number }> }>(
    `/latents?dataset=${a}&limit=50&where=${encodeURIComponent('metadata.weather = true')}`
  )
  assert.equal(slicedList.documents, rainy)
  await page.goto(`${fx.server.url}/#/latents?dataset=${a}&where=${encodeURIComponent('metadata.weather = true')}`)
  await page.waitForSelector(`main p:has-text("of ${rainy} documents in metadata.weather = true")`)
  assert.deepEqual(
    await page
      .locator('[data-testid=latents] tbody tr')
      .evaluateAll(rows => rows.map(r => [Number(r.getAttribute('data-latent')), Number(r.children[2].textContent)])),
    slicedList.latents.map(l => [l.latent, l.documents])
  )
  assert.match(
    (await page.locator('[data-testid=latents] tbody tr >> nth=0 >> a.latent').getAttribute('href')) ?? '',
    /where=metadata\.weather/
  )
  await page.fill('input[name=where]', 'colour = "red"')
  await page.click('main form button[type=submit]')
  assert.match((await page.locator('[data-testid=where-error]').textContent()) ?? '', /unknown field "colour"/)

  // Hypotheses: the dry run takes the slices (A its own B), and a bad one is refused under its field before any LLM call.
  const before = llmRequests
  await page.goto(`${fx.server.url}/#/hypotheses?a=${a}`)
  await page.waitForSelector(`#hyp-a option[value="${a}"]`, { state: 'attached' })
  await page.selectOption('#hyp-a', a)
  await page.fill('input[name=aWhere]', 'metadata.weather = true')
  await page.fill('input[name=bWhere]', 'latent -3')
  await page.selectOption('#hyp-b', a)
  await page.click(`${HYPOTHESES_FORM} button[type=submit]`)
  assert.match((await page.locator('[data-testid=bWhere-error]').textContent()) ?? '', /latent/)
  await page.fill('input[name=bWhere]', 'not metadata.weather = true')
  await page.click(`${HYPOTHESES_FORM} button[type=submit]`)
  await page.locator('[data-testid=estimate]').waitFor()
  assert.equal(llmRequests, before, 'dry runs do not call the LLM')
  assert.deepEqual(
    errors.filter(e => !/status of 400/.test(e)),
    []
  )
  await page.close()
})

test('versions: a batch appended from a file becomes version 2, listed with the rows it added, and diffs against version 1', async () => {
  const created = await fetch(`${fx.server.url}/datasets`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'versioned', documents: fixtureDocuments('cooking', 12, 11), encoder: 'demo' })
  })
  const { id } = (await created.json()) as { id: string }
  await waitReady(fx.server.url, id)
  const { page, errors } = await openPage()
  await page.goto(`${fx.server.url}/#/datasets`)
  const row = page.locator(`tr[data-id="${id}"]`)
  await row.getByRole('button', { name: 'Versions (1)' }).click()
  const panel = page.locator(`[data-testid="versions-${id}"]`)
  await panel.locator('tr[data-version="1"]').waitFor()
  // Nothing chosen: the form says what it needs instead of sending an empty batch.
  await panel.getByRole('button', { name: 'Append as version 2' }).click()
  assert.match((await panel.locator('[role=alert]').textContent()) ?? '', /Give a URL or choose a file/)

  const jsonl = `${fixtureDocuments('football', 8, 12)
    .map(d => JSON.stringify({ id: d.id, text: d.text }))
    .join('\n')}\n`
  await panel
    .locator('input[type=file]')
    .setInputFiles({ name: 'more.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(jsonl) })
  await panel.getByRole('button', { name: 'Append as version 2' }).click()
  // The dataset stays ready on version 1 while the batch encodes (polled), then lists version 2.
  const v2 = panel.locator('tr[data-version="2"]')
  await v2.waitFor()
  const cells = await v2.locator('td').allTextContents()
  assert.deepEqual(cells.slice(0, 3), ['2 latest', '12-19', '20'])
  assert.equal((await row.locator('.version-tag').textContent())?.trim(), 'v2')
  const d = await json<{
    version: number
    versions: Array<{ version: number; documents: { start: number; count: number } }>
  }>(`/datasets/${id}`)
  assert.equal(d.version, 2)
  assert.deepEqual(
    d.versions.map(v => [v.version, v.documents.start, v.documents.count]),
    [
      [1, 0, 12],
      [2, 12, 8]
    ]
  )
  await page.screenshot({ path: join(SHOTS, 'datasets-versions-1280.png'), fullPage: true })
  // Version 2 (the cooking documents and the football batch) against version 1: football latents lead.
  await v2.getByRole('link', { name: 'Diff against v1' }).click()
  await page.waitForSelector('[data-testid=diff-chart] [data-latent]')
  assert.match(decodeURIComponent(page.url()), new RegExp(`a=${id}@2&b=${id}@1`))
  assert.deepEqual(errors, [])
  await page.close()
})

test('an unlabelled latent shows what it peaks on in the diff, on its page and in a document, is labelled offline there without an LLM, and the page shows the new label', async () => {
  const { a, b } = fx
  const diff = await json<{
    latents: Array<{
      latent: number
      label: string | null
      frequencyA: number
      difference: number
      peak?: { dataset: string; token: string } | null
    }>
  }>(`/diff?a=${a}&b=${b}&limit=200&direction=both`)
  const unlabelled = diff.latents.find(l => l.label === null && l.frequencyA > 0.5 && l.difference >= 0)
  assert.ok(unlabelled, 'the demo encoder leaves some latents of the fixture unlabelled')
  assert.equal(unlabelled.peak?.dataset, a)
  assert.ok(unlabelled.peak?.token)
  const { page, errors } = await openPage()
  // The diff chart names it by its peak token instead of a bare number.
  await page.goto(`${fx.server.url}/#/diff?a=${a}&b=${b}&limit=200&direction=both`)
  const chartRow = page.locator(`[data-testid=diff-chart] [data-latent="${unlabelled.latent}"] .name`)
  await chartRow.waitFor()
  assert.equal((await chartRow.textContent())?.trim(), `#${unlabelled.latent} peaks on "${unlabelled.peak.token}"`)
  await page.goto(`${fx.server.url}/#/latent/${unlabelled.latent}?dataset=${a}`)
  const label = page.locator('[data-testid=latent-label]')
  await page.waitForSelector('[data-testid=latent-label] >> text=(no label)')
  const peakLine = (await page.locator('[data-testid=latent-peak]').textContent()) ?? ''
  assert.ok(peakLine.startsWith(`peaks on "${unlabelled.peak.token}" in `), peakLine)
  assert.match(peakLine, / of \d+ top examples, e\.g\. .*\.\.\./)
  // A document among its top examples (where it is among the 200 strongest, which the page lists) shows its peak too.
  const { topExamples } = await json<{ topExamples: Array<{ row: number }> }>(
    `/latents/${unlabelled.latent}?dataset=${a}&examples=5`
  )
  let docRow: number | undefined
  for (const { row } of topExamples) {
    const doc = await json<{ latents: Array<{ latent: number; peak?: { token: string } | null }> }>(
      `/datasets/${a}/documents/${row}`
    )
    const own = doc.latents.slice(0, 200).find(l => l.latent === unlabelled.latent)
    if (own) {
      assert.equal(own.peak?.token, unlabelled.peak.token)
      docRow = row
      break
    }
  }
  assert.ok(docRow !== undefined, 'a top example of the latent has it among its 200 strongest')
  await page.goto(`${fx.server.url}/#/document/${a}/${docRow}`)
  const inDoc = page.locator(`[data-testid=doc-latents] a[href^="#/latent/${unlabelled.latent}?"]`)
  await inDoc.waitFor()
  assert.equal((await inDoc.textContent())?.trim(), `#${unlabelled.latent} peaks on "${unlabelled.peak.token}"`)
  await page.goto(`${fx.server.url}/#/latent/${unlabelled.latent}?dataset=${a}`)
  await page.waitForSelector('[data-testid=latent-label] >> text=(no label)')
  await page.getByRole('button', { name: 'Label it from this dataset (offline, no LLM)' }).click()
  await page.waitForFunction(
    () => !document.querySelector('[data-testid=latent-label]')?.textContent?.includes('(no label)')
  )
  assert.match((await label.textContent()) ?? '', /^"[^"]+"/)
  assert.match((await page.locator('main .card .muted').first().textContent()) ?? '', /offline-examples/)
  const after = await json<{ label: string | null; labelSource: string | null }>(
    `/latents/${unlabelled.latent}?dataset=${a}&examples=0`
  )
  assert.equal(after.labelSource, 'offline-examples')
  assert.equal(after.label, await label.textContent())
  assert.deepEqual(errors, [])
  await page.close()
})

test('a server that requires API keys: the 401 is explained, and a saved key opens the datasets', async () => {
  process.env.API_KEYS = 'required'
  const dir = await mkdtemp(join(tmpdir(), 'latentbase-web-keys-'))
  let server: LocalServer | undefined
  try {
    server = await startLocal({ dataDir: dir, port: 0, encoders, log: () => {} })
    const { key } = await new ApiKeyStore(new FsObjectStore(join(dir, 'store'))).create('acme')
    const { page } = await openPage()
    await page.goto(`${server.url}/#/datasets`)
    const alert = page.locator('main .error')
    await alert.waitFor()
    assert.match((await alert.textContent()) ?? '', /401.*requires an API key.*key field/s)
    await page.fill('header input[type=password]', key)
    await page.click('header button[type=submit]')
    await page.waitForSelector('main >> text=No dataset yet')
    assert.equal(
      await page.evaluate(() => localStorage.getItem('latentbase.apiKey')),
      key,
      'the key is kept in the browser'
    )
    await page.close()
  } finally {
    delete process.env.API_KEYS
    await server?.close()
    await rm(dir, { recursive: true, force: true })
  }
})
