import { CoreApp, DataSourceInstanceSettings, ScopedVars } from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv, TemplateSrv } from '@grafana/runtime';

import { DEFAULT_QUERY, Resource, TelltaleOptions, TelltaleQuery } from './types';

// DataSource is the frontend half of the Telltale datasource: queries, health checks and
// resources all go to the Go backend; the frontend only interpolates dashboard variables and
// feeds the editors.
export class DataSource extends DataSourceWithBackend<TelltaleQuery, TelltaleOptions> {
  constructor(instanceSettings: DataSourceInstanceSettings<TelltaleOptions>) {
    super(instanceSettings);
    // Standard annotation support: any query type can back an annotation, "deploys" is meant for it.
    this.annotations = {};
  }

  getDefaultQuery(_: CoreApp): Partial<TelltaleQuery> {
    return DEFAULT_QUERY;
  }

  applyTemplateVariables(query: TelltaleQuery, scopedVars: ScopedVars): TelltaleQuery {
    return interpolateQuery(query, scopedVars, getTemplateSrv());
  }

  interpolateVariablesInQueries(queries: TelltaleQuery[], scopedVars: ScopedVars): TelltaleQuery[] {
    return queries.map((q) => ({ ...this.applyTemplateVariables(q, scopedVars), datasource: this.getRef() }));
  }

  // listResource fetches one of the backend's name lists (KPIs, services, metric names).
  async listResource(resource: Resource): Promise<string[]> {
    return parseNameList(resource, await this.getResource(resource));
  }
}

// interpolateQuery replaces dashboard variables in every text field of a query. Fields that
// the backend reads as regular expressions (service, host) and the PromQL selector get
// multi-value variables as an escaped alternation, the way Grafana's Prometheus datasource
// does, so `service=~"$service"` works with several services selected.
export function interpolateQuery(
  query: TelltaleQuery,
  scopedVars: ScopedVars,
  templateSrv: TemplateSrv
): TelltaleQuery {
  const out: TelltaleQuery = { ...query };
  if (query.kpi) {
    out.kpi = templateSrv.replace(query.kpi, scopedVars);
  }
  if (query.selector) {
    out.selector = templateSrv.replace(query.selector, scopedVars, regexFormat);
  }
  if (query.service) {
    out.service = templateSrv.replace(query.service, scopedVars, regexFormat);
  }
  if (query.host) {
    out.host = templateSrv.replace(query.host, scopedVars, regexFormat);
  }
  return out;
}

// regexFormat formats a variable's value for a regular-expression context: one value as it
// is (it may itself be a regex), several as an alternation of their escaped literals.
export function regexFormat(value: unknown): string {
  if (Array.isArray(value)) {
    if (value.length === 1) {
      return String(value[0]);
    }
    return '(' + value.map((v) => escapeRegex(String(v))).join('|') + ')';
  }
  return String(value);
}

// escapeRegex quotes every RE2 metacharacter in s.
export function escapeRegex(s: string): string {
  return s.replace(/[\\^$*+?.()|[\]{}]/g, '\\$&');
}

// parseNameList reads a resource reply: a JSON array whose items are names or objects with
// a "name" string. Anything else is an error that says which item was wrong.
export function parseNameList(resource: string, body: unknown): string[] {
  if (!Array.isArray(body)) {
    throw new Error(`resource ${resource}: expected a JSON array, got ${describe(body)}`);
  }
  const names = new Set<string>();
  body.forEach((item, i) => {
    if (typeof item === 'string') {
      names.add(item);
    } else if (item && typeof item === 'object' && typeof (item as { name?: unknown }).name === 'string') {
      names.add((item as { name: string }).name);
    } else {
      throw new Error(
        `resource ${resource}: item ${i} is ${describe(item)}, want a string or an object with a "name" string`
      );
    }
  });
  return Array.from(names).sort((a, b) => a.localeCompare(b));
}

function describe(v: unknown): string {
  if (v === null) {
    return 'null';
  }
  if (Array.isArray(v)) {
    return 'an array';
  }
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}
