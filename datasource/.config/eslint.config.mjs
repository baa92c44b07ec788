/*
 * Lint settings in the create-plugin layout: Grafana's shared config plus type-aware rules
 * for the plugin's sources. Extend in ../eslint.config.mjs.
 */
import { defineConfig } from 'eslint/config';
import grafanaConfig from '@grafana/eslint-config/flat.js';

export default defineConfig([
  ...grafanaConfig,
  {
    rules: {
      'react/prop-types': 'off',
    },
  },
  {
    files: ['src/**/*.{ts,tsx}'],
    languageOptions: {
      parserOptions: { project: './tsconfig.json' },
    },
    rules: {
      '@typescript-eslint/no-deprecated': 'warn',
    },
  },
]);
