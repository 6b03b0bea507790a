// The dashboard in a real browser: headless Chromium (Debian's /usr/bin/chromium)
// driven by playwright-core, against a real `sweep scheduler` and two `sweep
// worker` processes running a small command-trial sweep (tests/browser/trial.sh).
//
// Run by CTest (tests/CMakeLists.txt) as `node dashboard_test.mjs` with SWEEP_BIN,
// SWEEP_SOURCE_DIR and SWEEP_ARTIFACTS_DIR set; screenshots of every view go to
// SWEEP_ARTIFACTS_DIR. Exits 77 (CTest: skipped) when Chromium or playwright-core
// is missing.
//
// Nothing here races the clock: the trials hold after their first step until the
// test creates their gate file, and the test waits for what the page shows (rows,
// data attributes, the page's refresh count) or for the API, each wait bounded
// generously (60 s) so that only a real failure ends it.
import {after, before, test} from 'node:test';
import assert from 'node:assert/strict';
import {spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {createRequire} from 'node:module';

const SOURCE_DIR = process.env.SWEEP_SOURCE_DIR || path.resolve(import.meta.dirname ?? '.', '../..');
const SWEEP_BIN = process.env.SWEEP_BIN || path.join(SOURCE_DIR, 'build/cli/sweep');
const ARTIFACTS = process.env.SWEEP_ARTIFACTS_DIR || path.join(os.tmpdir(), 'sweep-browser-artifacts');
const CHROMIUM = process.env.SWEEP_CHROMIUM || '/usr/bin/chromium';

let chromium;
try {
  const require = createRequire(path.join(SOURCE_DIR, 'dashboard', 'package.json'));
  ({chromium} = require('playwright-core'));
} catch (e) {
  console.log(`SKIP: playwright-core is not installed in dashboard/node_modules (${e.message}); run scripts/setup.sh`);
  process.exit(77);
}
if (!fs.existsSync(CHROMIUM)) {
  console.log(`SKIP: ${CHROMIUM} is missing; run scripts/setup.sh (Debian package chromium)`);
  process.exit(77);
}
if (!fs.existsSync(SWEEP_BIN)) {
  console.error(`${SWEEP_BIN} is missing: build sweep first`);
  process.exit(1);
}
fs.mkdirSync(ARTIFACTS, {recursive: true});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A bound for a wait that holds as soon as the condition does: long, so that only
// something really broken reaches it, on a loaded machine too.
const PATIENCE_MS = 60000;

async function waitFor(what, cond, timeoutMs = PATIENCE_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await cond();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

// GET over plain HTTP from node, outside the browser: {status, body}.
function httpGet(url, headers = {}) {
  return new Promise((resolve, reject) => {
    http.get(url, {headers}, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({status: res.statusCode, headers: res.headers, body}));
    }).on('error', reject);
  });
}

// A scheduler process with its dashboard; `log` accumulates its stderr.
class Scheduler {
  constructor(dir, http) {
    this.dir = dir;
    this.log = '';
    const portFile = path.join(dir, 'port');
    this.proc = spawn(SWEEP_BIN, ['scheduler', '--listen', '127.0.0.1:0', '--http', http,
                                  '--db', path.join(dir, 'sweeps.db'), '--port-file', portFile,
                                  '--lease-timeout', '60', '--heartbeat-interval', '0.2',
                                  '--log-level', 'info'],
                      {cwd: dir, stdio: ['ignore', 'pipe', 'pipe']});
    const take = (c) => { this.log += c; };
    this.proc.stdout.on('data', take);
    this.proc.stderr.on('data', take);
    this.portFile = portFile;
    this.exited = new Promise((r) => this.proc.once('exit', r));
  }
  async ready() {
    await waitFor('the scheduler to listen', () => fs.existsSync(this.portFile));
    this.address = fs.readFileSync(this.portFile, 'utf8').trim();
    const m = await waitFor('the dashboard URL in the log', () => this.log.match(/dashboard on (http:\/\/\S+)/));
    this.url = m[1];
    const u = new URL(this.url);
    this.port = Number(u.port);
    this.token = u.searchParams.get('token');
    // The URL printed names this host; reach it through loopback.
    this.local = `http://127.0.0.1:${this.port}/`;
    return this;
  }
  stop() {
    if (this.proc.exitCode === null) this.proc.kill('SIGTERM');
  }
}

// Resolves when `child` has exited (at once if it already has).
function exitOf(child) {
  return child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve() : new Promise((r) => child.once('exit', r));
}

function sweepCmd(args, cwd) {
  const r = spawnSync(SWEEP_BIN, args, {cwd, encoding: 'utf8', timeout: 30000});
  assert.equal(r.status, 0, `sweep ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sweep-browser-'));
// The trials' gate (trial.sh --gate): they hold after step 1 until it exists.
const gate = path.join(dir, 'go');
const release = () => fs.writeFileSync(gate, '');
const procs = [];
let scheduler, context, page, sweepId, api;

async function shot(name) {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({path: path.join(ARTIFACTS, `${name}.png`), fullPage: true});
}

before(async () => {
  scheduler = await new Scheduler(dir, '127.0.0.1:0').ready();
  procs.push(scheduler);
  for (let i = 0; i < 2; ++i) {
    const w = spawn(SWEEP_BIN, ['worker', '--scheduler', scheduler.address, '--cpus', '1',
                                '--work-dir', path.join(dir, 'runs'), '--kill-grace', '1',
                                '--drain-timeout', '1', '--log-level', 'warn'],
                    {cwd: dir, stdio: 'ignore'});
    procs.push({stop: () => { if (w.exitCode === null) w.kill('SIGTERM'); }, exited: exitOf(w)});
  }
  const spec = path.join(dir, 'demo.yaml');
  fs.writeFileSync(spec, `name: dashboard-demo
program: ${path.join(SOURCE_DIR, 'tests/browser/trial.sh')}
command: ["/bin/sh", "\${program}", "\${args}"]
method: random
seed: 11
run_cap: 8
metric: {name: loss, goal: minimize}
parameters:
  lr: {distribution: log_uniform_values, min: 0.0001, max: 0.5}
  layers: {values: [1, 2, 4]}
  gate: {value: ${JSON.stringify(gate)}}
`);
  sweepId = sweepCmd(['submit', spec, '--scheduler', scheduler.address], dir);
  assert.match(sweepId, /^[0-9a-f]{8}$/);
  api = async (p) => JSON.parse((await httpGet(scheduler.local + p.replace(/^\//, ''))).body);

  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sweep-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: {width: 1440, height: 900},
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(PATIENCE_MS);
  page.on('pageerror', (e) => console.error('page error:', e));
});

after(async () => {
  release();  // no trial is left waiting for its gate
  if (context) await context.close();
  for (const p of procs) p.stop();
  let bound;
  await Promise.race([Promise.all(procs.map((p) => p.exited)),
                      new Promise((r) => { bound = setTimeout(r, PATIENCE_MS); })]);
  clearTimeout(bound);
  if (process.env.SWEEP_KEEP_TMP === undefined) fs.rmSync(dir, {recursive: true, force: true});
});

// Waits until the page has completed a refresh that started after this call: what
// it shows then reflects the API at least as of now.
async function nextRefresh() {
  const seen = Number(await page.getAttribute('#live', 'data-refreshes') || 0);
  await page.waitForFunction((n) => Number(document.getElementById('live').dataset.refreshes || 0) > n + 1,
                             seen);
}

async function tableStates() {
  return page.$$eval('#trials tbody tr', (rows) => rows.map((r) => [r.dataset.trial, r.dataset.state]));
}

function seriesOf(selector) {
  return page.evaluate((sel) => {
    const c = echarts.getInstanceByDom(document.querySelector(sel));
    if (!c) return null;
    const o = c.getOption();
    return {
      series: o.series.map((s) => ({name: s.name, type: s.type, width: s.lineStyle && s.lineStyle.width,
                                    points: (s.data || []).length})),
      xAxisType: o.xAxis && o.xAxis[0] && o.xAxis[0].type,
      parallelAxes: (o.parallelAxis || []).map((a) => `${a.name}:${a.type}`),
    };
  }, selector);
}

test('a running trial turns finished in the table without a reload', async () => {
  await page.goto(`${scheduler.local}#/sweeps/${sweepId}`);
  // The trials hold at their gate: some are running until the test releases them.
  const running = await waitFor('a running trial row', async () => {
    const rows = await tableStates();
    const r = rows.find(([, s]) => s === 'running');
    return r && r[0];
  });
  await page.evaluate(() => { window.__noReload = 42; });
  await shot('sweep-running');
  release();
  const ended = await waitFor(`${running} to end in the page`, async () => {
    const s = await page.getAttribute(`#trials tr[data-trial="${running}"]`, 'data-state');
    return s === 'completed' || s === 'failed' ? s : null;
  });
  assert.ok(['completed', 'failed'].includes(ended));
  assert.equal(await page.evaluate(() => window.__noReload), 42, 'the page was not reloaded');
});

test('the trial table has one row per trial with the states the scheduler stored', async () => {
  await waitFor('the sweep to finish', async () => (await api(`/api/sweeps/${sweepId}`)).state === 'finished');
  const truth = (await api(`/api/sweeps/${sweepId}/trials`)).trials.map((t) => [t.id, t.state]);
  assert.equal(truth.length, 8);
  assert.ok(truth.some(([, s]) => s === 'failed'), 'the spec makes some trials fail (layers=4)');
  await page.click('#trials th[data-key="index"]');  // sorted by index (ascending)
  await waitFor('the table to match the database', async () => {
    const rows = await tableStates();
    return JSON.stringify(rows.sort()) === JSON.stringify([...truth].sort());
  });
  // The best trial is marked.
  const best = (await api(`/api/sweeps/${sweepId}`)).best.trial;
  assert.equal(await page.getAttribute(`#trials tr[data-trial="${best}"]`, 'class').then((c) => c.includes('best')), true);
  assert.equal(await page.textContent(`#trials tr[data-trial="${best}"] .best-tag`), 'BEST');
  // Filter by state.
  await page.click('#state-filter [data-filter="failed"]');
  const failed = await tableStates();
  assert.deepEqual(failed.map(([, s]) => s).filter((s) => s !== 'failed'), []);
  assert.equal(failed.length, truth.filter(([, s]) => s === 'failed').length);
  await page.click('#state-filter [data-filter="all"]');
  // Sort by the metric: the best trial comes first.
  await page.click('#trials th[data-key="final_metric"]');
  assert.equal((await tableStates())[0][0], best);
  await nextRefresh();  // the charts drawn from the finished sweep
  await shot('sweep');
});

test('learning curves and parallel coordinates draw one series per trial, best highlighted', async () => {
  const trials = (await api(`/api/sweeps/${sweepId}/trials`)).trials;
  const best = (await api(`/api/sweeps/${sweepId}`)).best.trial;
  const ids = trials.map((t) => t.id).sort();

  const curves = await seriesOf('#curves');
  assert.deepEqual(curves.series.map((s) => s.name).sort(), ids, 'every trial reported at least 2 steps');
  for (const s of curves.series) {
    const t = trials.find((x) => x.id === s.name);
    assert.equal(s.points, t.state === 'failed' ? 2 : 5, s.name);
  }
  assert.equal(curves.series.find((s) => s.name === best).width, 3.5);
  assert.ok(curves.series.filter((s) => s.name !== best).every((s) => s.width < 3.5));

  const parallel = await seriesOf('#parallel');
  assert.deepEqual(parallel.series.map((s) => s.name).sort(), ids);
  assert.ok(parallel.series.every((s) => s.type === 'parallel' && s.points === 1));
  assert.deepEqual(parallel.parallelAxes, ['lr:log', 'layers:value', 'loss:value']);

  // Scatter: lr is log-uniform, so its axis is logarithmic.
  const lr = await seriesOf('#scatter-lr');
  assert.equal(lr.xAxisType, 'log');
  assert.equal(lr.series.reduce((a, s) => a + s.points, 0), trials.length);
  assert.equal((await seriesOf('#scatter-layers')).xAxisType, 'value');

  // Hovering a curve shows the trial and its parameters.
  await page.locator('#curves').scrollIntoViewIfNeeded();
  const box = await page.locator('#curves').boundingBox();
  const pos = await page.evaluate(([sel, id]) => {
    const c = echarts.getInstanceByDom(document.querySelector(sel));
    const s = c.getOption().series.find((x) => x.name === id);
    return c.convertToPixel({seriesName: id}, s.data[s.data.length - 1]);
  }, ['#curves', best]);
  await page.mouse.move(box.x + pos[0], box.y + pos[1]);
  const tip = await waitFor('the tooltip', async () => {
    const text = await page.evaluate(() => [...document.querySelectorAll('#curves div')]
        .map((d) => d.innerText).find((t) => t && t.includes('step')));
    return text;
  });
  assert.match(tip, new RegExp(best));
  assert.match(tip, /lr/);
  assert.match(tip, /layers/);

  // The spec as submitted.
  assert.match(await page.textContent('#spec'), /name: dashboard-demo/);
});

test('a trial shows its parameters, metrics, exit status and log tails', async () => {
  const trials = (await api(`/api/sweeps/${sweepId}/trials`)).trials;
  const failed = trials.find((t) => t.state === 'failed');
  await page.click(`#trials tr[data-trial="${failed.id}"] a`);
  await page.waitForSelector('#log');
  await waitFor('the stdout tail', async () => (await page.textContent('#log')).includes('training lr='));
  assert.match(await page.textContent('#outcome'), /3/);
  assert.match(await page.textContent('#outcome'), /exit|status/i);
  assert.match(await page.textContent('#params'), /layers\s*4/);
  await page.click('[data-log="stderr"]');
  assert.match(await page.textContent('#log'), /diverged to nan at step 3/);
  const loss = await seriesOf('#metric-loss');
  assert.equal(loss.series[0].points, 2);
  assert.ok(await page.$('#metric-lr_seen'), 'every metric series has a chart');
  await shot('trial');
});

test('the sweeps list and the workers view show progress, best and every worker', async () => {
  await page.click('nav a[data-nav="sweeps"]');
  await page.waitForSelector(`#sweeps tr[data-sweep="${sweepId}"]`);
  const row = await page.textContent(`#sweeps tr[data-sweep="${sweepId}"]`);
  assert.match(row, /dashboard-demo/);
  assert.match(row, /finished/);
  assert.match(row, /8\/8/);
  assert.match(row, /loss/);
  await shot('sweeps');

  await page.click('nav a[data-nav="workers"]');
  await page.waitForSelector('#workers tbody tr');
  const workers = await page.$$eval('#workers tbody tr', (rows) => rows.map((r) => r.dataset.state));
  assert.equal(workers.length, 2);
  assert.ok(workers.every((s) => s === 'idle'), workers.join());
  assert.match(await page.textContent('#workers'), /CPU slot/);
  await shot('workers');
});

// Markup in every field a user controls. The page's Content-Security-Policy would
// stop an injected onerror handler from running, so the test looks for what would
// be injected: any element at all (the page itself has no <img>).
const evil = (what) => `<img src=x id=xss-${what} onerror=window.__xss=1>`;

async function assertNoMarkup(where) {
  const found = await page.evaluate(() => ({
    imgs: document.querySelectorAll('img').length,
    ids: [...document.querySelectorAll('[id^="xss-"]')].map((e) => e.id),
    handlers: document.querySelectorAll('[onerror]').length,
    xss: window.__xss,
  }));
  assert.deepEqual(found, {imgs: 0, ids: [], handlers: 0, xss: undefined}, where);
}

// Shows the tooltip of the first item of series `seriesIndex` in the chart at
// `selector` and returns the tooltip's text. A parallel-coordinates line is hovered
// with the mouse at the middle of its first segment (ECharts has no showTip for
// it); other items are shown with showTip, as hovering them would.
async function tooltipText(selector, seriesIndex) {
  await page.locator(selector).scrollIntoViewIfNeeded();
  const box = await page.locator(selector).boundingBox();
  return waitFor(`the tooltip of ${selector}`, async () => {
    const at = await page.evaluate(([sel, si]) => {
      const c = echarts.getInstanceByDom(document.querySelector(sel));
      const series = c.getModel().getSeriesByIndex(si);
      if (series.subType !== 'parallel') {
        c.dispatchAction({type: 'showTip', seriesIndex: si, dataIndex: 0});
        return null;
      }
      const pts = series.getData().getItemGraphicEl(0).shape.points;
      return [(pts[0][0] + pts[1][0]) / 2, (pts[0][1] + pts[1][1]) / 2];
    }, [selector, seriesIndex]);
    if (at) await page.mouse.move(box.x + at[0], box.y + at[1]);
    // The tooltip: the element that holds our markers, as text or as elements.
    return page.evaluate((sel) => {
      const tip = [...document.querySelectorAll(`${sel} div`)]
          .find((d) => d.textContent.includes('xss-') || d.querySelector('[id^="xss-"]'));
      return tip && tip.textContent;
    }, selector);
  });
}

test('names, parameter values, metric names and logs are shown as text, never as markup', async () => {
  // No string is parsed as HTML anywhere in the page's code (see h() in app.js).
  const appJs = fs.readFileSync(path.join(SOURCE_DIR, 'dashboard/web/app.js'), 'utf8');
  assert.doesNotMatch(appJs, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/);

  const trial = path.join(dir, 'hostile.sh');
  fs.writeFileSync(trial, `#!/bin/sh
m='${evil('metric')}'
case "$*" in *plain*) off=0 ;; *) off=1 ;; esac
for step in 1 2 3; do
  printf '{"step": %d, "%s": %d, "loss": 0.%d}\\n' "$step" "$m" $((step + off)) "$step" >> "$SWEEP_METRICS_FILE"
done
echo '${evil('stdout')}'
echo '${evil('stderr')}' >&2
`);
  const spec = path.join(dir, 'hostile.yaml');
  fs.writeFileSync(spec, `name: "${evil('sweep')}"
program: ${trial}
command: ["/bin/sh", "\${program}", "\${args}"]
method: grid
metric: {name: "${evil('metric')}", goal: minimize}
parameters:
  "${evil('param')}": {values: ["${evil('value')}", "plain"]}
`);
  const id = sweepCmd(['submit', spec, '--scheduler', scheduler.address], dir);
  await waitFor('the hostile sweep to finish', async () => (await api(`/api/sweeps/${id}`)).state === 'finished');

  await page.goto(`${scheduler.local}#/`);
  await page.waitForSelector(`#sweeps tr[data-sweep="${id}"]`);
  assert.ok((await page.textContent(`#sweeps tr[data-sweep="${id}"]`)).includes(evil('sweep')));
  await assertNoMarkup('the sweeps list');

  await page.goto(`${scheduler.local}#/sweeps/${id}`);
  await waitFor('both trials in the table', async () => (await tableStates()).length === 2);
  await nextRefresh();  // the charts drawn from the finished sweep
  assert.ok((await page.textContent('.page-head h1')).includes(evil('sweep')));
  const head = await page.textContent('#trials thead');
  assert.ok(head.includes(evil('param')), head);
  assert.ok(head.includes(evil('metric')), head);
  assert.ok((await page.textContent('#trials tbody')).includes(evil('value')));
  assert.ok((await page.textContent('#metric-select')).includes(evil('metric')));
  await assertNoMarkup('the sweep page');

  const curves = await tooltipText('#curves', 0);
  assert.ok(curves.includes(evil('metric')), curves);
  assert.ok(curves.includes(evil('param')), curves);
  await assertNoMarkup('the learning curves tooltip');
  const parallel = await tooltipText('#parallel', 0);
  assert.ok(parallel.includes(evil('param')) && parallel.includes(evil('metric')), parallel);
  await assertNoMarkup('the parallel coordinates tooltip');
  const scatter = await tooltipText('#scatter .chart', 1);
  assert.ok(scatter.includes(evil('value')) || scatter.includes('plain'), scatter);
  assert.ok(scatter.includes(evil('param')), scatter);
  await assertNoMarkup('the scatter tooltip');
  await shot('hostile-sweep');

  // A curve whose trial the (truncated) trials list left out: its tooltip has no
  // trial to show, only the curve's own line, with the metric's name.
  const trials = (await api(`/api/sweeps/${id}/trials`)).trials;
  const left = trials[0].id;
  await page.route(`**/api/sweeps/${id}/trials*`, async (route) => {
    const res = await route.fetch();
    const body = await res.json();
    body.trials = body.trials.filter((x) => x.id !== left);
    await route.fulfill({response: res, json: body});
  });
  await waitFor('the table without the left-out trial', async () => (await tableStates()).length === 1);
  await nextRefresh();
  const index = await page.evaluate((tid) => echarts.getInstanceByDom(document.querySelector('#curves'))
      .getOption().series.findIndex((x) => x.name === tid), left);
  assert.ok(index >= 0, 'its curve is still drawn');
  const lone = await tooltipText('#curves', index);
  assert.ok(lone.includes(evil('metric')) && !lone.includes(evil('param')), lone);
  await assertNoMarkup('the tooltip of a curve whose trial is not listed');
  await page.unroute(`**/api/sweeps/${id}/trials*`);

  const t = trials.find((x) => JSON.stringify(x.params).includes('xss-value'));
  await page.goto(`${scheduler.local}#/trials/${t.id}`);
  await waitFor('the stdout tail', async () => (await page.textContent('#log')).includes(evil('stdout')));
  const params = await page.textContent('#params');
  assert.ok(params.includes(evil('param')) && params.includes(evil('value')), params);
  await page.click('[data-log="stderr"]');
  assert.ok((await page.textContent('#log')).includes(evil('stderr')));
  const chart = await page.evaluate(() => {
    const el = [...document.querySelectorAll('#metrics .chart')].find((c) => c.dataset.metric.includes('xss-'));
    return el && `#${el.id}`;
  });
  assert.ok(chart, 'the metric with a markup name has its chart');
  const metric = await tooltipText(chart, 0);
  assert.ok(metric.includes(evil('metric')), metric);
  await assertNoMarkup('the trial page');
  await shot('hostile-trial');
});

test('an unknown sweep shows a message, not a blank page', async () => {
  await page.goto(`${scheduler.local}#/sweeps/deadbeef`);
  await page.waitForSelector('#error');
  assert.match(await page.textContent('#error'), /no sweep 'deadbeef' in this database/);
  await shot('unknown-sweep');
});

test('bound beyond loopback, requests without the token are refused', async () => {
  const openDir = fs.mkdtempSync(path.join(dir, 'open-'));
  const open = await new Scheduler(openDir, '0.0.0.0:0').ready();
  procs.push(open);
  assert.match(open.token || '', /^[0-9a-f]{48}$/, open.log);
  assert.equal((await httpGet(`${open.local}api/sweeps`)).status, 401);
  assert.equal((await httpGet(`${open.local}api/sweeps`, {'X-Sweep-Token': 'nope'})).status, 403);
  assert.equal((await httpGet(`${open.local}api/sweeps`, {'X-Sweep-Token': open.token})).status, 200);

  const refused = await page.goto(open.local);
  assert.equal(refused.status(), 401);
  assert.match(await page.textContent('body'), /needs its token/);
  await shot('token-refused');
  const ok = await page.goto(`${open.local}?token=${open.token}`);
  assert.equal(ok.status(), 200);
  await page.waitForSelector('.page-head h1');
  assert.match(await page.textContent('main'), /No sweeps yet/);
  assert.equal(new URL(page.url()).searchParams.get('token'), null, 'the token leaves the address bar');
  // The cookie set with the page lets it (and a reload) in.
  await page.reload();
  await page.waitForSelector('.page-head h1');
  open.stop();
});

test('when the scheduler goes away the page says so', async () => {
  await page.goto(`${scheduler.local}#/sweeps/${sweepId}`);
  await page.waitForSelector('#trials');
  scheduler.stop();
  await page.waitForSelector('#banner:not([hidden])');
  assert.match(await page.textContent('#banner'), /Cannot reach the sweep scheduler/);
  assert.equal(await page.getAttribute('#live', 'data-state'), 'error');
  assert.ok(await page.$('#trials'), 'the last data stays on the page');
  await shot('scheduler-gone');
});
