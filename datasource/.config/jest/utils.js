// nodeModulesToTransform builds a transformIgnorePatterns entry that ignores node_modules
// except the named packages, which jest then transforms like source.
const nodeModulesToTransform = (names) => `node_modules/(?!.*(${names.join('|')})/.*)`;

// grafanaESModules are dependencies of @grafana/* published only as ES modules.
const grafanaESModules = [
  '@grafana/schema',
  '@wojtekmaj/date-utils',
  'd3',
  'd3-color',
  'd3-force',
  'd3-interpolate',
  'd3-scale-chromatic',
  'get-user-locale',
  'marked',
  'memoize',
  'mimic-function',
  'ol',
  'react-calendar',
  'react-colorful',
  'rxjs',
  'uuid',
];

module.exports = { nodeModulesToTransform, grafanaESModules };
