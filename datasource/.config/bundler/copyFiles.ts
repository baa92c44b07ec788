import { getPluginJson, hasReadme } from './utils';

const pluginJson = getPluginJson();
const logos: string[] = Array.from(
  new Set<string>([pluginJson.info?.logos?.small, pluginJson.info?.logos?.large].filter(Boolean))
);
const screenshots: string[] = (pluginJson.info?.screenshots ?? []).map((s: { path: string }) => s.path);

// copyFilePatterns are the non-code files Grafana reads from the plugin directory. Paths
// are relative to src/ (the webpack context).
export const copyFilePatterns = [
  { from: hasReadme() ? 'README.md' : '../README.md', to: '.', force: true },
  { from: 'plugin.json', to: '.' },
  { from: '../../LICENSE', to: '.' },
  { from: '../CHANGELOG.md', to: '.', force: true },
  ...logos.map((p) => ({ from: p, to: p })),
  ...screenshots.map((p) => ({ from: p, to: p })),
];
