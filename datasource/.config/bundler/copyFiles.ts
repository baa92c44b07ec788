import fs from 'fs';
import path from 'path';

import { SOURCE_DIR } from './constants';
import { getPluginJson, hasReadme } from './utils';

const pluginJson = getPluginJson();
const logos: string[] = Array.from(
  new Set<string>([pluginJson.info?.logos?.small, pluginJson.info?.logos?.large].filter(Boolean))
);
const screenshots: string[] = (pluginJson.info?.screenshots ?? []).map((s: { path: string }) => s.path);

// Dashboards that plugin.json includes ship inside the plugin at the path it names. The file
// comes from src/<path> when there is one, else from the repository root's <path>, so
// plugin.json can include the project's own dashboards/*.json without a copy in src/.
const includedFiles: Array<{ from: string; to: string }> = (pluginJson.includes ?? [])
  .filter((inc: { type?: string; path?: string }) => inc.type === 'dashboard' && inc.path)
  .map((inc: { path: string }) => ({
    from: fs.existsSync(path.resolve(process.cwd(), SOURCE_DIR, inc.path)) ? inc.path : path.join('..', '..', inc.path),
    to: inc.path,
  }));

// copyFilePatterns are the non-code files Grafana reads from the plugin directory. Paths
// are relative to src/ (the webpack context).
export const copyFilePatterns = [
  { from: hasReadme() ? 'README.md' : '../README.md', to: '.', force: true },
  { from: 'plugin.json', to: '.' },
  { from: '../../LICENSE', to: '.' },
  { from: '../CHANGELOG.md', to: '.', force: true },
  ...logos.map((p) => ({ from: p, to: p })),
  ...screenshots.map((p) => ({ from: p, to: p })),
  ...includedFiles,
];
