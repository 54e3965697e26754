// The refund console's page: vanilla JS, no build step. Everything it shows comes from /api/* (already
// masked by the server); every action goes through the confirmation dialog and carries the CSRF token.
'use strict';

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const readOnly = document.querySelector('meta[name="read-only"]').content === 'true';
const view = document.getElementById('view');
const LANES = ['ap21', 'relay', 'provider', 'customer'];
const LANE_X = { ap21: 190, relay: 400, provider: 610, customer: 820 };
const SEQ_WIDTH = 900;
const ROW = 24;
const BUCKET_LABELS = ['≤10s', '≤1m', '≤5m', '≤15m', '≤1h', '≤6h', '≤1d', '≤3d', '≤7d', '>7d'];
let current = { order: undefined, refund: '' };

const esc = (value) => String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function money(amount) {
  if (!amount) return '';
  let digits = 2;
  try {
    digits = new Intl.NumberFormat('en', { style: 'currency', currency: amount.currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    // An unknown currency code: shown with two decimals.
  }
  return `${amount.currency} ${(amount.minor / 10 ** digits).toFixed(digits)}`;
}

const minorOf = (currency, minor) => money({ currency, minor });

function duration(seconds) {
  if (seconds < 60) return `${Math.round(seconds)}s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)}m`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)}h`;
  return `${(seconds / 86400).toFixed(1)}d`;
}

async function api(path, init) {
  const response = await fetch(path, { credentials: 'same-origin', ...init });
  const body = await response.json().catch(() => ({ error: `answered ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `answered ${response.status}`);
  return body;
}

function showError(error) {
  view.innerHTML = `<p class="error" id="error">${esc(error.message)}</p>`;
}

const stateBadge = (state) => `<span class="state state-${esc(state)}">${esc(state)}</span>`;

function actionButtons(refund, orderId) {
  if (readOnly || refund.state !== 'manual_review') return '';
  return ['redrive', 'reroute', 'release']
    .map((action) => `<button data-action="${action}" data-refund="${esc(refund.refundId ?? refund.id)}" data-order="${esc(orderId)}">${action}</button>`)
    .join(' ');
}

// ---- find -------------------------------------------------------------------------------------

async function findOrders(query) {
  const result = await api(`/api/find?q=${encodeURIComponent(query)}`);
  const orders = [...new Set(result.matches.map((match) => match.orderId))];
  if (orders.length === 1) {
    location.hash = `#/order/${encodeURIComponent(orders[0])}`;
    return;
  }
  const scanned =
    result.scanned === undefined
      ? ''
      : `<p class="hint">No index holds this: ${result.scanned} order(s) were scanned${result.scanIncomplete ? ' and the scan stopped at its bound before the end of the table, so there may be more' : ''}.</p>`;
  view.innerHTML = `<h2>${orders.length ? `${orders.length} orders match` : 'Nothing found'} for “${esc(result.query)}”</h2>${scanned}
    <table id="matches"><tr><th>order</th><th>refund</th><th>matched by</th></tr>${result.matches
      .map(
        (match) =>
          `<tr><td><a href="#/order/${encodeURIComponent(match.orderId)}">${esc(match.orderId)}</a></td><td>${esc(match.refundId)}</td><td>${esc(match.via)}</td></tr>`,
      )
      .join('')}</table>`;
}

// ---- order ------------------------------------------------------------------------------------

async function showOrder(orderId) {
  const order = await api(`/api/order?id=${encodeURIComponent(orderId)}`);
  current = { order, refund: current.order?.orderId === order.orderId ? current.refund : '' };
  renderOrder();
}

function renderOrder() {
  const order = current.order;
  const cur = order.currency;
  const ledgerState = order.ledgerProblems.length
    ? `<p class="error">Ledger INCONSISTENT: ${esc(order.ledgerProblems.join('; '))}</p>`
    : '<p class="ok">Ledger consistent</p>';
  const customer = order.customer ? [order.customer.firstName, order.customer.lastName, order.customer.email].filter(Boolean).join(' ') : '';
  const origin = Object.entries(order.origin)
    .map(([key, value]) => `${key} ${value}`)
    .join(', ');
  view.innerHTML = `
    <h1 id="order-title">Order ${esc(order.orderId)} <small>${esc(cur)}</small></h1>
    <p class="hint">opened ${esc(order.createdAt)} · version ${order.version}${order.dueAt ? ` · work due ${esc(order.dueAt)}` : ''}${customer ? ` · customer ${esc(customer)}` : ''}${origin ? ` · ${esc(origin)}` : ''}</p>
    <div class="cols">
      <div><h2>Lines</h2><table id="lines"><tr><th>line</th><th>item</th><th class="num">purchased</th><th class="num">reserved</th><th class="num">refunded</th><th class="num">available</th><th class="num">value</th></tr>
        ${order.lines
          .map(
            (line) =>
              `<tr><td>${esc(line.lineId)}</td><td>${esc([line.sku, line.title].filter(Boolean).join(' '))}${line.nonReturnable ? ` <em>(${esc(line.nonReturnable)})</em>` : ''}</td><td class="num">${line.purchased}</td><td class="num">${line.reserved}</td><td class="num">${line.refunded}</td><td class="num">${line.available}</td><td class="num">${minorOf(cur, line.valueMinor)}</td></tr>`,
          )
          .join('')}</table></div>
      <div><h2>Payments</h2><table id="payments"><tr><th>payment</th><th>provider</th><th>transaction</th><th class="num">captured</th><th class="num">reserved</th><th class="num">refunded</th><th class="num">available</th></tr>
        ${order.payments
          .map(
            (payment) =>
              `<tr><td>${esc(payment.paymentId)}</td><td>${esc(payment.provider)}${payment.cardLastFour ? ` ····${esc(payment.cardLastFour)}` : ''}</td><td>${esc(payment.transactionId ?? '')}</td><td class="num">${minorOf(cur, payment.capturedMinor)}</td><td class="num">${minorOf(cur, payment.reservedMinor)}</td><td class="num">${minorOf(cur, payment.refundedMinor)}</td><td class="num">${minorOf(cur, payment.availableMinor)}</td></tr>`,
          )
          .join('')}</table></div>
    </div>
    ${ledgerState}
    <h2>Refunds (${order.refunds.length}) <small class="hint">click one to draw only its part of the timeline</small></h2>
    <table id="refunds"><tr><th>refund</th><th>state</th><th>channel</th><th>provider</th><th class="num">amount</th><th>paid</th><th class="num">attempts</th><th>reason</th><th></th></tr>
      ${order.refunds
        .map(
          (refund) =>
            `<tr data-refund="${esc(refund.id)}"${refund.id === current.refund ? ' class="selected"' : ''}><td>${esc(refund.id)}</td><td>${stateBadge(refund.state)}</td><td>${esc(refund.channel)}</td><td>${esc(refund.provider)}</td><td class="num">${money(refund.amount)}</td><td>${esc(refund.paidAt ?? '')}</td><td class="num">${refund.attempts}</td><td>${esc(refund.reason ?? '')}</td><td>${actionButtons(refund, order.orderId)}</td></tr>`,
        )
        .join('')}</table>
    <h2>Timeline${current.refund ? ` of ${esc(current.refund)} <a href="#" id="all-refunds">(all refunds)</a>` : ''} <small class="hint">click a step for its details and raw message</small></h2>
    <div class="cols"><div id="sequence-box">${sequence(order, current.refund)}</div><div class="detail" id="detail"><p class="hint">Select a step.</p></div></div>`;
}

function sequence(order, refundId) {
  const steps = order.steps.map((step, i) => ({ ...step, i })).filter((step) => !refundId || step.refundId === refundId || !step.refundId);
  const height = 40 + steps.length * ROW + 10;
  const parts = [
    `<svg class="sequence" id="sequence" width="${SEQ_WIDTH}" height="${height}" viewBox="0 0 ${SEQ_WIDTH} ${height}" xmlns="http://www.w3.org/2000/svg">`,
    '<defs><marker id="head" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#2f5fb3"/></marker>',
    '<marker id="head-money" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#15803d"/></marker></defs>',
  ];
  for (const lane of LANES) {
    parts.push(
      `<text class="lane-head" x="${LANE_X[lane]}" y="18" text-anchor="middle">${esc(order.lanes[lane])}</text><line class="lane" x1="${LANE_X[lane]}" y1="26" x2="${LANE_X[lane]}" y2="${height}"/>`,
    );
  }
  steps.forEach((step, row) => {
    const y = 40 + row * ROW;
    const x1 = LANE_X[step.from];
    const x2 = LANE_X[step.to];
    const label = `${step.label}${step.refundId && !refundId ? ` · ${step.refundId}` : ''}${step.change ? ` (${step.change})` : ''}${step.inbox ? ' ✉' : ''}`;
    parts.push(
      `<g class="ev" data-i="${step.i}"><rect x="0" y="${y}" width="${SEQ_WIDTH}" height="${ROW}" fill="transparent"/><text class="t" x="4" y="${y + 15}">${esc(step.at.slice(11, 23))}</text>`,
    );
    if (x1 === x2) {
      parts.push(`<circle class="self" cx="${x1}" cy="${y + 12}" r="4"/><text x="${x1 + 9}" y="${y + 15}">${esc(label)}</text></g>`);
    } else {
      const dir = x2 > x1 ? 1 : -1;
      parts.push(
        `<line class="${step.label === 'money to the customer' ? 'money' : 'arrow'}" x1="${x1 + dir * 3}" y1="${y + 17}" x2="${x2 - dir * 5}" y2="${y + 17}"/><text x="${(x1 + x2) / 2}" y="${y + 12}" text-anchor="middle">${esc(label)}</text></g>`,
      );
    }
  });
  parts.push('</svg>');
  return parts.join('');
}

async function showStep(index) {
  const step = current.order.steps[index];
  const detail = document.getElementById('detail');
  const rows = [
    ['at', step.at],
    ['by', step.actor],
    ['event', step.label],
    ['refund', step.refundId],
    ['change', step.change],
    ['note', step.note],
  ].filter(([, value]) => value);
  detail.innerHTML = `<table>${rows.map(([key, value]) => `<tr><th>${key}</th><td>${esc(value)}</td></tr>`).join('')}</table>${step.inbox ? '<p class="hint">loading the raw message…</p>' : '<p class="hint">No raw message: refund-relay itself made this step.</p>'}`;
  if (!step.inbox) return;
  try {
    const raw = await api(`/api/raw?order=${encodeURIComponent(current.order.orderId)}&inbox=${encodeURIComponent(step.inbox)}`);
    detail.querySelector('p.hint').outerHTML =
      `<h3>Raw message from ${esc(raw.source)} <small>received ${esc(raw.receivedAt)}, masked</small></h3><pre id="raw">${esc(raw.raw)}</pre>`;
  } catch (error) {
    detail.querySelector('p.hint').outerHTML = `<p class="error">${esc(error.message)}</p>`;
  }
}

// ---- manual review ----------------------------------------------------------------------------

async function showReview() {
  const review = await api('/api/review');
  view.innerHTML = `<h2>Manual review: ${review.refunds.length} refund(s) <small class="hint">(read from all ${review.scanned} orders)</small></h2>
    <table id="review"><tr><th>since</th><th>age</th><th>order</th><th>refund</th><th>channel</th><th class="num">amount</th><th class="num">attempts</th><th>reason</th><th></th></tr>
    ${review.refunds
      .map(
        (entry) =>
          `<tr data-refund="${esc(entry.refundId)}"><td>${esc(entry.since)}</td><td>${duration(entry.ageSeconds)}</td><td><a href="#/order/${encodeURIComponent(entry.orderId)}">${esc(entry.orderId)}</a></td><td>${esc(entry.refundId)}</td><td>${esc(entry.channel)}</td><td class="num">${money(entry.amount)}</td><td class="num">${entry.attempts}</td><td>${esc(entry.reason ?? '(no reason recorded)')}</td><td>${actionButtons({ ...entry, state: 'manual_review' }, entry.orderId)}</td></tr>`,
      )
      .join('')}</table>
    <h2>Ap21 records set aside by the poller: ${review.ap21.length}</h2>
    <table id="isolations"><tr><th>since</th><th>age</th><th>set aside</th><th>Ap21 order</th><th>order number</th><th>reason</th></tr>
    ${review.ap21
      .map(
        (entry) =>
          `<tr><td>${esc(entry.since)}</td><td>${duration(entry.ageSeconds)}</td><td>${esc(entry.subject)}</td><td>${esc(entry.ap21OrderId ?? '')}</td><td>${esc(entry.orderNumber ?? '')}</td><td>${esc(entry.reason)}</td></tr>`,
      )
      .join('')}</table>
    <p class="hint">Retry a set-aside Ap21 order with: npm run ops -- retry-ap21 &lt;ap21 order&gt;</p>`;
}

// ---- actions ----------------------------------------------------------------------------------

const dialog = document.getElementById('confirm');
let pending;

function openConfirm(action, refundId, orderId) {
  pending = { action, refundId, orderId };
  document.getElementById('confirm-title').textContent = `${action} ${refundId}?`;
  document.getElementById('confirm-what').textContent = {
    redrive: 'Out of manual review with a fresh attempt budget; the dispatcher tries again.',
    reroute: 'To card reversal (an Apace refund cancels its offer first).',
    release: 'Ends unpaid: its units become available again.',
  }[action];
  document.getElementById('confirm-reason').value = '';
  document.getElementById('confirm-checked').checked = false;
  document.getElementById('confirm-checked-row').hidden = action !== 'release';
  document.getElementById('confirm-error').textContent = '';
  dialog.showModal();
}

document.getElementById('confirm-cancel').addEventListener('click', () => dialog.close());
document.getElementById('confirm-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const reason = document.getElementById('confirm-reason').value.trim();
  if (!reason) {
    document.getElementById('confirm-error').textContent = 'A reason is required.';
    return;
  }
  try {
    const result = await api(`/api/actions/${pending.action}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify({
        refundId: pending.refundId,
        orderId: pending.orderId,
        reason,
        ...(pending.action === 'release' && { providerChecked: document.getElementById('confirm-checked').checked }),
      }),
    });
    dialog.close();
    await route();
    view.insertAdjacentHTML('afterbegin', `<p class="ok" id="action-result">${esc(result.message)}</p>`);
  } catch (error) {
    document.getElementById('confirm-error').textContent = error.message;
  }
});

// ---- charts -----------------------------------------------------------------------------------

function bars(title, id, items, { width = 420, format = (v) => String(v), max } = {}) {
  const rowH = 20;
  const height = 30 + items.length * rowH;
  const top = max ?? Math.max(1, ...items.map((item) => item.value));
  const parts = [
    `<svg class="chart" id="${id}" width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg"><text x="8" y="16" font-weight="600">${esc(title)}</text>`,
  ];
  items.forEach((item, i) => {
    const y = 26 + i * rowH;
    const w = Math.round(((width - 240) * item.value) / top);
    parts.push(
      `<text x="8" y="${y + 13}">${esc(item.label)}</text><rect x="170" y="${y + 2}" width="${w}" height="14" fill="${item.color ?? '#2f5fb3'}"/><text x="${174 + w}" y="${y + 13}">${esc(format(item.value, item))}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

function histogram(entry) {
  const width = 420;
  const height = 170;
  const top = Math.max(1, ...entry.buckets.map((bucket) => bucket.count));
  const barW = (width - 40) / entry.buckets.length;
  const parts = [
    `<svg class="chart" data-channel="${esc(entry.channel)}" width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">`,
    `<text x="8" y="16" font-weight="600">${esc(entry.channel)}: ${entry.count} paid · p50 ${duration(entry.p50)} · p90 ${duration(entry.p90)} · max ${duration(entry.max)}</text>`,
  ];
  entry.buckets.forEach((bucket, i) => {
    const h = Math.round((100 * bucket.count) / top);
    const x = 20 + i * barW;
    parts.push(
      `<rect x="${x + 2}" y="${130 - h}" width="${barW - 4}" height="${h}" fill="#2f5fb3"><title>${bucket.count}</title></rect><text x="${x + barW / 2}" y="145" text-anchor="middle">${BUCKET_LABELS[i]}</text>${bucket.count ? `<text x="${x + barW / 2}" y="${126 - h}" text-anchor="middle">${bucket.count}</text>` : ''}`,
    );
  });
  parts.push(`<text x="8" y="163" class="hint">time from return (refund created) to money (paid)</text></svg>`);
  return parts.join('');
}

function perDayChart(days) {
  const width = 620;
  const height = 170;
  const top = Math.max(1, ...days.flatMap((day) => [day.created, day.paid]));
  const slot = (width - 40) / days.length;
  const parts = [
    `<svg class="chart" id="chart-per-day" width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg"><text x="8" y="16" font-weight="600">Refunds per day: created <tspan fill="#2f5fb3">■</tspan> paid <tspan fill="#15803d">■</tspan></text>`,
  ];
  days.forEach((day, i) => {
    const x = 20 + i * slot;
    const hc = Math.round((100 * day.created) / top);
    const hp = Math.round((100 * day.paid) / top);
    parts.push(
      `<rect x="${x + 2}" y="${135 - hc}" width="${slot / 2 - 3}" height="${hc}" fill="#2f5fb3"><title>${day.day}: ${day.created} created</title></rect>`,
      `<rect x="${x + slot / 2}" y="${135 - hp}" width="${slot / 2 - 3}" height="${hp}" fill="#15803d"><title>${day.day}: ${day.paid} paid</title></rect>`,
      `<text x="${x + slot / 2}" y="150" text-anchor="middle">${day.day.slice(5)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

async function showCharts() {
  const stats = await api('/api/stats');
  const states = Object.entries(stats.perState).map(([state, value]) => ({
    label: state,
    value,
    color: state === 'paid' ? '#15803d' : state === 'manual_review' ? '#c2410c' : '#2f5fb3',
  }));
  const failures = stats.providerFailures.map((entry) => ({
    label: entry.provider,
    value: entry.rate,
    item: entry,
    color: entry.rate > 0.2 ? '#b91c1c' : '#2f5fb3',
  }));
  view.innerHTML = `<h2>How it is going <small class="hint">(${stats.scanned} orders read${stats.scanIncomplete ? '; the scan stopped at its bound, so these cover part of the table' : ''})</small></h2>
    <h2>Return → money, per channel</h2><div class="cols" id="chart-return-to-money">${stats.returnToMoney.map(histogram).join('') || '<p class="hint">No paid refunds yet.</p>'}</div>
    <div class="cols">${bars('Refunds per state', 'chart-per-state', states)}${perDayChart(stats.perDay)}
    ${bars(`Provider failure rate, last ${stats.failureWindowDays} days`, 'chart-failures', failures, {
      max: 1,
      format: (value, item) => `${Math.round(value * 100)}% (${item.item.failed} of ${item.item.failed + item.item.ok})`,
    })}</div>`;
}

// ---- routing ----------------------------------------------------------------------------------

async function route() {
  const [, kind, ...rest] = location.hash.split('/');
  const arg = decodeURIComponent(rest.join('/'));
  try {
    if (kind === 'order' && arg) await showOrder(arg);
    else if (kind === 'find' && arg) await findOrders(arg);
    else if (kind === 'review') await showReview();
    else if (kind === 'charts') await showCharts();
  } catch (error) {
    showError(error);
  }
}

document.getElementById('search').addEventListener('submit', (event) => {
  event.preventDefault();
  const query = document.getElementById('q').value.trim();
  if (!query) return;
  const hash = `#/find/${encodeURIComponent(query)}`;
  if (location.hash === hash) void route();
  else location.hash = hash;
});

view.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-action]');
  if (button) return openConfirm(button.dataset.action, button.dataset.refund, button.dataset.order);
  if (event.target.id === 'all-refunds') {
    event.preventDefault();
    current.refund = '';
    return renderOrder();
  }
  const step = event.target.closest('g.ev');
  if (step) return void showStep(Number(step.dataset.i));
  const row = event.target.closest('#refunds tr[data-refund]');
  if (row && current.order) {
    current.refund = current.refund === row.dataset.refund ? '' : row.dataset.refund;
    renderOrder();
  }
});

document.getElementById('read-only-badge').hidden = !readOnly;
window.addEventListener('hashchange', () => void route());
void route();
