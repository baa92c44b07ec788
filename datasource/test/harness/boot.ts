// Grafana writes its boot data into the page before any of its modules run; @grafana/runtime
// reads it once at import. This module is imported first so the harness does the same.
const w = window as unknown as Record<string, unknown>;
w.grafanaBootData = {
  settings: { appSubUrl: '', buildInfo: { version: '12.4.10' }, featureToggles: {} },
  user: { theme: 'dark', language: 'en-US', timezone: 'utc' },
  navTree: [],
  assets: { dark: '', light: '' },
};
w.__grafana_public_path__ = '/public/';
