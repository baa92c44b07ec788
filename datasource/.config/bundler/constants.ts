// Paths relative to the datasource/ directory, where npm scripts run.
export const SOURCE_DIR = 'src';
export const DIST_DIR = 'dist';
