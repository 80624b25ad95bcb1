// matrix.html in a real headless browser (Debian's chromium through playwright-core): two family
// sections, sorting by a header click, the filter box, a case's decoded diff, failures apart from
// known deviations, and no network request. Chromium is a Debian package that `make setup` installs;
// without it this spec fails and says how to install it (it never skips silently).

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { loadDeviations } from '../report/deviations.ts';
import { buildMatrix } from '../report/publish.ts';
import { writePublished } from '../report/publish-render.ts';
import { loadFixture, tweak } from './support/publish-fixtures.ts';

/** Debian's chromium (package `chromium`, in scripts/setup.sh). */
export const CHROMIUM = process.env.SVMCONF_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const UD2 = 'l1.faults/kind=ud2,prefix=none';

describe('matrix.html in headless chromium', function () {
  this.timeout(120_000);
  let dir: string;
  let browser: Browser;
  let page: Page;
  const requests: string[] = [];
  const errors: string[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} not found: this spec needs Debian's chromium (apt-get install -y --no-install-recommends chromium, or make setup), or SVMCONF_CHROMIUM=<path>`);
    }
    dir = mkdtempSync(join(tmpdir(), 'svmconf-html-'));
    const deviations = await loadDeviations(join(import.meta.dirname, '..', 'expected', 'deviations.yaml'));
    // the Zen 4 run with one divergence made on purpose, the K10 run as it came
    const m = buildMatrix([
      { source: 'zen4.results.json', results: tweak(loadFixture('zen4'), UD2, 'qemu-tcg') },
      { source: 'k10.results.json', results: loadFixture('k10') },
    ], { deviations });
    const paths = await writePublished(dir, m, deviations);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage();
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    await page.goto(pathToFileURL(paths.html).href);
  });

  after(async () => {
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows one section per CPU family', async () => {
    assert.deepEqual(await page.locator('section.family').evaluateAll((els) => els.map((e) => e.getAttribute('data-family'))), ['10h-k10', '19h-zen-4']);
    assert.match(await page.locator('section.family[data-family="19h-zen-4"] h2').innerText(), /Zen 4 \(family 19h, model profile amd-19h\)/);
    assert.equal(await page.locator('section.family[data-family="10h-k10"] tbody.case').count(), 13);
  });

  it('sorts a table by a header click', async () => {
    const table = page.locator('table.matrix[data-family="19h-zen-4"]');
    const order = () => table.locator('tbody.case').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
    const before = await order();
    await table.locator('th[data-sort="verdict"]').click();
    const asc = await order();
    assert.notDeepEqual(asc, before);
    assert.equal(asc[0], UD2, 'the divergence sorts first (worst verdict first)');
    assert.equal(await table.locator('th[data-sort="verdict"]').getAttribute('aria-sort'), 'ascending');
    await table.locator('th[data-sort="id"]').click();
    const byId = await order();
    assert.deepEqual(byId, [...byId].sort());
    await table.locator('th[data-sort="id"]').click();
    assert.deepEqual(await order(), [...byId].reverse());
    // a backend column: the cells' text (digests, `=`, `~…`) decides the order
    await table.locator('th[data-column^="qemu-tcg"]').click();
    const cellTexts = await table.locator('tbody.case td[data-col^="qemu-tcg"]').evaluateAll((els) => els.map((e) => e.textContent ?? ''));
    assert.deepEqual(cellTexts, [...cellTexts].sort());
    assert.notDeepEqual(cellTexts, [...cellTexts].reverse(), 'more than one distinct value');
  });

  it('hides rows that do not match the filter', async () => {
    const visible = () => page.locator('tbody.case:visible').count();
    assert.equal(await visible(), 26);
    await page.fill('#filter', 'icebp');
    assert.equal(await visible(), 4, 'two ICEBP cases in each family');
    await page.fill('#filter', 'known icebp');
    assert.equal(await visible(), 4);
    await page.fill('#filter', 'diverge');
    assert.equal(await visible(), 1);
    assert.equal(await page.locator('section.family[data-family="19h-zen-4"] .shown-count').innerText(), '1');
    await page.fill('#filter', '');
    assert.equal(await visible(), 26);
  });

  it('opens a case to show the decoded field-by-field diff', async () => {
    const body = page.locator(`table.matrix[data-family="19h-zen-4"] tbody.case[data-id="${UD2}"]`);
    assert.equal(await body.locator('tr.detail').isVisible(), false);
    await body.locator('button.toggle').click();
    const detail = body.locator('tr.detail');
    assert.equal(await detail.isVisible(), true);
    const text = await detail.innerText();
    assert.match(text, /vector \(divergence\)/);
    assert.match(text, /#UD \(6\)/, 'values decoded by the field\'s hint, not raw hex');
    const icebp = page.locator('table.matrix[data-family="19h-zen-4"] tbody.case[data-id="l1.icebp/prefix=none"]');
    await icebp.locator('button.toggle').click();
    assert.match(await icebp.locator('tr.detail').innerText(), /vector \(known deviation qemu-icebp-ud\)[\s\S]*#DB \(1\)[\s\S]*#UD \(6\)/);
  });

  it('keeps failures apart from known deviations', async () => {
    const zen4 = page.locator('section.family[data-family="19h-zen-4"]');
    const failures = await zen4.locator('section.failures li.failure').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
    const known = await zen4.locator('section.deviations .known-case').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
    assert.deepEqual(failures, [UD2]);
    assert.ok(known.includes('l1.icebp/prefix=none'));
    assert.ok(!known.includes(UD2), 'a failure is not listed as a known deviation');
    assert.equal(await page.locator('section.family[data-family="10h-k10"] section.failures li.failure').count(), 0);
    // and the cells look different
    const bg = (sel: string) => zen4.locator(sel).first().evaluate((e) => getComputedStyle(e).backgroundColor);
    assert.notEqual(await bg('td.k-diverge'), await bg('td.k-known'));
    assert.equal(await zen4.locator('td.k-diverge').count(), 1);
  });

  it('made no network request and raised no script error', () => {
    assert.ok(requests.length >= 1, 'the page itself was loaded');
    assert.deepEqual(requests.filter((u) => !u.startsWith('file://')), []);
    assert.deepEqual(errors, []);
  });
});
