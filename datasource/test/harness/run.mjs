// Headless Chromium test of the built plugin: serves a page that loads dist/module.js the way
// Grafana does (AMD, shared @grafana/* modules from the harness host), renders every editor,
// drives a few of them, fails on any console error, page error or failed request, and saves
// a screenshot to test-results/harness.png.
//
// Usage: node test/harness/run.mjs (from datasource/, after `npm run build`).
// CHROMIUM overrides the browser path (default /usr/bin/chromium). Without a browser the test
// is skipped on a developer machine and fails when CI=true.
import { build } from 'esbuild';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const dist = path.join(root, 'dist');
const outDir = path.join(root, 'test-results');
const icons = path.join(root, 'node_modules/@grafana/ui/dist/public/img/icons');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
// Same rule as internal/testenv: CI set to anything but empty or a false value means CI.
const ci = Boolean(process.env.CI) && !['0', 'f', 'false'].includes(process.env.CI.toLowerCase());

const QUERY_TYPES = ['kpi', 'anomalies', 'servicemap', 'insights', 'deploys'];

function fatal(msg) {
  console.error(`harness: ${msg}`);
  process.exit(1);
}

if (!fs.existsSync(executablePath)) {
  if (ci) {
    fatal(`no Chromium at ${executablePath} (CI=true: a missing browser is a failure; apt-get install chromium)`);
  }
  console.log(`harness: SKIP: no Chromium at ${executablePath} (set CHROMIUM or apt-get install chromium)`);
  process.exit(0);
}
if (!fs.existsSync(path.join(dist, 'module.js'))) {
  fatal(`no ${path.relative(process.cwd(), path.join(dist, 'module.js'))}: run npm run build first`);
}

fs.mkdirSync(path.join(outDir, 'harness'), { recursive: true });
const started = Date.now();
await build({
  entryPoints: [path.join(here, 'host.tsx')],
  outfile: path.join(outDir, 'harness', 'host.js'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2020',
  jsx: 'automatic',
  // Development React: it reports misuse (keys, props, state updates) as console errors.
  define: { 'process.env.NODE_ENV': '"development"', global: 'globalThis' },
  loader: {
    '.svg': 'dataurl',
    '.png': 'dataurl',
    '.css': 'empty',
    '.woff': 'empty',
    '.woff2': 'empty',
    '.ttf': 'empty',
  },
  logLevel: 'error',
});
const bundled = Date.now();

const types = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
  '.md': 'text/markdown',
};

// serve maps URL paths onto the harness page, its host bundle, dist/ and Grafana's icons.
function resolve(urlPath) {
  if (urlPath === '/') {
    return path.join(here, 'index.html');
  }
  const routes = [
    ['/harness/', path.join(outDir, 'harness')],
    ['/dist/', dist],
    ['/public/build/img/icons/', icons],
    // Grafana's server has a few icons of its own that @grafana/ui does not ship.
    ['/public/build/img/icons/unicons/', path.join(here, 'icons')],
  ];
  for (const [prefix, dir] of routes) {
    if (urlPath.startsWith(prefix)) {
      const file = path.resolve(dir, '.' + urlPath.slice(prefix.length - 1));
      if (file.startsWith(dir + path.sep) && fs.existsSync(file)) {
        return file;
      }
    }
  }
  return undefined;
}

const server = http.createServer((req, res) => {
  const urlPath = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  if (urlPath.startsWith('/public/fonts/')) {
    // Grafana's server has its fonts; the harness has none, and the browser's own fonts
    // stand in (no content, so no failed request).
    res.writeHead(204).end();
    return;
  }
  const file = resolve(urlPath);
  if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
    res.writeHead(404).end('not found');
    return;
  }
  res.writeHead(200, { 'Content-Type': types[path.extname(file)] ?? 'application/octet-stream' });
  fs.createReadStream(file).pipe(res);
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const base = `http://127.0.0.1:${server.address().port}`;

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'telltale-harness-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
  viewport: { width: 1200, height: 900 },
});

const problems = [];
const results = [];
const page = context.pages()[0] ?? (await context.newPage());
page.on('console', (msg) => {
  if (msg.type() === 'error' || msg.type() === 'assert') {
    problems.push(`console.${msg.type()}: ${msg.text()}`);
  }
});
page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
page.on('response', (res) => {
  if (res.status() >= 400) {
    problems.push(`HTTP ${res.status()} for ${res.url()}`);
  }
});

// check runs one named step and records whether it passed.
async function check(name, fn) {
  try {
    await fn();
    results.push({ name, ok: true });
  } catch (err) {
    results.push({ name, ok: false, err: err instanceof Error ? err.message : String(err) });
  }
}

function expect(cond, msg) {
  if (!cond) {
    throw new Error(msg);
  }
}

const harness = () => page.evaluate(() => window.__harness);

// settle waits up to 5 s for React to commit what an action caused; the check after it
// reports what is wrong if it never happens.
const settle = (fn) => page.waitForFunction(fn, null, { timeout: 5000 }).catch(() => {});

try {
  await page.goto(base + '/', { waitUntil: 'load' });
  await page.waitForFunction(() => window.__harness && (window.__harness.ready || window.__harness.error), null, {
    timeout: 30000,
  });
  const h = await harness();
  expect(!h.error, `harness did not start: ${h.error}`);

  for (const t of QUERY_TYPES) {
    await check(`query editor ${t} renders`, async () => {
      const section = page.locator(`section[data-editor="${t}"]`);
      await section.waitFor({ timeout: 10000 });
      const checked = section.locator('input[type="radio"]:checked');
      expect((await checked.count()) === 1, 'want one checked query type');
      const fields = {
        kpi: ['kpi'],
        anomalies: ['kpi', 'metric', 'selector'],
        servicemap: ['service', 'host'],
        insights: ['kpi'],
        deploys: ['service'],
      }[t];
      for (const f of fields) {
        const n = await section.locator(`#telltale-${f}-${t}`).count();
        expect(n === 1, `field ${f} missing`);
      }
    });
  }

  await check('config editor renders', async () => {
    const section = page.locator('section[data-editor="config"]');
    expect((await section.locator('#telltale-url').inputValue()) === 'http://localhost:9090', 'URL not shown');
    expect(
      (await section.locator('#telltale-basic-password').inputValue()) === 'configured',
      'stored password not shown as configured'
    );
    expect((await section.locator('[data-testid^="kpi-row-"]').count()) === 2, 'want 2 KPI rows');
  });

  await check('KPI picker loads KPIs from the backend and sets the query', async () => {
    await page.locator('#telltale-kpi-kpi').click();
    await page.getByRole('option', { name: 'revenue' }).click();
    await settle(() => window.__harness.queries.kpi.kpi === 'revenue');
    const s = await harness();
    expect(s.queries.kpi.kpi === 'revenue', `query.kpi = ${JSON.stringify(s.queries.kpi.kpi)}`);
    expect((s.runs.kpi ?? 0) >= 1, 'onRunQuery not called');
    expect(s.requests.includes('GET /api/datasources/uid/harness/resources/kpis'), `requests: ${s.requests}`);
  });

  await check('service map host filter edits the query', async () => {
    await page.locator('#telltale-host-servicemap').fill('db-.*');
    await page.locator('#telltale-host-servicemap').blur();
    await settle(() => window.__harness.queries.servicemap.host === 'db-.*');
    const s = await harness();
    expect(s.queries.servicemap.host === 'db-.*', `query.host = ${JSON.stringify(s.queries.servicemap.host)}`);
    expect((s.runs.servicemap ?? 0) >= 1, 'onRunQuery not called on blur');
  });

  await check('config editor switches to bearer authentication', async () => {
    // Grafana's radio buttons lay the (transparent) input over its label: click the input.
    await page.locator('section[data-editor="config"]').getByRole('radio', { name: 'Bearer token' }).click();
    await page.locator('#telltale-bearer-token').fill('token-123');
    await settle(() => window.__harness.settings.secureJsonData.bearerToken === 'token-123');
    const s = await harness();
    expect(s.settings.jsonData.authType === 'bearer', `authType = ${s.settings.jsonData.authType}`);
    expect(s.settings.secureJsonData.bearerToken === 'token-123', 'token not in secureJsonData');
  });

  await check('no label is covered by a control', async () => {
    // A field's label must be readable: no input, button or picker may lie over it (as a
    // too-narrow layout does when the next field's control starts inside the label).
    const covered = await page.evaluate(() => {
      const out = [];
      const visible = (r) => r.width > 0 && r.height > 0;
      const labels = [...document.querySelectorAll('main label')].filter((l) => {
        const radio = l.htmlFor && document.getElementById(l.htmlFor)?.type === 'radio';
        return l.textContent.trim() !== '' && !radio && !l.querySelector('input[type="radio"]');
      });
      const controls = [
        ...document.querySelectorAll('main input, main textarea, main button, main [role="combobox"]'),
      ].filter((c) => c.type !== 'radio' && c.type !== 'checkbox' && c.type !== 'hidden');
      for (const l of labels) {
        const a = l.getBoundingClientRect();
        if (!visible(a)) {
          continue;
        }
        for (const c of controls) {
          if (l.contains(c)) {
            continue;
          }
          const b = c.getBoundingClientRect();
          const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
          const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
          if (visible(b) && w > 2 && h > 2) {
            out.push(
              `"${l.textContent.trim()}" under ${c.tagName.toLowerCase()}${c.id ? '#' + c.id : ''} (${Math.round(w)}×${Math.round(h)} px)`
            );
            break;
          }
        }
      }
      return out;
    });
    expect(covered.length === 0, `labels covered: ${covered.join('; ')}`);
  });

  await check('no unexpected backend requests', async () => {
    const s = await harness();
    expect(s.unexpected.length === 0, `unexpected: ${s.unexpected.join(', ')}`);
  });

  await page.mouse.click(5, 5);
  // Let icons load and late effects run before the screenshot and the console verdict.
  await page.waitForLoadState('networkidle');
  await page.screenshot({ path: path.join(outDir, 'harness.png'), fullPage: true });
} catch (err) {
  problems.push(`harness: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  await context.close();
  server.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}

results.push({
  name: 'no console errors, page errors or failed requests',
  ok: problems.length === 0,
  err: problems.join('\n  '),
});
for (const r of results) {
  console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}${r.ok ? '' : `\n  ${r.err}`}`);
}
const failed = results.filter((r) => !r.ok).length;
console.log(
  `harness: bundle ${bundled - started} ms, browser ${Date.now() - bundled} ms, screenshot ${path.relative(process.cwd(), path.join(outDir, 'harness.png'))}`
);
console.log(`harness: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
