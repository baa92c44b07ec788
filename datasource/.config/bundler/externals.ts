import type { Configuration, ExternalItemFunctionData } from 'webpack';

// externals are the modules Grafana's frontend hands to a plugin at load time through its
// AMD loader; bundling a second copy of any of them breaks shared state (React context,
// the theme, the runtime's service singletons).
export const externals: Configuration['externals'] = [
  // The AMD "module" dependency tells module.js its own URL, for the public path.
  { 'amd-module': 'module' },
  'lodash',
  'jquery',
  'moment',
  'slate',
  'emotion',
  '@emotion/react',
  '@emotion/css',
  'prismjs',
  'slate-plain-serializer',
  '@grafana/slate-react',
  'react',
  'react/jsx-runtime',
  'react/jsx-dev-runtime',
  'react-dom',
  'react-redux',
  'redux',
  'rxjs',
  'i18next',
  'react-router',
  'd3',
  'angular',
  /^@grafana\/ui/i,
  /^@grafana\/runtime/i,
  /^@grafana\/data/i,
  /^@grafana\/i18n/i,
  // Old-style imports such as "grafana/app/..." resolve to Grafana's own modules.
  ({ request }: ExternalItemFunctionData, callback: (err?: Error, result?: string) => void) => {
    if (request && request.startsWith('grafana/')) {
      return callback(undefined, request.slice('grafana/'.length));
    }
    callback();
  },
];
