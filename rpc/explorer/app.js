// Taksa explorer: one page that reads the node's JSON-RPC on its own origin (HTTP POST for
// calls, a WebSocket subscription for new blocks). No framework and no build step. Every value
// from the node reaches the DOM as text (textContent, attributes), never as HTML.

const RPC_TIMEOUT_MS = 15000;
const POLL_INTERVAL_MS = 2000;
const RECONNECT_DELAY_MS_MIN = 1000;
const RECONNECT_DELAY_MS_MAX = 30000;
const STATS_INTERVAL_MS_MIN = 1000;
const STATS_REFRESH_MS = 10000;
const VALIDATORS_REFRESH_MS = 5000;
const TX_PENDING_REFRESH_MS = 2000;
const BLOCKS_SHOWN = 20;
const HISTORY_PAGE_SIZE = 25;

// The page is served at the node's root, so JSON-RPC is `./` and the WebSocket the same URL.
const RPC_URL = new URL('./', location.href).href;
function wsUrl() {
  const url = new URL('./', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

// ---- DOM helpers --------------------------------------------------------------------------

/** Builds an element; strings among `children` become text nodes, so they are never parsed. */
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const href = {
  block: (id) => `#/block/${encodeURIComponent(id)}`,
  tx: (hash) => `#/tx/${encodeURIComponent(hash)}`,
  address: (addr) => `#/address/${encodeURIComponent(addr)}`,
};

/** "0x1234abcd…89ef": enough to tell values apart in a table; the full value is the tooltip. */
function short(value) {
  const s = String(value ?? '');
  return s.length > 20 ? `${s.slice(0, 10)}…${s.slice(-6)}` : s;
}

function mono(value, full = false) {
  return el('span', { class: 'mono', title: value }, full ? value : short(value));
}

function linkTo(kind, value, { full = false, text, testid } = {}) {
  if (value === undefined || value === null) return el('span', { class: 'muted' }, '—');
  return el('a', { href: href[kind](value), class: 'mono', title: String(value), 'data-testid': testid },
    text ?? (full ? String(value) : short(value)));
}

function loading(what) {
  return el('p', { class: 'muted loading' }, `Loading ${what}…`);
}

/** A field list: pairs of label and value (a node or text); null values are left out. */
function fields(pairs) {
  const dl = el('dl', { class: 'fields' });
  for (const [label, value] of pairs) {
    if (value === null || value === undefined) continue;
    dl.append(el('dt', {}, label), el('dd', {}, value));
  }
  return dl;
}

/** A table; headings ending in ">" are right-aligned numeric columns (the ">" is not shown). */
function table(headings, tbody) {
  const head = el('tr', {}, headings.map((h) => (h.endsWith('>')
    ? el('th', { scope: 'col', class: 'num' }, h.slice(0, -1))
    : el('th', { scope: 'col' }, h))));
  return el('div', { class: 'table-wrap' }, el('table', {}, el('thead', {}, head), tbody));
}

function emptyRow(columns, text) {
  return el('tr', { class: 'empty' }, el('td', { colspan: columns }, text));
}

// ---- Formatting ---------------------------------------------------------------------------

function groupDigits(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Base units (a decimal string) as tokens, with exact string arithmetic: no float rounding. */
function formatUnits(base, decimals) {
  const s = String(base ?? '');
  if (!/^\d+$/.test(s)) return s;
  const digits = s.replace(/^0+(?=\d)/, '');
  if (!decimals) return groupDigits(digits);
  const padded = digits.padStart(decimals + 1, '0');
  const whole = padded.slice(0, -decimals);
  const fraction = padded.slice(-decimals).replace(/0+$/, '');
  return groupDigits(whole) + (fraction ? `.${fraction}` : '');
}

/** The sum of two decimal strings of base units. */
function addUnits(a, b) {
  let out = '';
  let carry = 0;
  for (let i = a.length - 1, j = b.length - 1; i >= 0 || j >= 0 || carry; i--, j--) {
    const sum = (i >= 0 ? a.charCodeAt(i) - 48 : 0) + (j >= 0 ? b.charCodeAt(j) - 48 : 0) + carry;
    out = String(sum % 10) + out;
    carry = sum >= 10 ? 1 : 0;
  }
  return out.replace(/^0+(?=\d)/, '') || '0';
}

/** An amount for display: tokens when the network's decimals are known, else base units. */
function amount(base, token) {
  if (base === undefined || base === null) return el('span', { class: 'muted' }, '—');
  const text = token ? `${formatUnits(base, token.decimals)} ${token.symbol}` : `${formatUnits(base, 0)} base units`;
  return el('span', { class: 'amount', title: `${base} base units` }, text);
}

function formatInt(n) {
  return typeof n === 'number' && Number.isFinite(n) ? groupDigits(String(Math.trunc(n))) : '—';
}

function formatMs(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—';
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.floor(s / 60)}m ago`;
  if (s < 172800) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

function isoTime(ms) {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** "12s ago", kept current by the ticker; the exact time is the tooltip. */
function age(ms) {
  if (typeof ms !== 'number') return el('span', { class: 'muted' }, 'never');
  return el('time', { datetime: new Date(ms).toISOString(), title: isoTime(ms), 'data-ago': ms }, ago(ms));
}

function updateAges() {
  for (const t of document.querySelectorAll('time[data-ago]')) {
    t.textContent = ago(Number(t.getAttribute('data-ago')));
  }
}

// ---- JSON-RPC -----------------------------------------------------------------------------

class RpcError extends Error {
  constructor(message, code, data) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
    this.data = data;
  }
}

let nextRequestId = 1;

async function rpc(method, params = []) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), RPC_TIMEOUT_MS);
  const body = JSON.stringify({ jsonrpc: '2.0', id: nextRequestId++, method, params });
  let response;
  let reply;
  try {
    response = await fetch(RPC_URL, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body, cache: 'no-store', signal: controller.signal,
    });
    reply = await response.json();
  } catch (err) {
    if (controller.signal.aborted) throw new RpcError(`The node did not answer ${method} within ${RPC_TIMEOUT_MS / 1000} s.`);
    if (response) throw new RpcError(`The node answered ${method} with HTTP ${response.status} and no JSON-RPC reply.`);
    throw new RpcError(`Cannot reach the node: ${err.message}`);
  } finally {
    clearTimeout(timer);
  }
  if (reply && reply.error) {
    const e = reply.error;
    throw new RpcError(e.message || 'The node reported an error.', e.code, e.data);
  }
  if (!reply || !('result' in reply)) throw new RpcError(`The node's answer to ${method} is not a JSON-RPC result.`);
  return reply.result;
}

/** A readable sentence for any error, with the stable reason and code when the node gave them. */
function describe(err) {
  if (!(err instanceof RpcError)) return err && err.message ? err.message : String(err);
  const reason = err.data && typeof err.data === 'object' ? err.data.reason : null;
  const tags = [reason, err.code !== undefined ? `code ${err.code}` : null].filter(Boolean);
  return tags.length ? `${err.message} (${tags.join(', ')})` : err.message;
}

function errorBox(title, err) {
  return el('div', { class: 'error', role: 'alert', 'data-testid': 'error' },
    el('strong', {}, title), el('p', {}, describe(err)));
}

let infoCache = null;

/** chain_getInfo, cached for `maxAgeMs`; a failed call is not cached. */
async function chainInfo(maxAgeMs = Infinity) {
  if (infoCache && Date.now() - infoCache.at <= maxAgeMs) return infoCache.promise;
  const entry = { at: Date.now(), promise: rpc('chain_getInfo') };
  infoCache = entry;
  entry.promise.catch(() => { if (infoCache === entry) infoCache = null; });
  return entry.promise;
}

/** The token's symbol and decimals, or null when the node cannot say (amounts then show base units). */
async function token() {
  try {
    const info = await chainInfo();
    return { symbol: info.tokenSymbol, decimals: Number(info.tokenDecimals) || 0 };
  } catch {
    return null;
  }
}

// ---- Live feed of finalized blocks ----------------------------------------------------------

const STATE_TEXT = {
  connecting: ['connecting', 'Connecting to the node'],
  live: ['live', 'New blocks arrive over a WebSocket subscription'],
  reconnecting: ['reconnecting', 'The WebSocket closed; reconnecting without missing blocks'],
  polling: ['polling', 'WebSocket unavailable; asking for new blocks every 2 s'],
  offline: ['offline', 'The node does not answer'],
};

/**
 * Finalized blocks as they come: a `chain_subscribeFinalized` subscription that resumes after
 * the last cursor it saw when the socket closes or the node reports `lagged`; while the socket
 * is down (or WebSocket is missing), polling `explorer_recentBlocks` fills in.
 */
class LiveFeed {
  constructor(indicator) {
    this.indicator = indicator;
    this.listeners = new Set();
    this.lastCursor = null;
    this.lastHeight = -1;
    this.ws = null;
    this.failures = 0;
    this.pollTimer = null;
    this.retryTimer = null;
  }

  start() {
    if (typeof WebSocket === 'undefined') this.startPolling();
    else this.connect();
  }

  /** Calls `fn(block)` for each new block; returns the function that stops it. */
  onBlock(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(block, cursor) {
    if (!block || typeof block.height !== 'number' || block.height <= this.lastHeight) return;
    this.lastHeight = block.height;
    this.lastCursor = cursor || block.cursor || this.lastCursor;
    for (const fn of this.listeners) fn(block);
  }

  setState(state) {
    const [text, title] = STATE_TEXT[state];
    this.state = state;
    this.indicator.dataset.state = state;
    this.indicator.textContent = text;
    this.indicator.title = title;
  }

  connect() {
    clearTimeout(this.retryTimer);
    if (!this.pollTimer) this.setState(this.failures ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch {
      this.lost();
      return;
    }
    this.ws = ws;
    const requestId = nextRequestId++;
    let subscription = null;
    ws.onopen = () => {
      const options = this.lastCursor ? { after: this.lastCursor } : {};
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: requestId, method: 'chain_subscribeFinalized', params: [options] }));
    };
    ws.onmessage = (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch { return; }
      if (msg.id === requestId) {
        if (msg.error) { this.drop(); return; }
        subscription = msg.result;
        this.failures = 0;
        this.stopPolling();
        this.setState('live');
        return;
      }
      if (msg.method !== 'chain_finalized' || !msg.params) return;
      if (subscription !== null && msg.params.subscription !== subscription) return;
      const item = msg.params.result || {};
      if (item.type === 'block') this.emit(item.block, item.cursor);
      else if (item.type === 'lagged') {
        if (item.resumeCursor) this.lastCursor = item.resumeCursor;
        this.drop();
      }
    };
    ws.onclose = () => { if (this.ws === ws) this.lost(); };
  }

  /** Closes the socket on purpose (the subscription ended) and reconnects. */
  drop() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
    this.lost();
  }

  lost() {
    this.ws = null;
    this.failures += 1;
    this.startPolling();
    const delay = Math.min(RECONNECT_DELAY_MS_MAX, RECONNECT_DELAY_MS_MIN * 2 ** (this.failures - 1));
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  startPolling() {
    if (this.pollTimer) return;
    this.setState('polling');
    const tick = async () => {
      try {
        const page = await rpc('explorer_recentBlocks', [{ limit: BLOCKS_SHOWN }]);
        if (!this.pollTimer) return;
        const blocks = (page.blocks || []).slice().sort((a, b) => a.height - b.height);
        for (const block of blocks) this.emit(block);
        this.setState('polling');
      } catch {
        if (this.pollTimer) this.setState('offline');
      }
    };
    this.pollTimer = setInterval(tick, POLL_INTERVAL_MS);
    tick();
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }
}

// ---- Pages ----------------------------------------------------------------------------------

const STAT_CARDS = [
  ['tps', 'TPS', 'stat-tps', (s) => (typeof s.tps === 'number' ? s.tps.toFixed(2) : '—')],
  ['blockTime', 'Block time', 'stat-block-time', (s) => formatMs(s.blockTimeMs)],
  ['finalityLag', 'Finality lag', 'stat-finality-lag', (s) => formatMs(s.finalityLagMs)],
  ['head', 'Head', 'stat-head', (s) => formatInt(s.headHeight)],
  ['finalized', 'Finalized', 'stat-finalized', (s) => formatInt(s.finalizedHeight)],
  ['totalTxs', 'Transactions', 'stat-total-txs', (s) => formatInt(s.totalTxs)],
  ['accounts', 'Accounts', 'stat-accounts', (s) => formatInt(s.totalAccounts)],
  ['mempool', 'Mempool', 'stat-mempool', (s) => formatInt(s.mempoolTxs)],
];

function blockRow(block, tok, fresh) {
  return el('tr', { 'data-testid': 'block-row', 'data-height': block.height, class: fresh ? 'fresh' : null },
    el('td', {}, linkTo('block', block.height, { text: formatInt(block.height) })),
    el('td', {}, linkTo('block', block.hash)),
    el('td', {}, linkTo('address', block.proposer)),
    el('td', { class: 'num' }, formatInt(block.txCount)),
    el('td', { class: 'num' }, amount(block.fees, tok)),
    el('td', {}, age(block.timestampMs)));
}

async function homePage(ctx, main) {
  document.title = 'Taksa explorer';
  const values = {};
  const stats = el('section', { class: 'stats wide', 'aria-label': 'Chain statistics' },
    STAT_CARDS.map(([key, label, testid]) => {
      values[key] = el('div', { class: 'stat-value', 'data-testid': testid }, '…');
      return el('div', { class: 'stat' }, el('div', { class: 'stat-label' }, label), values[key]);
    }));
  const statsError = el('div', { class: 'inline-error', role: 'status' });
  const tbody = el('tbody', { 'data-testid': 'latest-blocks' }, emptyRow(6, 'Loading blocks…'));
  main.append(stats, statsError, el('h2', {}, 'Latest blocks'),
    table(['Height', 'Hash', 'Proposer', 'Txs>', 'Fees>', 'Age'], tbody));

  let statsAt = 0;
  let statsTimer = null;
  const refreshStats = () => {
    const wait = statsAt + STATS_INTERVAL_MS_MIN - Date.now();
    if (wait > 0) {
      if (!statsTimer) statsTimer = setTimeout(() => { statsTimer = null; refreshStats(); }, wait);
      return;
    }
    statsAt = Date.now();
    rpc('explorer_getStats').then((s) => {
      if (!ctx.alive) return;
      for (const [key, , , show] of STAT_CARDS) values[key].textContent = show(s);
      statsError.replaceChildren();
    }, (err) => {
      if (ctx.alive) statsError.replaceChildren(`Statistics unavailable: ${describe(err)}`);
    });
  };
  ctx.cleanup(() => clearTimeout(statsTimer));
  ctx.every(STATS_REFRESH_MS, refreshStats);

  const tok = await token();
  let loaded = false;
  const addBlock = (block, fresh) => {
    const rows = [...tbody.querySelectorAll('tr[data-height]')];
    if (rows.some((r) => Number(r.dataset.height) === block.height)) return;
    const row = blockRow(block, tok, fresh);
    const after = rows.find((r) => Number(r.dataset.height) < block.height);
    tbody.insertBefore(row, after || null);
    for (const extra of [...tbody.querySelectorAll('tr[data-height]')].slice(BLOCKS_SHOWN)) extra.remove();
    if (loaded) tbody.querySelector('tr.empty')?.remove();
  };
  // Listen before loading, so a block finalized meanwhile is not lost (rows are deduplicated).
  const pending = [];
  ctx.cleanup(feed.onBlock((block) => {
    if (loaded) addBlock(block, true);
    else pending.push(block);
    refreshStats();
  }));
  refreshStats();
  try {
    const page = await rpc('explorer_recentBlocks', [{ limit: BLOCKS_SHOWN }]);
    if (!ctx.alive) return;
    tbody.replaceChildren();
    loaded = true;
    for (const block of page.blocks || []) addBlock(block, false);
    for (const block of pending) addBlock(block, true);
    if (!tbody.children.length) tbody.append(emptyRow(6, 'No blocks yet.'));
  } catch (err) {
    if (!ctx.alive) return;
    loaded = true;
    tbody.replaceChildren();
    for (const block of pending) addBlock(block, true);
    main.insertBefore(errorBox('Could not load the latest blocks', err), stats.nextSibling);
  }
}

async function blockPage(ctx, main, id) {
  document.title = `Block ${short(id)} · Taksa explorer`;
  main.append(loading('block'));
  const [block, tok, info] = await Promise.all([
    rpc('chain_getBlock', [id]),
    token(),
    chainInfo(0).catch(() => null),
  ]);
  if (!ctx.alive) return;
  document.title = `Block ${block.height} · Taksa explorer`;
  const head = Math.max(info ? info.headHeight : -1, feed.lastHeight);
  const nav = el('nav', { class: 'pager' },
    block.height > 0 ? el('a', { href: href.block(block.height - 1), 'data-testid': 'block-prev' }, `← Block ${formatInt(block.height - 1)}`) : null,
    block.height < head ? el('a', { href: href.block(block.height + 1), 'data-testid': 'block-next' }, `Block ${formatInt(block.height + 1)} →`) : null);
  const txs = block.txs || [];
  const fees = txs.reduce((sum, tx) => addUnits(sum, String(tx.fee ?? '0')), '0');
  const parent = block.height > 0 ? linkTo('block', block.parentHash, { full: true }) : mono(block.parentHash, true);
  const tbody = el('tbody', { 'data-testid': 'block-txs' }, txs.length ? txs.map((tx) => el('tr', { 'data-testid': 'block-tx-row', 'data-hash': tx.hash },
    el('td', {}, linkTo('tx', tx.hash)),
    el('td', {}, linkTo('address', tx.from)),
    el('td', {}, linkTo('address', tx.to)),
    el('td', { class: 'num' }, amount(tx.amount, tok)),
    el('td', { class: 'num' }, amount(tx.fee, tok)),
    el('td', { class: 'num' }, formatInt(tx.nonce)),
    el('td', { class: 'memo' }, tx.memo ?? ''))) : emptyRow(7, 'No transactions in this block.'));
  main.replaceChildren(el('section', { 'data-testid': 'block-page', 'data-height': block.height },
    el('div', { class: 'title-row' }, el('h1', {}, `Block ${formatInt(block.height)}`), nav),
    el('div', { class: 'card' }, fields([
      ['Hash', mono(block.hash, true)],
      ['Status', el('span', { class: `badge ${block.finalized ? 'ok' : 'warn'}` }, block.finalized ? 'finalized' : 'not final')],
      ['Time', block.timestampMs !== undefined ? el('span', {}, isoTime(block.timestampMs), ' (', age(block.timestampMs), ')') : null],
      ['View', formatInt(block.view)],
      ['Proposer', linkTo('address', block.proposer, { full: true })],
      ['Parent', parent],
      ['Transactions', formatInt(block.txCount ?? txs.length)],
      ['Fees', amount(fees, tok)],
      ['Transaction root', block.txRoot ? mono(block.txRoot, true) : null],
      ['State root', block.stateRoot ? mono(block.stateRoot, true) : null],
      ['Validator set', block.validatorSetHash ? mono(block.validatorSetHash, true) : null],
    ])),
    el('h2', {}, 'Transactions'),
    table(['Hash', 'From', 'To', 'Amount>', 'Fee>', 'Nonce>', 'Memo'], tbody)));
}

function txStatusNote(st) {
  if (st.status === 'pending') return el('p', { class: 'note' }, 'Waiting in the node\'s pool; this page updates when it is included.');
  if (st.status === 'rejected' || st.status === 'expired') {
    const what = st.status === 'rejected' ? 'Rejected: it can never be included' : 'Expired: its validity window passed';
    return el('div', { class: 'note warn', 'data-testid': 'tx-reason' },
      el('strong', {}, what), el('p', {}, [st.message, st.reason ? `(${st.reason})` : null].filter(Boolean).join(' ')));
  }
  return null;
}

function renderTx(st, tok) {
  const tx = st.tx || null;
  const statusClass = { finalized: 'ok', pending: 'info', rejected: 'bad', expired: 'bad' }[st.status] || 'info';
  const block = st.height !== undefined
    ? el('span', {}, linkTo('block', st.height, { text: `#${formatInt(st.height)}`, testid: 'tx-block-link' }),
      st.blockHash ? el('span', { class: 'muted' }, ' ', mono(st.blockHash)) : null)
    : null;
  return el('section', { 'data-testid': 'tx-page', 'data-status': st.status },
    el('div', { class: 'title' }, el('h1', {}, 'Transaction'),
      el('span', { class: `badge big ${statusClass}`, 'data-testid': 'tx-status' }, st.status)),
    el('p', { class: 'mono hash-line', 'data-testid': 'tx-hash' }, st.hash),
    txStatusNote(st),
    el('div', { class: 'card' }, fields([
      ['Block', block],
      ['Position in block', st.index !== undefined ? formatInt(st.index) : null],
      ['Time', st.timestampMs !== undefined ? el('span', {}, isoTime(st.timestampMs), ' (', age(st.timestampMs), ')') : null],
      ['From', tx ? linkTo('address', tx.from, { full: true, testid: 'tx-from' }) : null],
      ['To', tx ? linkTo('address', tx.to, { full: true, testid: 'tx-to' }) : null],
      ['Amount', tx ? amount(tx.amount, tok) : null],
      ['Fee', tx ? amount(tx.fee, tok) : null],
      ['Nonce', tx ? formatInt(tx.nonce) : null],
      ['Valid until height', tx ? (tx.validUntilHeight === null ? 'no limit' : formatInt(tx.validUntilHeight)) : null],
      ['Memo', tx ? (tx.memo ?? el('span', { class: 'muted' }, 'none')) : null],
      ['Chain id', tx ? tx.chainId : null],
      ['Signature', tx ? el('span', { class: 'mono break' }, tx.signature) : null],
      ['Body', tx ? null : el('span', { class: 'muted' }, 'This node no longer keeps the transaction itself.')],
    ])));
}

async function txPage(ctx, main, hash) {
  document.title = `Transaction ${short(hash)} · Taksa explorer`;
  main.append(loading('transaction'));
  const [first, tok] = await Promise.all([rpc('tx_get', [hash]), token()]);
  let status = null;
  const show = (st) => {
    if (!ctx.alive || st.status === status) return;
    status = st.status;
    main.replaceChildren(renderTx(st, tok));
  };
  show(first);
  // A pending transaction is worth watching: the page follows it until it leaves the pool.
  ctx.every(TX_PENDING_REFRESH_MS, async () => {
    if (status !== 'pending') return;
    try { show(await rpc('tx_get', [hash])); } catch { /* keep showing the last known status */ }
  });
}

function historyRow(item, self, tok) {
  const counterparty = item.direction === 'sent' ? item.to : item.from;
  return el('tr', { 'data-testid': 'history-row', 'data-hash': item.hash },
    el('td', {}, linkTo('block', item.height, { text: formatInt(item.height) })),
    el('td', {}, age(item.timestampMs)),
    el('td', {}, linkTo('tx', item.hash)),
    el('td', {}, el('span', { class: `badge dir-${item.direction}` }, item.direction)),
    el('td', {}, counterparty === self ? el('span', { class: 'muted' }, 'itself') : linkTo('address', counterparty)),
    el('td', { class: 'num' }, amount(item.amount, tok)),
    el('td', { class: 'num' }, amount(item.fee, tok)));
}

async function addressPage(ctx, main, address) {
  document.title = `Address ${short(address)} · Taksa explorer`;
  main.append(loading('account'));
  const [account, tok] = await Promise.all([rpc('account_get', [address]), token()]);
  if (!ctx.alive) return;
  const direction = el('select', { 'data-testid': 'history-direction', 'aria-label': 'Which transactions' },
    el('option', { value: 'all' }, 'Sent and received'),
    el('option', { value: 'sent' }, 'Sent'),
    el('option', { value: 'received' }, 'Received'));
  const newer = el('button', { type: 'button', 'data-testid': 'history-newer', disabled: true }, '← Newer');
  const older = el('button', { type: 'button', 'data-testid': 'history-older', disabled: true }, 'Older →');
  const tbody = el('tbody', { 'data-testid': 'history', 'aria-busy': 'true' }, emptyRow(7, 'Loading history…'));
  const problem = el('div', {});
  main.replaceChildren(el('section', { 'data-testid': 'address-page', 'data-address': account.address },
    el('h1', {}, 'Address'),
    el('p', { class: 'mono hash-line', 'data-testid': 'address-value' }, account.address),
    el('section', { class: 'stats' },
      el('div', { class: 'stat' }, el('div', { class: 'stat-label' }, 'Balance'), el('div', { class: 'stat-value', 'data-testid': 'address-balance' }, amount(account.balance, tok))),
      el('div', { class: 'stat' }, el('div', { class: 'stat-label' }, 'Nonce'), el('div', { class: 'stat-value' }, formatInt(account.nonce))),
      el('div', { class: 'stat' }, el('div', { class: 'stat-label' }, 'Next nonce'), el('div', { class: 'stat-value' }, formatInt(account.nextNonce))),
      el('div', { class: 'stat' }, el('div', { class: 'stat-label' }, 'Pending in pool'), el('div', { class: 'stat-value' }, formatInt(account.pending)))),
    el('div', { class: 'title-row' }, el('h2', {}, 'Transactions'), el('div', { class: 'controls' }, direction, newer, older)),
    problem,
    table(['Block', 'Age', 'Hash', 'Direction', 'Counterparty', 'Amount>', 'Fee>'], tbody)));

  // A page lists in its own order; `prevCursor` runs the other way. Rows always show newest first.
  let cursors = { newer: null, older: null };
  // A cursor carries its own order and direction, so it is sent alone; `order` is what it runs.
  const load = async (options, order) => {
    newer.disabled = older.disabled = true;
    tbody.setAttribute('aria-busy', 'true');
    try {
      let page = await rpc('account_getHistory', [account.address, { limit: HISTORY_PAGE_SIZE, ...options }]);
      if (order === 'oldest' && !page.nextCursor) {
        // Paged up to the newest entry: show a full newest page rather than a short one.
        order = 'newest';
        page = await rpc('account_getHistory', [account.address, { limit: HISTORY_PAGE_SIZE, order, direction: direction.value }]);
      }
      if (!ctx.alive) return;
      const items = order === 'oldest' ? (page.items || []).slice().reverse() : page.items || [];
      cursors = order === 'oldest'
        ? { newer: page.nextCursor ?? null, older: page.prevCursor ?? null }
        : { newer: page.prevCursor ?? null, older: page.nextCursor ?? null };
      tbody.replaceChildren(...(items.length ? items.map((i) => historyRow(i, account.address, tok)) : [emptyRow(7, 'No transactions.')]));
      problem.replaceChildren();
    } catch (err) {
      if (ctx.alive) problem.replaceChildren(errorBox('Could not load the history', err));
    }
    newer.disabled = !cursors.newer;
    older.disabled = !cursors.older;
    tbody.removeAttribute('aria-busy');
  };
  const fresh = () => load({ order: 'newest', direction: direction.value }, 'newest');
  direction.addEventListener('change', fresh);
  newer.addEventListener('click', () => load({ cursor: cursors.newer }, 'oldest'));
  older.addEventListener('click', () => load({ cursor: cursors.older }, 'newest'));
  await fresh();
}

/** One line naming a change to the validator set. */
function describeChange(c) {
  if (c.kind === 'add') return el('span', {}, 'add ', linkTo('address', c.key), ` as “${c.name}”`);
  if (c.kind === 'remove') return el('span', {}, 'remove ', linkTo('address', c.key));
  return el('span', {}, 'rotate ', linkTo('address', c.old), ' to ', linkTo('address', c.new));
}

/** How many past epochs' sets the validators page lists. */
const EPOCHS_LISTED = 10;

async function validatorsPage(ctx, main) {
  document.title = 'Validators · Taksa explorer';
  const tbody = el('tbody', { 'data-testid': 'validators' }, emptyRow(8, 'Loading validators…'));
  const problem = el('div', {});
  const epochLine = el('p', { 'data-testid': 'validator-epoch', class: 'muted' }, '');
  const changes = el('tbody', { 'data-testid': 'validator-changes' }, emptyRow(4, 'Loading votes…'));
  const sets = el('tbody', { 'data-testid': 'validator-sets' }, emptyRow(3, 'Loading sets…'));
  const offences = el('tbody', { 'data-testid': 'validator-offences' }, emptyRow(4, 'Loading offences…'));
  main.append(el('section', { 'data-testid': 'validators-page' },
    el('h1', {}, 'Validators'), epochLine, problem,
    table(['Name', 'Address', 'Signed>', 'Missed>', 'Proposed>', 'Uptime>', 'Last signed', 'Last seen'], tbody),
    el('h2', {}, 'Votes on the set'),
    table(['State', 'Change', 'Votes', 'Id'], changes),
    el('h2', {}, 'Sets by epoch'),
    table(['Epoch', 'Heights', 'Validators'], sets),
    el('h2', {}, 'Equivocations recorded on chain'),
    table(['Validator', 'Epoch, view', 'Recorded at', 'Evidence'], offences)));
  const refreshVotes = async () => {
    const v = await rpc('validators_getPendingVotes');
    if (!ctx.alive) return;
    const s = v.set;
    epochLine.textContent = `Epoch ${formatInt(s.epoch)} (heights ${formatInt(s.firstHeight)}–${formatInt(s.lastHeight)}): `
      + `${s.validators.length} validators; a quorum is ${s.quorum}. A change passes with a quorum of votes and applies when its epoch ends.`;
    const rows = [
      ...v.passed.map((p) => el('tr', { 'data-testid': 'change-row', 'data-state': 'passed' },
        el('td', {}, 'passed'), el('td', {}, describeChange(p.change)),
        el('td', {}, `passed at ${formatInt(p.height)}; applies from epoch ${formatInt(p.appliesFromEpoch)}`),
        el('td', { class: 'mono' }, p.id.slice(0, 18) + '…'))),
      ...v.pending.map((p) => el('tr', { 'data-testid': 'change-row', 'data-state': 'pending' },
        el('td', {}, 'pending'), el('td', {}, describeChange(p.change)),
        el('td', {}, `${p.voters.length} of ${p.needed} (expires after epoch ${formatInt(p.expiresAfterEpoch)})`),
        el('td', { class: 'mono' }, p.id.slice(0, 18) + '…'))),
    ];
    changes.replaceChildren(...(rows.length ? rows : [emptyRow(4, 'No change pending.')]));
    const proven = v.offences.map((o) => el('tr', { 'data-testid': 'offence-row' },
      el('td', { class: 'mono' }, o.validator),
      el('td', {}, `epoch ${formatInt(o.epoch)}, view ${formatInt(o.view)}`),
      el('td', {}, el('a', { href: href.block(o.height) }, formatInt(o.height))),
      el('td', { class: 'mono' }, o.evidence.slice(0, 18) + '…')));
    offences.replaceChildren(...(proven.length ? proven
      : [emptyRow(4, 'None in this epoch or the last: no validator signed two conflicting votes.')]));
    const length = s.lastHeight - s.firstHeight + 1;
    const epochs = [];
    for (let e = s.epoch; e >= 0 && epochs.length < EPOCHS_LISTED; e -= 1) epochs.push(e);
    const listed = await Promise.all(epochs.map((e) => rpc('validators_getSet', [e * length + 1])));
    if (!ctx.alive) return;
    sets.replaceChildren(...listed.map((set) => el('tr', { 'data-testid': 'set-row' },
      el('td', { class: 'num' }, formatInt(set.epoch)),
      el('td', {}, `${formatInt(set.firstHeight)}–${formatInt(set.lastHeight)}`),
      el('td', {}, set.validators.map((x) => x.name).join(', ')))));
  };
  const refresh = async () => {
    try {
      await refreshVotes();
      const list = await rpc('explorer_getValidators');
      if (!ctx.alive) return;
      tbody.replaceChildren(...(list.length ? list.map((v) => {
        const total = v.signed + v.missed;
        return el('tr', { 'data-testid': 'validator-row', 'data-address': v.address },
          el('td', {}, v.name),
          el('td', {}, linkTo('address', v.address)),
          el('td', { class: 'num' }, formatInt(v.signed)),
          el('td', { class: `num ${v.missed > 0 ? 'warn-text' : ''}` }, formatInt(v.missed)),
          el('td', { class: 'num' }, formatInt(v.proposed)),
          el('td', { class: 'num' }, total > 0 ? `${((100 * v.signed) / total).toFixed(1)}%` : '—'),
          el('td', {}, v.lastSignedHeight === null ? el('span', { class: 'muted' }, 'never') : linkTo('block', v.lastSignedHeight, { text: formatInt(v.lastSignedHeight) })),
          el('td', {}, age(v.lastSeenMs ?? undefined)));
      }) : [emptyRow(8, 'No validators.')]));
      problem.replaceChildren();
    } catch (err) {
      if (ctx.alive) problem.replaceChildren(errorBox('Could not load the validators', err));
    }
  };
  ctx.every(VALIDATORS_REFRESH_MS, refresh);
  await refresh();
}

// ---- Router -------------------------------------------------------------------------------

const ROUTES = [
  [/^\/?$/, homePage, 'the latest blocks'],
  [/^\/block\/([^/]+)$/, blockPage, 'the block'],
  [/^\/tx\/([^/]+)$/, txPage, 'the transaction'],
  [/^\/address\/([^/]+)$/, addressPage, 'the address'],
  [/^\/validators\/?$/, validatorsPage, 'the validators'],
];

let current = null;

/** A page's lifetime: its timers and listeners end when the route changes. */
function newContext() {
  const ctx = {
    alive: true,
    cleanups: [],
    cleanup(fn) { ctx.cleanups.push(fn); },
    every(ms, fn) { const t = setInterval(fn, ms); ctx.cleanup(() => clearInterval(t)); },
  };
  return ctx;
}

function safeDecode(s) {
  try { return decodeURIComponent(s); } catch { return s; }
}

async function route() {
  if (current) {
    current.alive = false;
    for (const fn of current.cleanups) fn();
  }
  const ctx = newContext();
  current = ctx;
  const main = document.getElementById('main');
  main.replaceChildren();
  window.scrollTo(0, 0);
  const path = location.hash.replace(/^#/, '') || '/';
  for (const a of document.querySelectorAll('.nav a')) {
    a.classList.toggle('active', a.getAttribute('href') === `#${path}` || (path === '/' && a.getAttribute('href') === '#/'));
  }
  const match = ROUTES.map(([re, page, what]) => [path.match(re), page, what]).find(([m]) => m);
  if (!match) {
    document.title = 'Not found · Taksa explorer';
    main.append(errorBox('Page not found', new Error(`There is no page at ${path}. Try the search box.`)));
    return;
  }
  const [m, page, what] = match;
  try {
    await page(ctx, main, ...m.slice(1).map(safeDecode));
  } catch (err) {
    if (ctx.alive) main.replaceChildren(errorBox(`Could not load ${what}`, err));
  }
}

function go(target) {
  if (location.hash === target) route();
  else location.hash = target;
}

// ---- Search and start -----------------------------------------------------------------------

function setupSearch() {
  const form = document.getElementById('search-form');
  const input = document.getElementById('search-input');
  const button = document.getElementById('search-button');
  const message = document.getElementById('search-message');
  const say = (text, isError) => {
    message.textContent = text;
    message.classList.toggle('is-error', Boolean(isError));
    message.hidden = !text;
  };
  window.addEventListener('hashchange', () => say(''));
  input.addEventListener('input', () => say(''));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const query = input.value.trim();
    if (!query) { say('Type a block height or hash, a transaction hash or an address.', true); return; }
    button.disabled = true;
    say('');
    try {
      const r = await rpc('explorer_search', [query]);
      if (r.kind === 'block') go(href.block(r.block.height));
      else if (r.kind === 'tx') go(href.tx(r.tx.hash));
      else if (r.kind === 'address') go(href.address(r.address));
      else if (r.kind === 'notFound') say(r.message || `Nothing matches “${query}”.`);
      else say('The node gave a search result this page does not know.', true);
    } catch (err) {
      say(describe(err), true);
    } finally {
      button.disabled = false;
    }
  });
}

async function showNetwork() {
  try {
    const info = await chainInfo();
    document.getElementById('footer').replaceChildren(
      el('span', {}, 'Network ', el('strong', {}, info.chainId)),
      el('span', {}, 'Genesis ', mono(info.genesisHash)),
      el('span', {}, 'Token ', `${info.tokenSymbol} (${info.tokenDecimals} decimals)`));
  } catch {
    // The pages say what failed; the footer just stays empty.
  }
}

const feed = new LiveFeed(document.getElementById('live-indicator'));

setupSearch();
window.addEventListener('hashchange', route);
setInterval(updateAges, 1000);
feed.start();
route();
showNetwork();
