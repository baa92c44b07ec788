import fs from 'fs';
import path from 'path';
import { glob } from 'glob';

import { SOURCE_DIR } from './constants';

function readJson(file: string) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

export function getPackageJson() {
  return readJson(path.resolve(process.cwd(), 'package.json'));
}

export function getPluginJson() {
  return readJson(path.resolve(process.cwd(), SOURCE_DIR, 'plugin.json'));
}

export function hasReadme() {
  return fs.existsSync(path.resolve(process.cwd(), SOURCE_DIR, 'README.md'));
}

// getEntries finds every plugin.json under src/ with a module.ts beside it, so a nested
// plugin would get its own entry; for this plugin there is one: "module".
export async function getEntries(): Promise<Record<string, string>> {
  const entries: Record<string, string> = {};
  const pluginJsons = await glob(`${SOURCE_DIR}/**/plugin.json`, { absolute: true });
  for (const pluginJson of pluginJsons) {
    const dir = path.dirname(pluginJson);
    const modules = await glob(`${dir}/module.{ts,tsx,js,jsx}`, { absolute: true });
    for (const module of modules) {
      const rel = path.relative(path.resolve(process.cwd(), SOURCE_DIR), path.dirname(module));
      entries[rel === '' ? 'module' : `${rel}/module`] = module;
    }
  }
  return entries;
}
