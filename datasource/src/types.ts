import { DataSourceJsonData } from '@grafana/data';
import { DataQuery } from '@grafana/schema';

// QueryType names the five kinds of query the backend answers; the backend dispatches on it.
export type QueryType = 'kpi' | 'anomalies' | 'servicemap' | 'insights' | 'deploys';

// QUERY_TYPES lists every query type with the words the editor shows for it.
export const QUERY_TYPES: ReadonlyArray<{ value: QueryType; label: string; description: string }> = [
  { value: 'kpi', label: 'KPIs', description: 'Business KPIs with their objective and current status' },
  { value: 'anomalies', label: 'Anomalies', description: 'Anomaly score and expected band for a KPI or a selector' },
  {
    value: 'servicemap',
    label: 'Service map',
    description: 'Services and the connections between them, for the Node Graph panel',
  },
  {
    value: 'insights',
    label: 'Insights',
    description: 'Likely causes, ranked, for the windows where a KPI went wrong',
  },
  { value: 'deploys', label: 'Deploys', description: 'Build changes of services, as annotation events' },
];

// TelltaleQuery is the JSON of one query as the backend reads it (see the contract).
export interface TelltaleQuery extends DataQuery {
  queryType?: QueryType;
  // kpi: a KPI name; for queryType "kpi" empty means every KPI.
  kpi?: string;
  // selector: a PromQL series selector for "anomalies", used when kpi is empty.
  selector?: string;
  // service: a regular expression on the service label ("servicemap", "deploys").
  service?: string;
  // host: a regular expression on the instance label ("servicemap").
  host?: string;
}

export const DEFAULT_QUERY: Partial<TelltaleQuery> = {
  queryType: 'kpi',
};

// Direction says which way a KPI is better: more orders is good, more latency is not.
export type Direction = 'higher' | 'lower';

// KpiDefinition is a KPI declared in the datasource settings rather than by an app.
export interface KpiDefinition {
  name: string;
  expr: string;
  unit?: string;
  objective?: number;
  direction: Direction;
}

export type AuthType = 'none' | 'basic' | 'bearer';

// TelltaleOptions are the datasource settings that are not secret.
export interface TelltaleOptions extends DataSourceJsonData {
  // timeout for requests to Prometheus, in seconds.
  timeout?: number;
  authType?: AuthType;
  basicAuthUser?: string;
  kpis?: KpiDefinition[];
}

// TelltaleSecureJsonData are the secret settings: written by the config editor, only ever
// read by the backend.
export interface TelltaleSecureJsonData {
  basicAuthPassword?: string;
  bearerToken?: string;
}

// Resource names the backend's GET resources that feed the editors' pickers.
export type Resource = 'kpis' | 'services' | 'metrics';
