import React, { ChangeEvent, useCallback } from 'react';
import { QueryEditorProps } from '@grafana/data';
import { InlineField, Input, RadioButtonGroup, Stack } from '@grafana/ui';

import { DataSource } from '../datasource';
import { QUERY_TYPES, QueryType, Resource, TelltaleOptions, TelltaleQuery } from '../types';
import { ResourcePicker } from './ResourcePicker';

type Props = QueryEditorProps<DataSource, TelltaleQuery, TelltaleOptions>;

// QueryEditor edits one Telltale query: a query type and the fields that type reads.
export function QueryEditor({ query, onChange, onRunQuery, datasource }: Props) {
  const queryType: QueryType = query.queryType ?? 'kpi';
  const load = useCallback((r: Resource) => datasource.listResource(r), [datasource]);

  // set changes one field; pickers run the query at once, text fields when they lose focus.
  const set = (patch: Partial<TelltaleQuery>, run: boolean) => {
    onChange({ ...query, ...patch });
    if (run) {
      onRunQuery();
    }
  };
  const text = (field: 'selector' | 'host') => ({
    value: query[field] ?? '',
    onChange: (e: ChangeEvent<HTMLInputElement>) => set({ [field]: e.currentTarget.value }, false),
    onBlur: () => onRunQuery(),
  });

  // Element ids carry the refId: a panel shows several queries' editors on one page.
  const id = (name: string) => `telltale-${name}-${query.refId}`;
  const type = QUERY_TYPES.find((t) => t.value === queryType);
  return (
    <Stack direction="column" gap={0}>
      <InlineField label="Query type" labelWidth={14} tooltip={type?.description ?? ''}>
        <RadioButtonGroup<QueryType>
          id={id('query-type')}
          options={QUERY_TYPES.map(({ value, label, description }) => ({ value, label, description }))}
          value={queryType}
          onChange={(v) => set({ queryType: v }, true)}
        />
      </InlineField>

      {queryType === 'kpi' && (
        <ResourcePicker
          id={id('kpi')}
          label="KPI"
          tooltip="One KPI, or empty for every KPI the apps declare and the settings list"
          resource="kpis"
          load={load}
          value={query.kpi}
          placeholder="All KPIs"
          onChange={(kpi) => set({ kpi }, true)}
        />
      )}

      {queryType === 'anomalies' && (
        <>
          <ResourcePicker
            id={id('kpi')}
            label="KPI"
            tooltip="Score the KPI's series; leave empty to score the selector below"
            resource="kpis"
            load={load}
            value={query.kpi}
            placeholder="None: use the selector"
            error={query.kpi || query.selector ? undefined : 'Choose a KPI or write a selector'}
            onChange={(kpi) => set({ kpi }, true)}
          />
          <ResourcePicker
            id={id('metric')}
            label="Metric"
            tooltip="Start the selector from a metric name; its label matchers are kept"
            resource="metrics"
            load={load}
            value={metricName(query.selector)}
            placeholder="Pick a metric"
            onChange={(metric) => set({ selector: withMetricName(query.selector ?? '', metric) }, true)}
          />
          <InlineField
            label="Selector"
            labelWidth={14}
            grow
            htmlFor={id('selector')}
            tooltip={
              'A PromQL series selector, e.g. telltale_service_cpu_seconds_total{service="shop"}; used when no KPI is chosen'
            }
            disabled={Boolean(query.kpi)}
          >
            <Input id={id('selector')} placeholder='metric{label="value"}' {...text('selector')} />
          </InlineField>
        </>
      )}

      {queryType === 'servicemap' && (
        <>
          <ResourcePicker
            id={id('service')}
            label="Service"
            tooltip="A regular expression on service names; empty for every service"
            resource="services"
            load={load}
            value={query.service}
            placeholder="All services"
            onChange={(service) => set({ service }, true)}
          />
          <InlineField
            label="Host"
            labelWidth={14}
            htmlFor={id('host')}
            tooltip="A regular expression on the instance label; empty for every host"
          >
            <Input id={id('host')} width={40} placeholder="All hosts" {...text('host')} />
          </InlineField>
        </>
      )}

      {queryType === 'insights' && (
        <ResourcePicker
          id={id('kpi')}
          label="KPI"
          tooltip="The KPI whose bad windows to explain"
          resource="kpis"
          load={load}
          value={query.kpi}
          placeholder="Choose a KPI"
          error={query.kpi ? undefined : 'Insights need a KPI'}
          onChange={(kpi) => set({ kpi }, true)}
        />
      )}

      {queryType === 'deploys' && (
        <ResourcePicker
          id={id('service')}
          label="Service"
          tooltip="A regular expression on service names; empty for every service"
          resource="services"
          load={load}
          value={query.service}
          placeholder="All services"
          onChange={(service) => set({ service }, true)}
        />
      )}
    </Stack>
  );
}

const metricPrefix = /^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/;

// metricName returns the metric name a selector starts with, if any.
export function metricName(selector?: string): string | undefined {
  return selector?.match(metricPrefix)?.[1];
}

// withMetricName puts metric at the start of selector, replacing the metric name already
// there and keeping the label matchers. An empty metric removes the name.
export function withMetricName(selector: string, metric: string): string {
  const rest = selector.replace(metricPrefix, '').trim();
  return metric + rest;
}
