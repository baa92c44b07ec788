// The harness host stands in for Grafana's frontend: it provides the modules Grafana shares
// with plugins, loads the built dist/module.js through an AMD define() the way Grafana's
// loader does, and renders every editor the plugin exports. Only the backend is faked: HTTP
// requests to the datasource's resources get fixed lists, anything else is recorded as
// unexpected, and the runner fails on it.
import './boot';

import * as emotionCss from '@emotion/css';
import * as grafanaData from '@grafana/data';
import { DataSourceInstanceSettings, DataSourcePlugin, DataSourceSettings } from '@grafana/data';
import * as grafanaI18n from '@grafana/i18n';
import * as grafanaRuntime from '@grafana/runtime';
import { BackendSrv, BackendSrvRequest, config, setBackendSrv, setTemplateSrv, TemplateSrv } from '@grafana/runtime';
import * as grafanaUi from '@grafana/ui';
import * as React from 'react';
import * as ReactDOM from 'react-dom';
import { createRoot } from 'react-dom/client';
import * as jsxRuntime from 'react/jsx-runtime';
import * as rxjs from 'rxjs';
import { of, throwError } from 'rxjs';

import type { DataSource } from '../../src/datasource';
import type { QueryType, TelltaleOptions, TelltaleQuery, TelltaleSecureJsonData } from '../../src/types';

const QUERY_TYPES: QueryType[] = ['kpi', 'anomalies', 'servicemap', 'insights', 'deploys'];

// RESOURCES are what the fake backend answers for GET resources/<name>.
const RESOURCES: Record<string, unknown> = {
  kpis: ['orders', { name: 'revenue', unit: 'currencyEUR' }, 'checkout_latency'],
  services: ['cart', 'checkout', 'shop'],
  metrics: ['telltale_service_cpu_seconds_total', 'telltale_edge_rtt_seconds', 'up'],
};

interface HarnessState {
  ready: boolean;
  error?: string;
  unexpected: string[];
  requests: string[];
  queries: Record<string, TelltaleQuery>;
  runs: Record<string, number>;
  settings?: DataSourceSettings<TelltaleOptions, TelltaleSecureJsonData>;
}

const state: HarnessState = { ready: false, unexpected: [], requests: [], queries: {}, runs: {} };
(window as unknown as { __harness: HarnessState }).__harness = state;

// shared are the modules Grafana hands to plugins; a request for any other fails loudly.
const shared: Record<string, unknown> = {
  react: React,
  'react-dom': ReactDOM,
  'react/jsx-runtime': jsxRuntime,
  '@grafana/data': grafanaData,
  '@grafana/ui': grafanaUi,
  '@grafana/runtime': grafanaRuntime,
  '@grafana/i18n': grafanaI18n,
  '@emotion/css': emotionCss,
  rxjs,
};

let loaded: Record<string, unknown> | undefined;

// define is the AMD entry point dist/module.js calls.
function define(deps: string[], factory: (...args: unknown[]) => unknown) {
  const args = deps.map((d) => {
    if (d === 'module') {
      return { uri: new URL('/dist/module.js', window.location.href).href };
    }
    if (!(d in shared)) {
      throw new Error(`module.js needs "${d}", which Grafana's shared modules in this harness do not include`);
    }
    return shared[d];
  });
  loaded = factory(...args) as Record<string, unknown>;
}
define.amd = {};
(window as unknown as { define: typeof define }).define = define;

const backendSrv = {
  fetch(req: BackendSrvRequest) {
    state.requests.push(`${req.method ?? 'GET'} ${req.url}`);
    const m = req.url.match(/^\/api\/datasources\/uid\/harness\/resources\/(\w+)$/);
    if (req.method === 'GET' && m && m[1] in RESOURCES) {
      return of({ data: RESOURCES[m[1]], status: 200, ok: true, url: req.url });
    }
    state.unexpected.push(`${req.method} ${req.url}`);
    return throwError(() => ({ status: 404, data: { message: `no fake for ${req.url}` } }));
  },
} as unknown as BackendSrv;

const templateSrv = {
  replace: (target?: string) => target ?? '',
  getVariables: () => [],
  containsTemplate: () => false,
  updateTimeRange: () => {},
} as unknown as TemplateSrv;

const instanceSettings = {
  id: 1,
  uid: 'harness',
  type: 'telltale-insights-datasource',
  name: 'Telltale',
  access: 'proxy',
  readOnly: false,
  jsonData: {},
  meta: { id: 'telltale-insights-datasource', name: 'Telltale Insights', type: 'datasource', info: {} },
} as unknown as DataSourceInstanceSettings<TelltaleOptions>;

type Plugin = DataSourcePlugin<DataSource, TelltaleQuery, TelltaleOptions, TelltaleSecureJsonData>;

function QueryRow({ plugin, ds, queryType }: { plugin: Plugin; ds: DataSource; queryType: QueryType }) {
  const [query, setQuery] = React.useState<TelltaleQuery>({ refId: queryType, queryType });
  const Editor = plugin.components.QueryEditor!;
  state.queries[queryType] = query;
  return (
    <section data-editor={queryType} style={{ marginBottom: 16 }}>
      <h3>Query editor: {queryType}</h3>
      <Editor
        datasource={ds}
        query={query}
        onChange={setQuery}
        onRunQuery={() => {
          state.runs[queryType] = (state.runs[queryType] ?? 0) + 1;
        }}
      />
    </section>
  );
}

function ConfigPage({ plugin }: { plugin: Plugin }) {
  const [options, setOptions] = React.useState({
    ...instanceSettings,
    orgId: 1,
    typeName: 'Telltale Insights',
    typeLogoUrl: '/dist/img/logo.svg',
    url: 'http://localhost:9090',
    user: '',
    database: '',
    basicAuth: false,
    basicAuthUser: '',
    isDefault: false,
    withCredentials: false,
    jsonData: {
      timeout: 30,
      authType: 'basic' as const,
      basicAuthUser: 'grafana',
      kpis: [
        {
          name: 'orders',
          expr: 'sum(rate(shop_orders_total[5m]))',
          unit: 'reqps',
          objective: 2,
          direction: 'higher' as const,
        },
        {
          name: 'checkout_latency',
          expr: 'histogram_quantile(0.9, sum by (le) (rate(checkout_seconds_bucket[5m])))',
          unit: 's',
          direction: 'lower' as const,
        },
      ],
    },
    secureJsonFields: { basicAuthPassword: true },
    secureJsonData: {},
  } as DataSourceSettings<TelltaleOptions, TelltaleSecureJsonData>);
  const Editor = plugin.components.ConfigEditor!;
  state.settings = options;
  return (
    <section data-editor="config">
      <h3>Config editor</h3>
      <Editor options={options} onOptionsChange={setOptions} />
    </section>
  );
}

// start renders the plugin's editors once module.js has called define().
function start() {
  try {
    if (!loaded || !loaded.plugin) {
      throw new Error('dist/module.js did not define a module exporting "plugin"');
    }
    const plugin = loaded.plugin as Plugin;
    setBackendSrv(backendSrv);
    setTemplateSrv(templateSrv);
    const ds = new plugin.DataSourceClass(instanceSettings) as DataSource;
    const root = createRoot(document.getElementById('root')!);
    root.render(
      <grafanaData.ThemeContext.Provider value={config.theme2}>
        {/* Grafana's own global styles (box sizing, fonts), as every Grafana page has them. */}
        <grafanaUi.GlobalStyles />
        <main
          style={{
            padding: 16,
            maxWidth: 1100,
            background: config.theme2.colors.background.primary,
            color: config.theme2.colors.text.primary,
            fontFamily: config.theme2.typography.fontFamily,
            fontSize: config.theme2.typography.fontSize,
          }}
        >
          {QUERY_TYPES.map((t) => (
            <QueryRow key={t} plugin={plugin} ds={ds} queryType={t} />
          ))}
          <ConfigPage plugin={plugin} />
        </main>
      </grafanaData.ThemeContext.Provider>
    );
    setTimeout(() => {
      state.ready = true;
    }, 0);
  } catch (err) {
    state.error = err instanceof Error ? err.message : String(err);
    throw err;
  }
}

(window as unknown as { __startHarness: () => void }).__startHarness = start;
