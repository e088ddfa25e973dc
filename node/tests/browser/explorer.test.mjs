// Drives the node's web explorer in headless Chromium, as a person would: the latest blocks
// update live, the search finds a transaction, its block lists it, the validators show.
//
//   node explorer.test.mjs --url http://127.0.0.1:PORT --tx 0xHASH [--address tks1...] [--screenshots DIR]
//
// --tx must be a finalized transaction; --address, if given, its sender or recipient (the test
// pages through its history, at most 20 pages, until the transaction shows). Chromium is Debian's
// /usr/bin/chromium unless TAKSA_CHROMIUM names another. Exits 0 when every step passed, 1 on
// the first failure (after printing what the page showed), 2 on bad arguments.

import { chromium } from 'playwright-core';

const LIVE_WAIT_MS = 15000;
const STEP_TIMEOUT_MS = 10000;
const HISTORY_PAGES_MAX = 20;
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    const value = argv[i + 1];
    if (!['--url', '--tx', '--address', '--screenshots'].includes(key) || value === undefined) {
      throw new Error(`unexpected argument ${key ?? ''}`);
    }
    args[key.slice(2)] = value;
  }
  if (!args.url || !args.tx) throw new Error('--url and --tx are required');
  if (!/^0x[0-9a-fA-F]{64}$/.test(args.tx)) throw new Error(`--tx ${args.tx} is not 0x + 64 hex digits`);
  args.tx = args.tx.toLowerCase();
  return args;
}

const started = Date.now();
const stamp = () => `[${String(Date.now() - started).padStart(6)} ms]`;

async function step(name, fn) {
  const t0 = Date.now();
  process.stdout.write(`${stamp()} ${name} ... `);
  try {
    const detail = await fn();
    console.log(`ok (${Date.now() - t0} ms)${detail ? `: ${detail}` : ''}`);
  } catch (err) {
    console.log(`FAILED (${Date.now() - t0} ms)`);
    err.step = name;
    throw err;
  }
}

const sel = (testid) => `[data-testid="${testid}"]`;

/** Everything that leaves the page must go to the node itself. */
function watchTraffic(page, nodeHost, problems) {
  const check = (url, what) => {
    let parsed;
    try { parsed = new URL(url); } catch { problems.foreign.push(`${what} ${url}`); return; }
    if (['data:', 'blob:', 'about:'].includes(parsed.protocol)) return;
    if (parsed.host !== nodeHost) problems.foreign.push(`${what} ${url}`);
  };
  page.on('request', (req) => check(req.url(), req.method()));
  page.on('websocket', (ws) => check(ws.url(), 'WebSocket'));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.console.push(msg.text());
  });
  page.on('pageerror', (err) => problems.console.push(`uncaught: ${err.message}`));
}

async function topHeight(page) {
  const row = page.locator(`${sel('latest-blocks')} ${sel('block-row')}`).first();
  return Number(await row.getAttribute('data-height'));
}

async function run(args, page, problems) {
  const nodeUrl = new URL(args.url);

  await step(`open ${nodeUrl.href}`, async () => {
    await page.goto(nodeUrl.href, { waitUntil: 'load' });
    await page.locator(`${sel('latest-blocks')} ${sel('block-row')}`).first().waitFor();
    return `${await page.locator(`${sel('latest-blocks')} ${sel('block-row')}`).count()} block rows`;
  });

  let first;
  await step('read the top block', async () => {
    first = await topHeight(page);
    if (!Number.isInteger(first)) throw new Error('the top row has no numeric data-height');
    // A marker that survives only if the page is not reloaded.
    await page.evaluate(() => { window.taksaNoReload = true; });
    return `height ${first}`;
  });

  await step(`wait up to ${LIVE_WAIT_MS / 1000} s for a newer block, without reloading`, async () => {
    await page.waitForFunction((height) => {
      const row = document.querySelector('[data-testid="latest-blocks"] [data-testid="block-row"]');
      return row !== null && Number(row.dataset.height) > height;
    }, first, { timeout: LIVE_WAIT_MS, polling: 100 });
    if (!(await page.evaluate(() => window.taksaNoReload === true))) throw new Error('the page reloaded');
    // A resubscription after `lagged` passes through "polling" for a moment, so allow a few seconds.
    const live = await page.waitForFunction(() => document.querySelector('[data-testid="live-indicator"]')?.dataset.state === 'live',
      null, { timeout: STEP_TIMEOUT_MS / 2 }).then(() => true, () => false);
    const state = await page.locator(sel('live-indicator')).getAttribute('data-state');
    if (!live) throw new Error(`the live indicator says "${state}", not "live" (no WebSocket subscription?)`);
    const stats = await page.locator(sel('stat-head')).textContent();
    return `height ${await topHeight(page)}, indicator "${state}", head stat ${stats}`;
  });

  if (args.screenshots) await page.screenshot({ path: `${args.screenshots}/home.png`, fullPage: true });

  await step(`search for ${args.tx}`, async () => {
    await page.locator(sel('search-input')).fill(args.tx);
    await page.locator(sel('search-button')).click();
    // Either the tx page opens or the search says why not (shown under the search box).
    await page.locator(`${sel('tx-page')}, ${sel('search-message')}`).filter({ visible: true }).first().waitFor();
    if (await page.locator(sel('search-message')).isVisible()) {
      throw new Error(`the search answered: ${await page.locator(sel('search-message')).textContent()}`);
    }
    const hash = (await page.locator(sel('tx-hash')).textContent()).trim().toLowerCase();
    if (hash !== args.tx) throw new Error(`the tx page shows ${hash}`);
    const route = await page.evaluate(() => location.hash);
    if (!route.toLowerCase().startsWith('#/tx/')) throw new Error(`the route is ${route}`);
    return route;
  });

  await step('the transaction is finalized', async () => {
    await page.waitForFunction(() => document.querySelector('[data-testid="tx-status"]')?.textContent.trim() === 'finalized',
      null, { timeout: STEP_TIMEOUT_MS });
    return (await page.locator(sel('tx-block-link')).textContent()).trim();
  });

  if (args.screenshots) await page.screenshot({ path: `${args.screenshots}/tx.png`, fullPage: true });

  await step('its block page lists it', async () => {
    await page.locator(sel('tx-block-link')).click();
    await page.locator(sel('block-page')).waitFor();
    await page.locator(`${sel('block-tx-row')}[data-hash="${args.tx}"]`).waitFor();
    return `block ${await page.locator(sel('block-page')).getAttribute('data-height')}`;
  });

  if (args.address) {
    await step(`address ${args.address} lists it in its history`, async () => {
      await page.evaluate((a) => { location.hash = `#/address/${a}`; }, args.address);
      await page.locator(sel('address-page')).waitFor();
      const loaded = page.locator(`${sel('history')}:not([aria-busy])`);
      const row = page.locator(`${sel('history-row')}[data-hash="${args.tx}"]`);
      const older = page.locator(sel('history-older'));
      // Page towards older entries with the pager until the transaction shows.
      let pages = 1;
      for (;;) {
        await loaded.waitFor();
        if (await row.count()) break;
        if (pages >= HISTORY_PAGES_MAX || await older.isDisabled()) {
          throw new Error(`not in ${pages} history page(s) (${await page.locator(sel('history-row')).count()} rows on the last)`);
        }
        await older.click();
        pages += 1;
      }
      const balance = (await page.locator(sel('address-balance')).textContent()).trim();
      return `found on history page ${pages}, balance ${balance}`;
    });
  }

  await step('the validators page lists validators', async () => {
    await page.locator(sel('nav-validators')).click();
    await page.locator(sel('validators-page')).waitFor();
    await page.locator(sel('validator-row')).first().waitFor();
    // The set of each epoch so far (the dev chain has run epoch 0 at least) and the epoch line.
    await page.locator(sel('set-row')).first().waitFor();
    const epoch = await page.locator(sel('validator-epoch')).textContent();
    if (!/^Epoch \d+ \(heights/.test(epoch)) throw new Error(`the epoch line reads: ${epoch}`);
    return `${await page.locator(sel('validator-row')).count()} validators, ${await page.locator(sel('set-row')).count()} epochs listed`;
  });

  await step('no error on the page, no console error, no request elsewhere', async () => {
    if (await page.locator(sel('error')).count()) throw new Error(`error shown: ${await page.locator(sel('error')).first().textContent()}`);
    if (problems.console.length) throw new Error(`console errors:\n  ${problems.console.join('\n  ')}`);
    if (problems.foreign.length) throw new Error(`requests to other hosts:\n  ${problems.foreign.join('\n  ')}`);
    return `${problems.requests} requests, all to ${nodeUrl.host}`;
  });
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`${err.message}\nusage: node explorer.test.mjs --url http://127.0.0.1:PORT --tx 0xHASH [--address tks1...] [--screenshots DIR]`);
    return 2;
  }
  const executablePath = process.env.TAKSA_CHROMIUM || '/usr/bin/chromium';
  const problems = { console: [], foreign: [], requests: 0 };
  let browser;
  let page;
  try {
    await step(`launch ${executablePath}`, async () => {
      browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
      return browser.version();
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on('request', () => { problems.requests += 1; });
    watchTraffic(page, new URL(args.url).host, problems);
    await run(args, page, problems);
    console.log(`${stamp()} all steps passed`);
    return 0;
  } catch (err) {
    console.log(`\nstep failed: ${err.step ?? '(setup)'}\n${err.message}`);
    if (page) {
      const route = await page.evaluate(() => location.href).catch(() => '?');
      const text = await page.locator('main').innerText({ timeout: 2000 }).catch((e) => `(unreadable: ${e.message})`);
      const message = await page.locator(sel('search-message')).textContent({ timeout: 1000 }).catch(() => '');
      if (message) console.log(`search message: ${message}`);
      console.log(`--- page ${route}, text of <main>:\n${text}\n---`);
    }
    console.log(`console errors: ${problems.console.length ? `\n  ${problems.console.join('\n  ')}` : 'none'}`);
    if (problems.foreign.length) console.log(`requests to other hosts:\n  ${problems.foreign.join('\n  ')}`);
    return 1;
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
}

process.exitCode = await main();
