// The page of `flotilla dashboard`. The contract with the server (routes, JSON shapes, DOM
// hooks the e2e test reads) is in notes/dashboard-contract.md. No library, no build step.
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';
const HEALTHS = new Set(['Ready', 'Progressing', 'Degraded', 'Held', 'Unknown', 'Missing']);
const ACTIONS = {
  promote: { label: 'Promote', question: (id) => `Promote ${id}: skip the remaining pauses?` },
  abort: { label: 'Abort', question: (id) => `Abort the release of ${id}: roll back to the stable version now?` },
  undo: { label: 'Undo', question: (id) => `Undo ${id}: release an earlier revision again, without pauses?` },
};
// Rough glyph widths (px) to truncate SVG text without measuring it: measuring 1,000 nodes
// would force a layout per node.
const CHAR_PX = { name: 7.8, small: 6.4, mono: 6.7 };

const $ = (id) => document.getElementById(id);
const ui = {
  graph: $('graph'), edges: $('edges'), nodes: $('nodes'), empty: $('empty'),
  ns: $('filter-namespace'), cls: $('filter-class'), health: $('filter-health'), search: $('filter-search'),
  stats: $('stats'), connection: $('connection'),
  panel: $('panel'), title: $('panel-title'), panelHealth: $('panel-health'), panelRelease: $('panel-release'),
  message: $('panel-message'), panelError: $('panel-error'), tree: $('panel-tree'),
  events: $('panel-events'), eventsEmpty: $('panel-events-empty'), history: $('panel-history'),
  result: $('action-result'), close: $('panel-close'),
  dialog: $('confirm'), confirmText: $('confirm-text'), revisionRow: $('confirm-revision-row'),
  revision: $('confirm-revision'), confirmError: $('confirm-error'), yes: $('confirm-yes'), no: $('confirm-no'),
};
const actionButtons = {
  promote: $('action-promote'), abort: $('action-abort'), undo: $('action-undo'),
};

const state = {
  snapshot: null,
  nodeById: new Map(),
  nodeEls: new Map(), // node id -> <g>, reused across snapshots
  edgeEls: new Map(), // "from\nto" -> <path>
  selected: null, // {id, namespace, name}
  selectedSig: null, // what of the selected node, when changed, makes the details stale
  detailsReq: 0, // ignores replies to superseded requests
  pendingAction: null,
  dashboardLost: false,
};

window.flotillaRenderTimes = [];
window.flotillaFirstRender = undefined;

// ---------- helpers ----------

function svgEl(tag, attrs, parent) {
  const el = document.createElementNS(SVG_NS, tag);
  if (attrs) for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

function htmlEl(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function fit(text, px, charPx) {
  const max = Math.max(2, Math.floor(px / charPx));
  return text.length <= max ? text : text.slice(0, max - 1) + '…';
}

const healthOf = (n) => (HEALTHS.has(n.health) ? n.health : 'Unknown');
const edgeKey = (e) => `${e.from}\n${e.to}`;
const serviceUrl = (ns, name) => `/api/services/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;

function nodeLabel(n) {
  const parts = [n.id];
  if (n.ghost) {
    parts.push('Missing: named in dependsOn but not found');
    return parts.join('; ');
  }
  parts.push(n.reason ? `${healthOf(n)} (${n.reason})` : healthOf(n));
  if (n.replicas) parts.push(`${n.replicas.ready} of ${n.replicas.desired} replicas ready`);
  if (n.release) parts.push(`release: ${n.release.text}`);
  if (n.message) parts.push(n.message);
  return parts.join('; ');
}

// ---------- nodes ----------

// A text whose full value shows on hover (the visible one may be truncated). The <title>
// sits in a wrapping <g>, not in the <text>, so the text's textContent is just what shows.
function titledText(cls, parent, attrs) {
  const wrap = svgEl('g', null, parent);
  const title = svgEl('title', null, wrap);
  const text = svgEl('text', { class: cls, ...attrs }, wrap);
  return { wrap, text, title };
}

function createNodeEl() {
  const g = svgEl('g', { class: 'node', tabindex: '0', role: 'button' });
  const p = {};
  p.ring = svgEl('rect', { class: 'ring', x: -4, y: -4, rx: 11 }, g);
  p.box = svgEl('rect', { class: 'box', rx: 8 }, g);
  p.name = titledText('name', g, { x: 10, y: 18 });
  p.ns = svgEl('text', { class: 'namespace', y: 18, 'text-anchor': 'end' }, g);
  p.icon = svgEl('use', { class: 'icon', x: 10, y: 25, width: 14, height: 14 }, g);
  p.health = svgEl('text', { class: 'health-word', x: 29, y: 36 }, g);
  p.replicas = titledText('replicas', g, { y: 36, 'text-anchor': 'end' });
  p.image = titledText('image', g, { x: 10, y: 53 });
  p.cls = titledText('class', g, { x: 10, y: 70 });
  p.release = titledText('release', g, { y: 70, 'text-anchor': 'end' });
  g._parts = p;
  return g;
}

function updateNode(g, n, multiNs) {
  // Most nodes do not change between snapshots: skip them whole.
  const sig = JSON.stringify(n) + multiNs;
  if (g._sig === sig) return;
  g._sig = sig;
  const p = g._parts;
  const health = healthOf(n);
  const w = n.w;
  const h = n.h;
  const inner = w - 20;

  g.setAttribute('transform', `translate(${n.x} ${n.y})`);
  g.setAttribute('data-id', n.id);
  g.setAttribute('data-health', health);
  g.setAttribute('data-ghost', String(Boolean(n.ghost)));
  g.setAttribute('aria-label', nodeLabel(n));
  if (n.ghost) g.setAttribute('aria-disabled', 'true');
  else g.removeAttribute('aria-disabled');

  p.ring.setAttribute('width', w + 8);
  p.ring.setAttribute('height', h + 8);
  p.box.setAttribute('width', w);
  p.box.setAttribute('height', h);
  p.box.setAttribute('class', `box health-${health}`);

  const nsText = multiNs ? n.namespace : '';
  p.ns.textContent = nsText;
  p.ns.setAttribute('x', w - 10);
  const nsPx = nsText ? nsText.length * CHAR_PX.small + 10 : 0;
  p.name.text.textContent = fit(n.name, Math.max(40, inner - nsPx), CHAR_PX.name);
  p.name.title.textContent = n.id;

  p.icon.setAttribute('href', `#icon-${health}`);
  p.health.textContent = health;

  p.replicas.text.setAttribute('x', w - 10);
  p.replicas.text.textContent = n.replicas && !n.ghost ? `${n.replicas.ready}/${n.replicas.desired}` : '';
  p.replicas.title.textContent = n.replicas ? `${n.replicas.ready} of ${n.replicas.desired} replicas ready` : '';

  const image = n.ghost ? 'not found' : (n.image || 'no image');
  p.image.text.textContent = fit(image, inner, CHAR_PX.mono);
  p.image.title.textContent = n.ghost ? `${n.id} is named in dependsOn but does not exist` : image;

  const release = n.release;
  const releaseText = release ? String(release.text || '') : '';
  const releasePx = releaseText.length * CHAR_PX.small;
  const cls = n.class ? `class ${n.class}` : '';
  p.cls.text.textContent = cls ? fit(cls, inner - Math.min(releasePx, inner * 0.7) - 8, CHAR_PX.small) : '';
  p.cls.title.textContent = cls;
  // The release line only exists while a release is under way, and always holds the whole
  // release text (the e2e test reads it): a long one is squeezed rather than cut.
  if (release) {
    p.release.text.setAttribute('x', w - 10);
    p.release.text.textContent = releaseText;
    if (releasePx > inner * 0.7) {
      p.release.text.setAttribute('textLength', Math.round(cls ? inner * 0.7 : inner));
      p.release.text.setAttribute('lengthAdjust', 'spacingAndGlyphs');
    } else {
      p.release.text.removeAttribute('textLength');
    }
    p.release.title.textContent = `${releaseText}: ${release.stableImage || '?'} → ${release.canaryImage || '?'}`;
    if (!p.release.wrap.isConnected) g.appendChild(p.release.wrap);
  } else {
    p.release.wrap.remove();
  }
}

// ---------- edges ----------

// Rounded corners on the server's polyline; a plain S-curve when it is just two points.
function edgePath(points) {
  if (!points || points.length < 2) return '';
  const [x0, y0] = points[0];
  if (points.length === 2) {
    const [x1, y1] = points[1];
    const mx = (x0 + x1) / 2;
    return `M${x0} ${y0}C${mx} ${y0} ${mx} ${y1} ${x1} ${y1}`;
  }
  let d = `M${x0} ${y0}`;
  for (let i = 1; i < points.length - 1; i++) {
    const [px, py] = points[i - 1];
    const [cx, cy] = points[i];
    const [nx, ny] = points[i + 1];
    const inLen = Math.hypot(cx - px, cy - py) || 1;
    const outLen = Math.hypot(nx - cx, ny - cy) || 1;
    const r = Math.min(12, inLen / 2, outLen / 2);
    const ax = cx - ((cx - px) / inLen) * r;
    const ay = cy - ((cy - py) / inLen) * r;
    const bx = cx + ((nx - cx) / outLen) * r;
    const by = cy + ((ny - cy) / outLen) * r;
    d += `L${ax} ${ay}Q${cx} ${cy} ${bx} ${by}`;
  }
  const [xl, yl] = points[points.length - 1];
  return `${d}L${xl} ${yl}`;
}

function createEdgeEl() {
  const path = svgEl('path', { class: 'edge' });
  path._title = svgEl('title', null, path);
  return path;
}

function updateEdge(path, e) {
  const sig = JSON.stringify(e);
  if (path._sig === sig) return;
  path._sig = sig;
  const admission = ['local', 'admitted', 'refused', 'missing'].includes(e.admission) ? e.admission : 'local';
  path.setAttribute('data-from', e.from);
  path.setAttribute('data-to', e.to);
  path.setAttribute('data-admission', e.admission);
  path.setAttribute('data-kind', e.kind === 'backing' ? 'backing' : 'dependsOn');
  path.setAttribute('d', edgePath(e.points));
  // An attribute, not CSS: url(#…) in an external stylesheet may resolve against the sheet.
  path.setAttribute('marker-end', `url(#arrow-${admission})`);
  const what = {
    local: 'depends on',
    admitted: 'depends on (other namespace, admitted)',
    refused: 'dependency refused',
    missing: 'depends on a missing service',
  }[admission];
  const said = e.kind === 'backing' ? `uses its backing service ${e.label}` : what;
  path._title.textContent = `${e.from} → ${e.to}: ${said}${e.message ? ` — ${e.message}` : ''}`;
}

// ---------- rendering ----------

function fillSelect(select, values) {
  const current = select.value;
  const options = [...new Set(values)].sort();
  // Keep the user's choice even if it vanished from this snapshot, rather than silently
  // switching to "All".
  if (current && !options.includes(current)) options.push(current);
  const sig = options.join('\n');
  if (select._sig === sig) return; // rebuilding would close a select the user has open
  select._sig = sig;
  select.replaceChildren(new Option('All', ''), ...options.map((v) => new Option(v, v)));
  select.value = current;
}

function render(snap) {
  const nodes = Array.isArray(snap.nodes) ? snap.nodes : [];
  const edges = Array.isArray(snap.edges) ? snap.edges : [];
  state.snapshot = { ...snap, nodes, edges };
  state.nodeById = new Map(nodes.map((n) => [n.id, n]));

  ui.graph.setAttribute('width', snap.width || 0);
  ui.graph.setAttribute('height', snap.height || 0);
  ui.graph.setAttribute('viewBox', `0 0 ${snap.width || 0} ${snap.height || 0}`);
  ui.empty.hidden = nodes.length > 0;

  const namespaces = nodes.map((n) => n.namespace);
  const multiNs = new Set(namespaces).size > 1;
  fillSelect(ui.ns, namespaces);
  fillSelect(ui.cls, nodes.map((n) => n.class).filter(Boolean));

  const focused = document.activeElement;

  for (const [id, g] of state.nodeEls) {
    if (!state.nodeById.has(id)) {
      g.remove();
      state.nodeEls.delete(id);
    }
  }
  // Keep the DOM (hence Tab) order the snapshot's, moving only what is out of place.
  let prev = null;
  for (const n of nodes) {
    let g = state.nodeEls.get(n.id);
    if (!g) {
      g = createNodeEl();
      state.nodeEls.set(n.id, g);
    }
    updateNode(g, n, multiNs);
    g.classList.toggle('selected', state.selected !== null && n.id === state.selected.id);
    const expected = prev ? prev.nextSibling : ui.nodes.firstChild;
    if (g !== expected) ui.nodes.insertBefore(g, expected);
    prev = g;
  }
  if (focused && focused !== document.activeElement && focused.isConnected) {
    focused.focus({ preventScroll: true }); // moving an element may blur it
  }

  const edgeKeys = new Set(edges.map(edgeKey));
  for (const [key, path] of state.edgeEls) {
    if (!edgeKeys.has(key)) {
      path.remove();
      state.edgeEls.delete(key);
    }
  }
  for (const e of edges) {
    const key = edgeKey(e);
    let path = state.edgeEls.get(key);
    if (!path) {
      path = createEdgeEl();
      state.edgeEls.set(key, path);
      ui.edges.appendChild(path);
    }
    updateEdge(path, e);
  }

  applyFilters();
  updateConnection();
  refreshPanel();
}

function applyFilters() {
  const snap = state.snapshot;
  if (!snap) return;
  const ns = ui.ns.value;
  const cls = ui.cls.value;
  const health = ui.health.value;
  const q = ui.search.value.trim().toLowerCase();
  const hidden = new Set();
  let count = 0;
  for (const n of snap.nodes) {
    const show = (!ns || n.namespace === ns)
      && (!cls || n.class === cls)
      && (!health || n.health === health)
      && (!q || String(n.name || '').toLowerCase().includes(q));
    state.nodeEls.get(n.id).classList.toggle('hidden', !show);
    if (!show) hidden.add(n.id);
    else if (!n.ghost) count += 1;
  }
  for (const e of snap.edges) {
    state.edgeEls.get(edgeKey(e)).classList.toggle('hidden', hidden.has(e.from) || hidden.has(e.to));
  }
  ui.stats.textContent = `${count} services`;
  ui.stats.setAttribute('data-version', String(snap.version));
  ui.graph.setAttribute('aria-label', `dependency graph of ${count} services`);
}

// ---------- connection ----------

function setConnection(name, text) {
  if (ui.connection.dataset.state !== name) ui.connection.dataset.state = name;
  if (ui.connection.textContent !== text) ui.connection.textContent = text;
  document.body.classList.toggle('stale', name !== 'live');
}

function updateConnection() {
  const cluster = (state.snapshot && state.snapshot.cluster) || { connected: true };
  if (state.dashboardLost) {
    setConnection('dashboard-lost', 'dashboard unreachable — reconnecting…');
  } else if (!cluster.connected) {
    setConnection('cluster-lost', `connection to the cluster lost: ${cluster.message || 'no reason given'} — retrying`);
  } else {
    setConnection('live', 'live');
  }
}

// Snapshots are rendered on the next animation frame; if several arrive before it, only
// the latest is drawn (its latency counted from the oldest undrawn arrival).
let pending = null;
let pendingSince = 0;
let frameQueued = false;

function onSnapshot(ev) {
  const arrived = performance.now();
  let snap;
  try {
    snap = JSON.parse(ev.data);
  } catch (err) {
    console.error('flotilla: unreadable snapshot', err);
    return;
  }
  if (!pending) pendingSince = arrived;
  pending = snap;
  state.dashboardLost = false;
  if (!frameQueued) {
    frameQueued = true;
    requestAnimationFrame(flush);
  }
}

function flush() {
  frameQueued = false;
  const snap = pending;
  const since = pendingSince;
  pending = null;
  if (!snap) return;
  render(snap);
  const now = performance.now();
  const times = window.flotillaRenderTimes;
  times.push({ version: snap.version, nodes: state.snapshot.nodes.length, ms: now - since });
  if (times.length > 1000) times.shift(); // the page may stay open for days
  if (window.flotillaFirstRender === undefined) window.flotillaFirstRender = now;
}

let retryTimer = null;

function connect() {
  const source = new EventSource('/api/stream');
  source.addEventListener('snapshot', onSnapshot);
  source.addEventListener('error', () => {
    state.dashboardLost = true;
    updateConnection();
    // EventSource retries by itself, except after a non-200 or non-SSE reply, when it
    // closes for good: then retry ourselves.
    if (source.readyState === EventSource.CLOSED && retryTimer === null) {
      retryTimer = setTimeout(() => {
        retryTimer = null;
        connect();
      }, 3000);
    }
  });
}

// ---------- panel ----------

const detailSig = (n) => (n ? JSON.stringify([n.health, n.reason, n.message, n.release]) : 'gone');

function activate(g) {
  if (g.getAttribute('data-ghost') === 'true') return;
  const n = state.nodeById.get(g.getAttribute('data-id'));
  if (n) openPanel(n);
}

function openPanel(n) {
  if (state.selected) {
    const old = state.nodeEls.get(state.selected.id);
    if (old) old.classList.remove('selected');
  }
  state.selected = { id: n.id, namespace: n.namespace, name: n.name };
  const g = state.nodeEls.get(n.id);
  if (g) g.classList.add('selected');
  state.selectedSig = detailSig(n);

  ui.panel.hidden = false;
  ui.result.textContent = '';
  ui.result.removeAttribute('data-outcome');
  showSummary(n);
  ui.tree.textContent = 'loading…';
  ui.history.textContent = '';
  ui.events.replaceChildren();
  ui.eventsEmpty.hidden = true;
  setActions(null);
  ui.title.focus({ preventScroll: true });
  loadDetails();
}

function closePanel() {
  if (ui.panel.hidden) return;
  ui.panel.hidden = true;
  state.detailsReq += 1;
  const sel = state.selected;
  state.selected = null;
  state.selectedSig = null;
  const g = sel && state.nodeEls.get(sel.id);
  if (g) {
    g.classList.remove('selected');
    if (!g.classList.contains('hidden')) g.focus();
  }
}

function showSummary(n) {
  ui.title.textContent = n.id;
  const health = healthOf(n);
  ui.panelHealth.textContent = n.reason ? `${health} (${n.reason})` : health;
  ui.panelHealth.setAttribute('data-tone', health);
  ui.panelRelease.textContent = n.release ? `release: ${n.release.text}` : '';
  ui.message.textContent = n.message || '';
}

// Called after each render: keeps the open panel in step with the cluster.
function refreshPanel() {
  if (!state.selected) return;
  const n = state.nodeById.get(state.selected.id);
  const sig = detailSig(n);
  if (sig === state.selectedSig) return;
  state.selectedSig = sig;
  if (n) showSummary(n);
  else ui.message.textContent = 'This service is no longer in the cluster.';
  loadDetails();
}

function setActions(actions) {
  for (const [name, button] of Object.entries(actionButtons)) {
    button.disabled = !(actions && actions[name]);
  }
}

async function loadDetails() {
  const sel = state.selected;
  if (!sel) return;
  const req = ++state.detailsReq;
  try {
    const res = await fetch(serviceUrl(sel.namespace, sel.name), { headers: { Accept: 'application/json' } });
    const body = await res.json().catch(() => ({}));
    if (req !== state.detailsReq) return;
    if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
    ui.panelError.textContent = '';
    fillDetails(body);
  } catch (err) {
    if (req !== state.detailsReq) return;
    ui.panelError.textContent = `Could not load the details: ${err.message}`;
    ui.tree.textContent = '';
    setActions(null);
  }
}

function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso || '') : date.toLocaleString();
}

function fillDetails(d) {
  ui.tree.textContent = d.text || '';
  ui.history.textContent = d.history || '';
  const events = Array.isArray(d.events) ? d.events : [];
  ui.events.replaceChildren(...events.map((e) => {
    const warning = e.type === 'Warning';
    const li = htmlEl('li', warning ? 'event warning' : 'event');
    const head = htmlEl('div', 'event-head');
    head.append(
      htmlEl('span', 'event-type', e.type || ''), ' ',
      htmlEl('strong', 'event-reason', e.reason || ''), ' ',
      htmlEl('span', 'event-count', `×${e.count ?? 1}`), ' ',
    );
    const time = htmlEl('time', 'event-time', formatTime(e.lastSeen));
    if (e.lastSeen) time.dateTime = e.lastSeen;
    head.append(time);
    li.append(head, htmlEl('div', 'event-message', e.message || ''));
    return li;
  }));
  ui.eventsEmpty.hidden = events.length > 0;
  setActions(d.actions);
}

// ---------- actions ----------

function askAction(action) {
  const sel = state.selected;
  if (!sel || !ACTIONS[action]) return;
  state.pendingAction = { action, ...sel, button: actionButtons[action] };
  ui.confirmText.textContent = ACTIONS[action].question(sel.id);
  ui.revisionRow.hidden = action !== 'undo';
  ui.revision.value = '';
  ui.confirmError.textContent = '';
  ui.yes.textContent = ACTIONS[action].label;
  ui.dialog.showModal();
}

function confirmAction() {
  const target = state.pendingAction;
  if (!target) return;
  let body = {};
  if (target.action === 'undo' && ui.revision.value.trim() !== '') {
    const n = Number(ui.revision.value);
    if (!Number.isInteger(n) || n < 1) {
      ui.confirmError.textContent = 'Enter a release number (1 or more), or leave it blank for the previous release.';
      ui.revision.focus();
      return;
    }
    body = { toRevision: n };
  }
  ui.dialog.close();
  sendAction(target, body);
}

async function sendAction(target, body) {
  const label = ACTIONS[target.action].label;
  ui.result.removeAttribute('data-outcome');
  ui.result.textContent = `${label} ${target.id}: sending…`;
  try {
    const res = await fetch(`${serviceUrl(target.namespace, target.name)}/${target.action}`, {
      method: 'POST',
      headers: { 'X-Flotilla-Dashboard': '1', 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const reply = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(reply.error || `HTTP ${res.status}`);
    ui.result.setAttribute('data-outcome', 'ok');
    ui.result.textContent = reply.message || `${label} ${target.id}: done`;
  } catch (err) {
    ui.result.setAttribute('data-outcome', 'error');
    ui.result.textContent = `${label} ${target.id} failed: ${err.message}`;
  }
  if (state.selected && state.selected.id === target.id) loadDetails();
}

// ---------- wiring ----------

ui.nodes.addEventListener('click', (ev) => {
  const g = ev.target.closest('g.node');
  if (g) activate(g);
});
ui.nodes.addEventListener('keydown', (ev) => {
  if (ev.key !== 'Enter' && ev.key !== ' ') return;
  const g = ev.target.closest('g.node');
  if (!g) return;
  ev.preventDefault(); // Space would scroll the graph
  activate(g);
});
document.addEventListener('keydown', (ev) => {
  // Escape inside the dialog only closes the dialog.
  if (ev.key === 'Escape' && !ui.dialog.open && !ui.panel.hidden) closePanel();
});
ui.close.addEventListener('click', closePanel);

$('filters').addEventListener('submit', (ev) => ev.preventDefault());
for (const select of [ui.ns, ui.cls, ui.health]) select.addEventListener('change', applyFilters);
ui.search.addEventListener('input', applyFilters);

for (const [action, button] of Object.entries(actionButtons)) {
  button.addEventListener('click', () => askAction(action));
}
ui.yes.addEventListener('click', confirmAction);
ui.no.addEventListener('click', () => ui.dialog.close());
ui.revision.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter') {
    ev.preventDefault();
    confirmAction();
  }
});
ui.dialog.addEventListener('close', () => {
  const target = state.pendingAction;
  state.pendingAction = null;
  if (target && target.button && !ui.panel.hidden) target.button.focus();
});

connect();
