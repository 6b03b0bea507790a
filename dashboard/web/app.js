// The sweep dashboard: a single page over the read-only JSON API (docs/dashboard.md).
//
// Views (hash routes): #/ sweeps, #/sweeps/ID one sweep, #/trials/ID one trial,
// #/workers workers and GPUs. The current view refreshes itself every
// REFRESH_MS; tables are re-rendered, charts updated in place. No framework.
'use strict';

const REFRESH_MS = 1500;
const STATES = ['queued', 'running', 'completed', 'failed', 'stopped', 'cancelled'];
const PALETTE = ['#5470c6', '#91cc75', '#fac858', '#ee6666', '#73c0de', '#3ba272', '#fc8452',
                 '#9a60b4', '#ea7ccc', '#2f4554', '#61a0a8', '#d48265', '#749f83', '#ca8622'];
const BEST_COLOR = '#4f46e5';

// ---------------------------------------------------------------- token + API

(function takeTokenFromUrl() {
  const params = new URLSearchParams(location.search);
  const token = params.get('token');
  if (token) {
    sessionStorage.setItem('sweep_token', token);
    // Keep the token out of the address bar, screenshots and history.
    history.replaceState(null, '', location.pathname + location.hash);
  }
})();

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path) {
  const headers = {};
  const token = sessionStorage.getItem('sweep_token');
  if (token) headers['X-Sweep-Token'] = token;
  let res;
  try {
    res = await fetch(path, {headers, cache: 'no-store'});
  } catch (e) {
    throw new ApiError(0, 'network');
  }
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    body = null;
  }
  if (!res.ok) throw new ApiError(res.status, (body && body.error) || res.statusText);
  return body;
}

// ---------------------------------------------------------------- helpers

// Names and values on this page are user text: sweep and trial names, parameter
// names and values, metric names, messages, log tails, worker names. None of it is
// ever parsed as HTML. The page builds every element with h() (text goes in as text
// nodes, attributes through setAttribute) or sets textContent, and never hands a
// string to the HTML parser. ECharts would put a tooltip formatter's *string* into
// the page as HTML, so every formatter here returns a node built by h() (tipNode()).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Replaces the children of `parent`, skipping null, undefined and false.
function fill(parent, ...kids) {
  parent.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false));
}

function fmtNum(v) {
  if (v === null || v === undefined || v === '') return '–';
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e7) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3).replace(/\.?0+e/, 'e');
  return String(Number(v.toPrecision(5)));
}

function fmtValue(v) {
  if (typeof v === 'number') return fmtNum(v);
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

function fmtDur(s) {
  if (s === null || s === undefined) return '–';
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  const m = Math.floor(s / 60), sec = Math.round(s % 60);
  if (m < 60) return `${m}m ${String(sec).padStart(2, '0')}s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(hr / 24)}d ${hr % 24}h`;
}

function fmtTime(t) {
  if (!t) return '–';
  const d = new Date(t * 1000);
  const today = new Date();
  const time = d.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', second: '2-digit'});
  return d.toDateString() === today.toDateString() ? time
      : `${d.toLocaleDateString([], {month: 'short', day: 'numeric'})} ${time}`;
}

// Tags for a trial's GPU outcome: out of memory, no GPU activity.
function gpuTags(t) {
  const tags = [];
  if (t.failure_kind === 'oom') tags.push(h('span', {class: 'gpu-tag', title: 'out of GPU memory'}, 'OOM'));
  if (t.gpu_flag === 'no_gpu_activity') {
    tags.push(h('span', {class: 'gpu-tag', title: 'no process of the trial held memory on its GPU in time'}, 'NO GPU'));
  }
  return tags;
}

function badge(state) {
  return h('span', {class: `badge ${state}`, 'data-state': state}, state);
}

// Flattens nested parameters into dotted names: {opt: {lr: 1}} -> {"opt.lr": 1}.
function flatParams(obj, prefix = '', out = {}) {
  for (const [k, v] of Object.entries(obj || {})) {
    const name = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flatParams(v, name, out);
    else out[name] = v;
  }
  return out;
}

function progressBar(counts, total) {
  const bar = h('div', {class: 'progress'});
  const denom = Math.max(1, total);
  for (const s of ['completed', 'failed', 'stopped', 'cancelled', 'running']) {
    const n = counts[s] || 0;
    if (n > 0) bar.append(h('span', {class: s, style: `width:${(100 * n) / denom}%`, title: `${n} ${s}`}));
  }
  return bar;
}

function sweepTotal(s) {
  return s.budget >= 0 ? s.budget : STATES.reduce((a, k) => a + (s.counts[k] || 0), 0);
}

// ---------------------------------------------------------------- charts

const charts = new Map();  // element id -> echarts instance, for the current view

function chartAt(el) {
  let c = echarts.getInstanceByDom(el);
  if (!c) {
    c = echarts.init(el, null, {renderer: 'canvas'});
    charts.set(el.id, c);
    new ResizeObserver(() => c.resize()).observe(el);
  }
  return c;
}

function disposeCharts() {
  for (const c of charts.values()) c.dispose();
  charts.clear();
}

const AXIS = {
  axisLine: {lineStyle: {color: '#c9ced8'}},
  axisLabel: {color: '#677085', fontSize: 11},
  splitLine: {lineStyle: {color: '#eef0f3'}},
  nameTextStyle: {color: '#677085', fontSize: 11},
};

function tooltipBase() {
  return {
    confine: true,
    backgroundColor: 'rgba(255,255,255,0.97)',
    borderColor: '#e3e6eb',
    textStyle: {color: '#1d2330', fontSize: 12},
    extraCssText: 'box-shadow: 0 4px 14px rgba(20,25,40,.12); border-radius: 8px;',
  };
}

// A tooltip's content as a node (see h()): one line per entry of `lines`, each a
// string or an array of strings and nodes.
function tipNode(...lines) {
  return h('div', {class: 'tip'}, lines.filter((l) => l !== null && l !== undefined)
      .map((l) => h('div', {}, l)));
}

function tipMuted(text) {
  return h('span', {class: 'tip-muted'}, text);
}

// A trial's tooltip: its id and state (when known), `lines`, then its parameters.
function trialTooltip(trial, lines) {
  const params = trial ? Object.entries(flatParams(trial.params)) : [];
  return tipNode(trial ? [h('b', {}, trial.id), ' ', tipMuted(trial.state)] : null,
                 ...lines, ...params.map(([k, v]) => [tipMuted(k), ' ', fmtValue(v)]));
}

function isLogAxis(param, values) {
  return param && param.log && values.length > 0 && values.every((v) => typeof v === 'number' && v > 0);
}

function isNumeric(values) {
  return values.every((v) => typeof v === 'number');
}

// ---------------------------------------------------------------- views

const views = {};
let current = null;  // {name, key, refresh, dispose}
let timer = null;
let lastOk = null;
// Refreshes completed without error since the page loaded, in #live's
// data-refreshes: a page (or a test) that waits for "the next refresh" waits for it
// to grow.
let refreshes = 0;

function setLive(state, text) {
  const live = document.getElementById('live');
  live.dataset.state = state;
  document.getElementById('live-text').textContent = text;
}

function showBanner(text, kind) {
  const b = document.getElementById('banner');
  if (!text) {
    b.hidden = true;
    return;
  }
  b.hidden = false;
  b.className = `banner ${kind || ''}`;
  b.textContent = text;
}

function showError(view, title, detail) {
  fill(view, h('div', {class: 'panel error', id: 'error'},
      h('h2', {}, title), h('p', {}, detail), h('p', {}, h('a', {href: '#/'}, 'All sweeps'))));
}

async function tick() {
  clearTimeout(timer);
  const me = current;
  if (!me) return;
  try {
    await me.refresh();
    if (me !== current) return;
    lastOk = new Date();
    setLive('live', `live · ${lastOk.toLocaleTimeString()}`);
    document.getElementById('live').dataset.refreshes = String(++refreshes);
    showBanner(null);
  } catch (e) {
    if (me !== current) return;
    if (e instanceof ApiError && e.status === 0) {
      setLive('error', 'disconnected');
      showBanner(`Cannot reach the sweep scheduler at ${location.host}: it may have stopped. ` +
                 `Retrying every ${REFRESH_MS / 1000} s` +
                 (lastOk ? `; what you see is from ${lastOk.toLocaleTimeString()}.` : '.'));
    } else if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
      setLive('error', 'no access');
      showBanner(`${e.message}. Open the URL with ?token=... that the scheduler printed.`);
    } else if (e instanceof ApiError && e.status === 404) {
      setLive('live', 'live');
      showBanner(null);
      showError(document.getElementById('view'), 'Not found', e.message);
    } else {
      setLive('error', 'error');
      showBanner(`The dashboard could not read the database: ${e.message}. Retrying.`, 'warn');
      console.error(e);
    }
  }
  if (me === current) timer = setTimeout(tick, REFRESH_MS);
}

function route() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const parts = hash.split('/').filter(Boolean).map(decodeURIComponent);
  let name = 'sweeps', arg = null;
  if (parts[0] === 'sweeps' && parts[1]) [name, arg] = ['sweep', parts[1]];
  else if (parts[0] === 'trials' && parts[1]) [name, arg] = ['trial', parts[1]];
  else if (parts[0] === 'workers') name = 'workers';
  for (const a of document.querySelectorAll('.topbar nav a')) {
    a.classList.toggle('active', a.dataset.nav === (name === 'workers' ? 'workers' : 'sweeps'));
  }
  if (current && current.dispose) current.dispose();
  disposeCharts();
  const view = document.getElementById('view');
  fill(view, h('div', {class: 'loading'}, 'Loading…'));
  current = views[name](view, arg);
  window.scrollTo(0, 0);
  tick();
}

// ------------------------------------------------ Sweeps

views.sweeps = (view) => {
  document.title = 'Sweeps · sweep';
  return {
    key: 'sweeps',
    async refresh() {
      const data = await api('/api/sweeps');
      const rows = data.sweeps.map((s) => {
        const total = sweepTotal(s);
        const best = s.best ? h('span', {}, h('span', {class: 'muted'}, `${s.metric} `),
                                 fmtNum(s.best.value), h('span', {class: 'muted'}, ` · ${s.best.trial.slice(-4)}`))
                            : h('span', {class: 'muted'}, '–');
        return h('tr', {class: 'link', 'data-sweep': s.id, onclick: () => { location.hash = `#/sweeps/${s.id}`; }},
            h('td', {}, h('a', {href: `#/sweeps/${s.id}`}, s.name), h('div', {class: 'mono muted'}, s.id)),
            h('td', {}, badge(s.state)),
            h('td', {}, h('div', {class: 'progress-cell'}, progressBar(s.counts, total),
                          h('span', {class: 'frac'}, `${s.done}/${s.budget >= 0 ? s.budget : '?'}`))),
            h('td', {class: 'num'}, s.counts.running),
            h('td', {class: 'num'}, s.counts.queued),
            h('td', {class: 'num'}, s.counts.failed),
            h('td', {}, best),
            h('td', {}, s.method),
            h('td', {class: 'num'}, fmtDur(s.elapsed_s)),
            h('td', {class: 'num'}, s.state === 'running' ? (s.eta_s === null ? 'estimating' : fmtDur(s.eta_s)) : '–'));
      });
      const running = data.sweeps.filter((s) => s.state === 'running').length;
      fill(view,
          h('div', {class: 'page-head'}, h('h1', {}, 'Sweeps'),
            h('span', {class: 'sub'}, `${data.sweeps.length} in all, ${running} running`)),
          data.sweeps.length === 0
              ? h('div', {class: 'panel'}, h('div', {class: 'empty'}, 'No sweeps yet. Submit one with ',
                                               h('code', {}, 'sweep submit spec.yaml'), '.'))
              : h('div', {class: 'panel'}, h('div', {class: 'table-wrap'},
                  h('table', {class: 'data', id: 'sweeps'},
                    h('thead', {}, h('tr', {}, ['Sweep', 'State', 'Progress (done / total)', 'Running', 'Queued',
                                               'Failed', 'Best', 'Method', 'Elapsed', 'ETA']
                        .map((t, i) => h('th', {class: i >= 3 && i <= 5 || i >= 8 ? 'num' : ''}, t)))),
                    h('tbody', {}, rows)))));
    },
  };
};

// ------------------------------------------------ One sweep

views.sweep = (view, id) => {
  document.title = `Sweep ${id} · sweep`;
  const st = {
    sortKey: 'index', sortDir: 1, filter: 'all', metric: null, fingerprint: '',
    metrics: null, sweep: null, trials: null, built: false, specText: null,
  };
  const el = {};

  function build(sweep) {
    el.crumbs = h('div', {class: 'crumbs'}, h('a', {href: '#/'}, 'Sweeps'), h('span', {class: 'sep'}, '/'), sweep.name);
    el.head = h('div', {class: 'page-head'});
    el.cards = h('div', {class: 'cards'});
    el.metricSelect = h('select', {id: 'metric-select', onchange: (e) => { st.metric = e.target.value; st.fingerprint = ''; tick(); }});
    el.curves = h('div', {class: 'chart', id: 'curves'});
    el.parallel = h('div', {class: 'chart', id: 'parallel'});
    el.scatter = h('div', {class: 'scatter-grid', id: 'scatter'});
    el.chips = h('div', {class: 'chips', id: 'state-filter'});
    el.table = h('div', {class: 'table-wrap'});
    el.spec = h('pre', {class: 'spec', id: 'spec'});
    el.specName = h('span', {class: 'hint'});
    el.curvesHint = h('span', {class: 'hint'});
    el.parallelHint = h('span', {class: 'hint'});
    el.scatterTitle = h('span', {}, 'Parameters vs metric');
    fill(view,
        el.crumbs, el.head, el.cards,
        h('div', {class: 'grid2'},
          h('section', {class: 'panel', id: 'curves-panel'},
            h('h2', {}, 'Learning curves', el.curvesHint, h('span', {class: 'tools'}, el.metricSelect)),
            h('div', {class: 'body'}, el.curves)),
          h('section', {class: 'panel', id: 'parallel-panel'},
            h('h2', {}, 'Parallel coordinates', el.parallelHint),
            h('div', {class: 'body'}, el.parallel))),
        h('section', {class: 'panel', id: 'scatter-panel'},
          h('h2', {}, el.scatterTitle, h('span', {class: 'hint'}, 'final value of each trial; log axes for log-scaled parameters')),
          h('div', {class: 'body'}, el.scatter)),
        h('section', {class: 'panel', id: 'trials-panel'},
          h('h2', {}, 'Trials', h('span', {class: 'tools'}, el.chips)),
          el.table),
        h('section', {class: 'panel', id: 'spec-panel'},
          h('h2', {}, 'Spec as submitted', el.specName),
          h('div', {class: 'body'}, el.spec)));
    st.built = true;
  }

  function renderHead(s) {
    fill(el.head,
        h('h1', {}, s.name), h('span', {class: 'id'}, s.id), badge(s.state),
        h('span', {class: 'sub'}, `${s.method}${s.metric ? ` · ${s.goal} ${s.metric}` : ''}`),
        s.end_reason ? h('span', {class: 'sub'}, `· ${s.end_reason}`) : null);
    const total = sweepTotal(s);
    const legend = h('div', {class: 'legend'}, STATES.filter((k) => s.counts[k] > 0 || k === 'queued').map((k) =>
        h('span', {}, h('i', {style: `background:var(--${k})`}), `${s.counts[k]} ${k}`)));
    const bestTrial = s.best && st.trials && st.trials.find((t) => t.id === s.best.trial);
    const bestParams = bestTrial ? Object.entries(flatParams(bestTrial.params))
        .filter(([k]) => variedParams().some((p) => p.name === k))
        .map(([k, v]) => `${k}=${fmtValue(v)}`).join(', ') : '';
    fill(el.cards,
        h('div', {class: 'card wide', id: 'progress-card'}, h('div', {class: 'label'}, 'Progress'),
          h('div', {class: 'value'}, `${s.done} / ${s.budget >= 0 ? s.budget : '∞'}`, h('span', {class: 'muted', style: 'font-size:14px;font-weight:500'}, ' trials done')),
          progressBar(s.counts, total), legend),
        h('div', {class: 'card', id: 'best-card'}, h('div', {class: 'label'}, s.metric ? `Best ${s.metric} (${s.goal === 'maximize' ? 'max' : 'min'})` : 'Best'),
          h('div', {class: 'value'}, s.best ? fmtNum(s.best.value) : '–'),
          h('div', {class: 'note'}, s.best ? h('a', {href: `#/trials/${s.best.trial}`}, s.best.trial) : (s.metric ? 'no value yet' : 'the spec names no metric')),
          bestParams ? h('div', {class: 'note', title: bestParams}, bestParams) : null),
        h('div', {class: 'card'}, h('div', {class: 'label'}, 'Elapsed'), h('div', {class: 'value'}, fmtDur(s.elapsed_s)),
          h('div', {class: 'note'}, `started ${fmtTime(s.created_at)}`)),
        h('div', {class: 'card', id: 'eta-card'}, h('div', {class: 'label'}, s.state === 'running' ? 'Estimated time left' : 'Finished'),
          h('div', {class: 'value'}, s.state === 'running' ? (s.eta_s === null ? '–' : fmtDur(s.eta_s)) : fmtTime(s.finished_at)),
          h('div', {class: 'note'}, s.state === 'running' ? (s.eta_s === null ? 'known once a trial ends' : 'at the mean trial duration') : s.end_reason)));
    if (st.specText !== s.spec_yaml) {
      st.specText = s.spec_yaml;
      el.spec.textContent = s.spec_yaml;
      el.specName.textContent = `${s.file_name} · seed ${s.seed}` + (s.spec_error ? ` · ${s.spec_error}` : '');
    }
  }

  // Parameters that take more than one value: the ones worth an axis.
  function variedParams() {
    const s = st.sweep;
    if (!s) return [];
    const declared = s.parameters.filter((p) => p.distribution !== 'constant');
    if (declared.length || !st.trials) return declared;
    // No parsed spec: fall back to the keys of the trials' parameters.
    const names = new Set();
    for (const t of st.trials) Object.keys(flatParams(t.params)).forEach((k) => names.add(k));
    return [...names].map((name) => ({name, log: false}));
  }

  function sorted(trials) {
    const key = st.sortKey, dir = st.sortDir;
    const get = (t) => (key.startsWith('p:') ? flatParams(t.params)[key.slice(2)] : t[key]);
    return [...trials].sort((a, b) => {
      const x = get(a), y = get(b);
      if (x === y) return a.index - b.index;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) * dir;
    });
  }

  function renderTable(data) {
    const counts = {all: data.trials.length};
    for (const t of data.trials) counts[t.state] = (counts[t.state] || 0) + 1;
    fill(el.chips, ...['all', ...STATES].filter((k) => k === 'all' || counts[k] || st.filter === k).map((k) =>
        h('button', {class: `chip ${st.filter === k ? 'on' : ''}`, 'data-filter': k,
                     onclick: () => { st.filter = k; renderTable(st.trialsData); }},
          k, h('span', {class: 'n'}, counts[k] || 0))));
    const params = variedParams();
    const cols = [
      {key: 'index', title: '#', num: true, cell: (t) => t.index},
      {key: 'id', title: 'Trial', cell: (t) => [h('a', {href: `#/trials/${t.id}`}, t.id),
          t.id === data.best_trial ? h('span', {class: 'best-tag', title: 'best trial'}, 'BEST') : null]},
      {key: 'state', title: 'State', cell: (t) => [badge(t.state), gpuTags(t)]},
      ...params.map((p) => ({key: `p:${p.name}`, title: p.name, param: true,
                             cell: (t) => fmtValue(flatParams(t.params)[p.name])})),
      {key: 'worker', title: 'Worker', cell: (t) => t.worker || '–'},
      {key: 'gpu', title: 'GPU', num: true, cell: (t) => (t.gpu === null ? (t.worker ? 'CPU' : '–') : t.gpu)},
      {key: 'attempt', title: 'Attempt', num: true, cell: (t) => t.attempt},
      {key: 'duration_s', title: 'Duration', num: true, cell: (t) => fmtDur(t.duration_s)},
      {key: 'final_metric', title: data.metric ? `${data.metric} (last)` : 'Last', num: true, cell: (t) => fmtNum(t.final_metric)},
      {key: 'best_metric', title: data.metric ? `${data.metric} (best)` : 'Best', num: true, cell: (t) => fmtNum(t.best_metric)},
    ];
    const shown = sorted(data.trials.filter((t) => st.filter === 'all' || t.state === st.filter));
    const thead = h('thead', {}, h('tr', {}, cols.map((c) => h('th', {
      class: `sortable ${c.num ? 'num' : ''}`, 'data-key': c.key,
      onclick: () => {
        st.sortDir = st.sortKey === c.key ? -st.sortDir : 1;
        st.sortKey = c.key;
        renderTable(st.trialsData);
      }}, c.title, st.sortKey === c.key ? h('span', {class: 'arrow'}, st.sortDir > 0 ? '▲' : '▼') : null))));
    const tbody = h('tbody', {}, shown.map((t) => h('tr', {
      class: `link ${t.id === data.best_trial ? 'best' : ''}`, 'data-trial': t.id, 'data-state': t.state,
      onclick: (e) => { if (e.target.tagName !== 'A') location.hash = `#/trials/${t.id}`; }},
      cols.map((c) => h('td', {class: `${c.num ? 'num' : ''} ${c.param ? 'param' : ''}`}, c.cell(t))))));
    // A very large sweep comes in part: the running trials and the best ones.
    const note = data.truncated
      ? h('div', {class: 'hint', id: 'trials-truncated'},
          `Showing ${data.trials.length.toLocaleString()} of ${data.total.toLocaleString()} trials: ` +
          'the running ones, then the best. `sweep export` has them all.')
      : null;
    fill(el.table, note, shown.length ? h('table', {class: 'data', id: 'trials'}, thead, tbody)
        : h('div', {class: 'empty'}, data.trials.length ? `No ${st.filter} trials.` : 'No trial has started yet.'));
  }

  function trialById() {
    const m = new Map();
    for (const t of st.trials || []) m.set(t.id, t);
    return m;
  }

  function renderCurves(metrics, bestTrial) {
    const byId = trialById();
    const names = metrics.names || [];
    if (st.metric === null) st.metric = metrics.name;
    fill(el.metricSelect, ...names.map((n) => h('option', {value: n, selected: n === metrics.name}, n)));
    el.metricSelect.hidden = names.length < 2;
    el.curvesHint.textContent = metrics.name ? `${metrics.name} by step, one line per trial` : '';
    const chart = chartAt(el.curves);
    if (!metrics.series.length) {
      chart.clear();
      chart.setOption({title: {text: 'No metrics reported yet', left: 'center', top: 'middle', textStyle: {color: '#9aa3b2', fontSize: 13, fontWeight: 400}}});
      return;
    }
    const series = metrics.series.map((s, i) => {
      const best = s.trial === bestTrial;
      return {
        name: s.trial, type: 'line', data: s.points, showSymbol: s.points.length <= 12, symbolSize: best ? 5 : 3,
        triggerLineEvent: true, z: best ? 10 : 2,
        color: best ? BEST_COLOR : PALETTE[i % PALETTE.length],
        lineStyle: {width: best ? 3.5 : 1.5, opacity: best ? 1 : 0.6},
        itemStyle: {opacity: best ? 1 : 0.7},
        emphasis: {focus: 'series', lineStyle: {width: best ? 4 : 3, opacity: 1}},
        blur: {lineStyle: {opacity: 0.12}, itemStyle: {opacity: 0.12}},
      };
    });
    chart.setOption({
      animation: false,
      grid: {left: 56, right: 18, top: 26, bottom: 40},
      tooltip: {...tooltipBase(), trigger: 'item',
        formatter: (p) => {
          const step = Array.isArray(p.value) ? p.value[0] : '';
          const v = Array.isArray(p.value) ? p.value[1] : p.value;
          return trialTooltip(byId.get(p.seriesName),
              [`step ${step}: ${metrics.name} = ${fmtNum(v)}`, p.seriesName === bestTrial ? '★ best trial' : ''].filter(Boolean));
        }},
      xAxis: {type: 'value', name: 'step', nameLocation: 'middle', nameGap: 26, minInterval: 1, min: 'dataMin', ...AXIS},
      yAxis: {type: 'value', name: metrics.name, scale: true, ...AXIS},
      series,
    }, {replaceMerge: ['series', 'title']});
  }

  function paramValues(p) {
    return (st.trials || []).map((t) => flatParams(t.params)[p.name]).filter((v) => v !== undefined);
  }

  function renderParallel(data) {
    const params = variedParams();
    const metric = data.metric || 'metric';
    const trials = data.trials.filter((t) => t.final_metric !== null);
    el.parallelHint.textContent = `${params.length} parameter${params.length === 1 ? '' : 's'} and ${metric}, one line per trial`;
    const chart = chartAt(el.parallel);
    if (!trials.length) {
      chart.clear();
      chart.setOption({title: {text: 'Lines appear as trials report ' + metric, left: 'center', top: 'middle', textStyle: {color: '#9aa3b2', fontSize: 13, fontWeight: 400}}});
      return;
    }
    const axes = params.map((p, i) => {
      const values = paramValues(p);
      if (!isNumeric(values)) {
        const cats = [...new Set(values.map(fmtValue))];
        return {dim: i, name: p.name, type: 'category', data: cats};
      }
      return {dim: i, name: p.name, type: isLogAxis(p, values) ? 'log' : 'value', scale: true};
    });
    axes.push({dim: params.length, name: metric, type: 'value', scale: true,
               nameTextStyle: {color: BEST_COLOR, fontWeight: 600}});
    const values = trials.map((t) => t.final_metric);
    const lo = Math.min(...values), hi = Math.max(...values);
    const series = trials.map((t) => {
      const flat = flatParams(t.params);
      const row = params.map((p, i) => (axes[i].type === 'category' ? fmtValue(flat[p.name]) : flat[p.name]));
      row.push(t.final_metric);
      const best = t.id === data.best_trial;
      return {
        name: t.id, type: 'parallel', data: [row], z: best ? 10 : 2, smooth: false,
        lineStyle: {width: best ? 4 : 1.6, opacity: best ? 1 : 0.55, ...(best ? {color: BEST_COLOR} : {})},
        emphasis: {lineStyle: {width: 3.5, opacity: 1}},
      };
    });
    const maximize = data.goal === 'maximize';
    chart.setOption({
      animation: false,
      parallel: {left: 40, right: 70, top: 34, bottom: 26,
                 parallelAxisDefault: {nameLocation: 'start', nameGap: 14, ...AXIS, nameTextStyle: {color: '#1d2330', fontSize: 11.5}}},
      parallelAxis: axes,
      tooltip: {...tooltipBase(), trigger: 'item',
        formatter: (p) => trialTooltip(trialById().get(p.seriesName), [`${metric} = ${fmtNum(p.value[p.value.length - 1])}`])},
      visualMap: {type: 'continuous', show: false, dimension: params.length, min: lo, max: hi === lo ? lo + 1 : hi,
                  inRange: {color: maximize ? ['#c7ccd8', '#7fa7f5', '#2f6fe4'] : ['#2f6fe4', '#7fa7f5', '#c7ccd8']}},
      series,
    }, {replaceMerge: ['series', 'parallelAxis', 'title']});
  }

  function renderScatter(data) {
    const params = variedParams();
    const metric = data.metric || 'metric';
    el.scatterTitle.textContent = `Parameters vs ${metric}`;
    const trials = data.trials.filter((t) => t.final_metric !== null);
    // One chart per parameter; keep elements whose parameter is still there.
    const wanted = new Set(params.map((p) => `scatter-${p.name.replace(/[^\w-]/g, '_')}`));
    for (const child of [...el.scatter.children]) {
      if (!wanted.has(child.id)) {
        const c = charts.get(child.id);
        if (c) { c.dispose(); charts.delete(child.id); }
        child.remove();
      }
    }
    if (!params.length) {
      if (!el.scatter.querySelector('.empty')) fill(el.scatter, h('div', {class: 'empty'}, 'The spec has no varied parameter.'));
      return;
    }
    el.scatter.querySelector('.empty')?.remove();
    for (const p of params) {
      const id = `scatter-${p.name.replace(/[^\w-]/g, '_')}`;
      let div = document.getElementById(id);
      if (!div) {
        div = h('div', {class: 'chart', id, 'data-param': p.name});
        el.scatter.append(div);
      }
      const values = paramValues(p);
      const numeric = isNumeric(values);
      const log = isLogAxis(p, values);
      const point = (t) => {
        const v = flatParams(t.params)[p.name];
        return {value: [numeric ? v : fmtValue(v), t.final_metric], trial: t.id};
      };
      const best = trials.filter((t) => t.id === data.best_trial).map(point);
      const rest = trials.filter((t) => t.id !== data.best_trial).map(point);
      chartAt(div).setOption({
        animation: false,
        title: {text: p.name + (log ? '  (log)' : ''), left: 8, top: 2, textStyle: {fontSize: 12, fontWeight: 600, color: '#1d2330'}},
        grid: {left: 52, right: 14, top: 30, bottom: 28},
        tooltip: {...tooltipBase(), trigger: 'item',
          formatter: (q) => trialTooltip(trialById().get(q.data.trial), [`${p.name} = ${fmtValue(q.value[0])}`, `${metric} = ${fmtNum(q.value[1])}`])},
        xAxis: numeric ? {type: log ? 'log' : 'value', scale: true, ...AXIS}
                       : {type: 'category', data: [...new Set(values.map(fmtValue))], ...AXIS},
        yAxis: {type: 'value', scale: true, ...AXIS},
        series: [
          {name: 'trials', type: 'scatter', data: rest, symbolSize: 8, itemStyle: {color: '#5b7cfa', opacity: 0.75}},
          {name: 'best', type: 'scatter', data: best, symbol: 'diamond', symbolSize: 14, z: 10, itemStyle: {color: BEST_COLOR, borderColor: '#fff', borderWidth: 1.5}},
        ],
      });
    }
  }

  return {
    async refresh() {
      const [sweep, trials] = await Promise.all([api(`/api/sweeps/${encodeURIComponent(id)}`),
                                                 api(`/api/sweeps/${encodeURIComponent(id)}/trials`)]);
      if (!current || current.key !== `sweep:${id}`) return;
      st.sweep = sweep;
      st.trials = trials.trials;
      st.trialsData = trials;
      if (!st.built) build(sweep);
      document.title = `${sweep.name} · sweep`;
      renderHead(sweep);
      renderTable(trials);
      renderParallel(trials);
      renderScatter(trials);
      // Learning curves: fetched again only when some trial reported or changed.
      const fp = `${st.metric}|` + trials.trials.map((t) => `${t.id}:${t.state}:${t.attempt}:${t.reports}`).join(',');
      if (fp !== st.fingerprint) {
        const q = st.metric ? `?name=${encodeURIComponent(st.metric)}` : '';
        st.metrics = await api(`/api/sweeps/${encodeURIComponent(id)}/metrics${q}`);
        st.fingerprint = fp;
      }
      renderCurves(st.metrics, trials.best_trial);
    },
    key: `sweep:${id}`,
  };
};

// ------------------------------------------------ One trial

views.trial = (view, id) => {
  document.title = `Trial ${id} · sweep`;
  const st = {built: false, log: 'stdout'};
  const el = {};

  function build() {
    el.crumbs = h('div', {class: 'crumbs'});
    el.head = h('div', {class: 'page-head'});
    el.params = h('div', {class: 'body', id: 'params'});
    el.run = h('div', {class: 'body', id: 'run'});
    el.outcome = h('div', {class: 'body', id: 'outcome'});
    el.metrics = h('div', {class: 'metric-grid', id: 'metrics'});
    el.logTabs = h('div', {class: 'tabs'});
    el.log = h('pre', {class: 'log', id: 'log'});
    el.argv = h('pre', {class: 'spec', id: 'argv'});
    fill(view, el.crumbs, el.head,
        h('div', {class: 'grid2', style: 'grid-template-columns: 1fr 1fr 1fr'},
          h('section', {class: 'panel'}, h('h2', {}, 'Parameters'), el.params),
          h('section', {class: 'panel'}, h('h2', {}, 'Run'), el.run),
          h('section', {class: 'panel'}, h('h2', {}, 'Outcome'), el.outcome)),
        h('section', {class: 'panel', id: 'metrics-panel'}, h('h2', {}, 'Metrics', h('span', {class: 'hint'}, 'every series the trial reported, by step')),
          h('div', {class: 'body'}, el.metrics)),
        h('section', {class: 'panel', id: 'logs-panel'}, h('h2', {}, 'Logs', h('span', {class: 'hint'}, 'the last 8 KiB of each'), h('span', {class: 'tools'}, el.logTabs)),
          h('div', {class: 'body'}, el.log)),
        h('section', {class: 'panel'}, h('h2', {}, 'Command'), h('div', {class: 'body'}, el.argv)));
    st.built = true;
  }

  function kv(pairs) {
    return h('dl', {class: 'kv'}, pairs.flatMap(([k, v, cls]) => [h('dt', {}, k), h('dd', {class: cls || ''}, v)]));
  }

  function outcomeText(t) {
    if (t.gpu_flag || t.failure_kind) {
      const why = t.failure_kind === 'oom' ? 'Ran out of GPU memory.'
          : 'No process of this trial held memory on its GPU in time: it may have run on the CPU.';
      return h('div', {}, outcomeTextPlain(t), h('div', {class: 'message bad gpu-note'}, gpuTags(t), ' ', why));
    }
    return outcomeTextPlain(t);
  }

  function outcomeTextPlain(t) {
    if (t.state === 'running') return h('div', {class: 'message'}, 'Running.');
    if (t.state === 'queued') return h('div', {class: 'message'}, t.message || 'Waiting for a free slot.');
    const good = t.state === 'completed';
    return h('div', {class: `message ${good ? 'good' : 'bad'}`}, t.message || (good ? 'Exited with status 0.' : t.state));
  }

  function renderMetrics(t) {
    const names = Object.keys(t.metrics);
    if (!names.length) {
      if (!el.metrics.querySelector('.empty')) fill(el.metrics, h('div', {class: 'empty'}, 'No metrics reported yet.'));
      return;
    }
    el.metrics.querySelector('.empty')?.remove();
    for (const name of names) {
      const id = `metric-${name.replace(/[^\w-]/g, '_')}`;
      let div = document.getElementById(id);
      if (!div) {
        div = h('div', {class: 'chart', id, 'data-metric': name});
        el.metrics.append(div);
      }
      const main = name === t.metric;
      chartAt(div).setOption({
        animation: false,
        title: {text: name + (main ? '  (sweep metric)' : ''), left: 8, top: 2, textStyle: {fontSize: 12, fontWeight: 600, color: main ? BEST_COLOR : '#1d2330'}},
        grid: {left: 56, right: 16, top: 30, bottom: 28},
        tooltip: {...tooltipBase(), trigger: 'axis',
          formatter: (ps) => {
            const p = Array.isArray(ps) ? ps[0] : ps;
            return p && Array.isArray(p.value) ? tipNode(`step ${p.value[0]}`, [tipMuted(name), ' ', fmtNum(p.value[1])]) : null;
          }},
        xAxis: {type: 'value', minInterval: 1, min: 'dataMin', ...AXIS},
        yAxis: {type: 'value', scale: true, ...AXIS},
        series: [{name, type: 'line', data: t.metrics[name], showSymbol: t.metrics[name].length < 60, symbolSize: 5,
                  color: main ? BEST_COLOR : '#5470c6', lineStyle: {width: 2}}],
      });
    }
  }

  function renderLogs(t) {
    const tails = {stdout: t.stdout_tail, stderr: t.stderr_tail};
    fill(el.logTabs, ...['stdout', 'stderr'].map((k) => h('button', {
      class: `tab ${st.log === k ? 'on' : ''}`, 'data-log': k,
      onclick: () => { st.log = k; renderLogs(t); }}, k, tails[k] ? '' : ' (empty)')));
    const text = tails[st.log];
    const empty = t.state === 'running' || t.state === 'queued'
        ? `The ${st.log} tail arrives when the trial ends; meanwhile \`sweep logs ${t.id}\` shows it, or ${t.trial_dir || 'the trial directory'}.`
        : `(no ${st.log} output)`;
    if (el.log.textContent !== (text || empty)) {
      el.log.textContent = text || empty;
      el.log.classList.toggle('muted', !text);
      el.log.scrollTop = el.log.scrollHeight;
    }
  }

  return {
    key: `trial:${id}`,
    async refresh() {
      const t = await api(`/api/trials/${encodeURIComponent(id)}`);
      if (!current || current.key !== `trial:${id}`) return;
      if (!st.built) build();
      fill(el.crumbs, h('a', {href: '#/'}, 'Sweeps'), h('span', {class: 'sep'}, '/'),
          h('a', {href: `#/sweeps/${t.sweep}`}, t.sweep_name || t.sweep), h('span', {class: 'sep'}, '/'), t.id);
      fill(el.head, h('h1', {}, `Trial ${t.index}`), h('span', {class: 'id'}, t.id), badge(t.state),
          t.final_metric !== null && t.metric ? h('span', {class: 'sub'}, `${t.metric} ${fmtNum(t.final_metric)} (last), ${fmtNum(t.best_metric)} (best)`) : null);
      const params = Object.entries(flatParams(t.params));
      fill(el.params, params.length ? kv(params.map(([k, v]) => [k, fmtValue(v), 'mono'])) : h('span', {class: 'muted'}, 'none'));
      fill(el.run, kv([
        ['Worker', t.worker || '–', 'mono'], ['Host', t.host || '–'],
        ['GPU', t.gpu === null ? (t.worker ? 'CPU slot' : '–') : (t.gpus || String(t.gpu))], ['Attempt', String(t.attempt)],
        ['Started', fmtTime(t.started_at)], ['Ended', fmtTime(t.ended_at)], ['Duration', fmtDur(t.duration_s)],
        ...(t.peak_gpu_memory_mib === null || t.peak_gpu_memory_mib === undefined ? [] : [
          ['GPU memory (peak)', `${t.peak_gpu_memory_mib} MiB`],
          ['Energy', t.energy_joules === null ? '–' : `${(t.energy_joules / 3.6e6).toFixed(4)} kWh`]]),
        ['Directory', t.trial_dir || '–', 'mono']]));
      const exit = t.exit_code === null ? '–' : String(t.exit_code);
      fill(el.outcome, kv([['State', badge(t.state)], ['Exit status', exit, 'mono'],
          ['Signal', t.signal ? String(t.signal) : '–', 'mono'], ['Reports', String(t.reports)]]), outcomeText(t),
          ...(t.notices || []).map((n) => h('div', {class: 'message warn notice'}, n)));
      renderMetrics(t);
      renderLogs(t);
      const argv = Array.isArray(t.argv) ? t.argv.map((a) => (/[\s"'$]/.test(a) ? JSON.stringify(a) : a)).join(' ') : String(t.argv);
      if (el.argv.textContent !== argv) el.argv.textContent = argv;
    },
  };
};

// ------------------------------------------------ Workers and GPUs

views.workers = (view) => {
  document.title = 'Workers · sweep';
  return {
    key: 'workers',
    async refresh() {
      const data = await api('/api/workers');
      if (!current || current.key !== 'workers') return;
      const ws = data.workers;
      const live = ws.filter((w) => w.state !== 'lost');
      const gpus = live.filter((w) => w.gpu);
      const busy = live.filter((w) => w.state === 'busy').length;
      const hosts = new Set(live.map((w) => w.host));
      const mem = gpus.reduce((a, w) => a + w.gpu.memory_mib, 0);
      const rows = ws.map((w) => h('tr', {'data-worker': w.id, 'data-state': w.state},
          h('td', {class: 'mono'}, w.id),
          h('td', {}, w.host),
          h('td', {}, w.gpu ? h('span', {}, h('b', {}, `GPU ${w.gpu.index}`), ` ${w.gpu.name}`) : h('span', {class: 'muted'}, `CPU slot ${w.slot}`)),
          h('td', {class: 'num'}, w.gpu ? `${(w.gpu.memory_mib / 1024).toFixed(1)} GiB` : '–'),
          h('td', {}, badge(w.state), w.message ? h('div', {class: 'worker-message', title: w.message}, w.message) : null),
          h('td', {}, w.trial ? h('a', {href: `#/trials/${w.trial}`}, w.trial) : h('span', {class: 'muted'}, '–')),
          h('td', {class: 'num'}, w.state === 'lost' ? fmtTime(w.last_heartbeat) : `${fmtDur(w.heartbeat_age_s)} ago`),
          h('td', {class: 'num'}, fmtTime(w.registered_at)),
          h('td', {class: 'num mono'}, w.pid)));
      fill(view,
          h('div', {class: 'page-head'}, h('h1', {}, 'Workers & GPUs'),
            h('span', {class: 'sub'}, `${live.length} slot${live.length === 1 ? '' : 's'} on ${hosts.size} host${hosts.size === 1 ? '' : 's'}`)),
          h('div', {class: 'cards'},
            h('div', {class: 'card'}, h('div', {class: 'label'}, 'Slots'), h('div', {class: 'value'}, live.length),
              h('div', {class: 'note'}, `${gpus.length} GPU, ${live.length - gpus.length} CPU`)),
            h('div', {class: 'card'}, h('div', {class: 'label'}, 'Busy'), h('div', {class: 'value'}, busy),
              h('div', {class: 'note'}, `${live.length - busy} idle or draining`)),
            h('div', {class: 'card'}, h('div', {class: 'label'}, 'GPU memory'), h('div', {class: 'value'}, gpus.length ? `${(mem / 1024).toFixed(0)} GiB` : '–'),
              h('div', {class: 'note'}, gpus.length ? `over ${gpus.length} GPUs` : 'no GPU registered')),
            h('div', {class: 'card'}, h('div', {class: 'label'}, 'Lost'), h('div', {class: 'value'}, ws.length - live.length),
              h('div', {class: 'note'}, 'slots that stopped heartbeating'))),
          h('div', {class: 'panel'}, ws.length === 0
              ? h('div', {class: 'empty'}, 'No worker has registered. Start one with ', h('code', {}, 'sweep worker --gpus all'), '.')
              : h('div', {class: 'table-wrap'}, h('table', {class: 'data', id: 'workers'},
                  h('thead', {}, h('tr', {}, ['Worker', 'Host', 'Slot', 'Memory', 'State', 'Trial', 'Last heartbeat', 'Registered', 'PID']
                      .map((t, i) => h('th', {class: [3, 6, 7, 8].includes(i) ? 'num' : ''}, t)))),
                  h('tbody', {}, rows)))));
    },
  };
};

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', () => {
  if (typeof echarts === 'undefined') {
    showBanner('The chart library did not load; charts are off.', 'warn');
  }
  route();
});
