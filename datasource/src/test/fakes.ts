import { ScopedVars } from '@grafana/data';
import { TemplateSrv } from '@grafana/runtime';

import { DataSource } from '../datasource';
import { Resource } from '../types';

// fakeDatasource stands in for the DataSource at the backend edge: listResource answers from
// the given lists (or with the given error) and records each call.
export function fakeDatasource(lists: Partial<Record<Resource, string[] | Error>>) {
  const listResource = jest.fn(async (r: Resource) => {
    const v = lists[r];
    if (v instanceof Error) {
      throw v;
    }
    return v ?? [];
  });
  return { ds: { listResource } as unknown as DataSource, listResource };
}

type Format = string | ((value: unknown, variable?: unknown) => string) | undefined;

// fakeTemplateSrv replaces $name and ${name} from a fixed variable map, calling a format
// function the way Grafana's TemplateSrv does: with the raw value, an array for multi-value
// variables. Scoped variables win over the map.
export function fakeTemplateSrv(vars: Record<string, string | string[]>): TemplateSrv {
  const replace = (target?: string, scopedVars?: ScopedVars, format?: Format): string =>
    (target ?? '').replace(/\$(\w+)|\$\{(\w+)\}/g, (match, a: string | undefined, b: string | undefined) => {
      const name = (a ?? b)!;
      const scoped = scopedVars?.[name]?.value;
      const value = scoped !== undefined ? scoped : vars[name];
      if (value === undefined) {
        return match;
      }
      if (typeof format === 'function') {
        return format(value);
      }
      return Array.isArray(value) ? `{${value.join(',')}}` : String(value);
    });
  return {
    replace,
    getVariables: () => [],
    containsTemplate: (t?: string) => /\$\w+|\$\{\w+\}/.test(t ?? ''),
    updateTimeRange: () => {},
  } as unknown as TemplateSrv;
}
