import React from 'react';
import { Button, IconButton, InlineField, InlineFieldRow, Input, RadioButtonGroup, Stack } from '@grafana/ui';

import { Direction, KpiDefinition } from '../types';

// KpiListEditorProps hold the KPI list and where to send a changed copy of it.
export interface KpiListEditorProps {
  kpis: KpiDefinition[];
  onChange: (kpis: KpiDefinition[]) => void;
}

const DIRECTIONS: Array<{ value: Direction; label: string; description: string }> = [
  { value: 'higher', label: 'Higher is better', description: 'e.g. orders per second' },
  { value: 'lower', label: 'Lower is better', description: 'e.g. checkout latency' },
];

// KpiListEditor edits the KPIs declared in the datasource settings: each has a name, a
// PromQL expression, a unit, an optional objective and the direction that is better.
export function KpiListEditor({ kpis, onChange }: KpiListEditorProps) {
  const update = (i: number, patch: Partial<KpiDefinition>) => {
    const next = kpis.map((k, j) => (j === i ? { ...k, ...patch } : k));
    if ('objective' in patch && patch.objective === undefined) {
      delete next[i].objective;
    }
    onChange(next);
  };
  const remove = (i: number) => onChange(kpis.filter((_, j) => j !== i));
  const add = () => onChange([...kpis, { name: '', expr: '', unit: '', direction: 'higher' }]);
  const errors = kpiErrors(kpis);

  return (
    <Stack direction="column" gap={1}>
      {kpis.length === 0 && (
        <p>
          No KPIs are defined here. KPIs that apps declare through telltale_kpi_info are found without configuration.
        </p>
      )}
      {kpis.map((kpi, i) => (
        <div key={i} data-testid={`kpi-row-${i}`}>
          <InlineFieldRow>
            <InlineField
              label="Name"
              labelWidth={10}
              htmlFor={`kpi-name-${i}`}
              invalid={Boolean(errors[i]?.name)}
              error={errors[i]?.name}
            >
              <Input
                id={`kpi-name-${i}`}
                width={24}
                placeholder="orders"
                value={kpi.name}
                onChange={(e) => update(i, { name: e.currentTarget.value })}
              />
            </InlineField>
            <InlineField
              label="PromQL"
              labelWidth={10}
              grow
              htmlFor={`kpi-expr-${i}`}
              invalid={Boolean(errors[i]?.expr)}
              error={errors[i]?.expr}
            >
              <Input
                id={`kpi-expr-${i}`}
                placeholder="sum(rate(shop_orders_total[5m]))"
                value={kpi.expr}
                onChange={(e) => update(i, { expr: e.currentTarget.value })}
              />
            </InlineField>
            <IconButton
              name="trash-alt"
              tooltip={`Remove KPI ${i + 1}${kpi.name ? ` (${kpi.name})` : ''}`}
              onClick={() => remove(i)}
            />
          </InlineFieldRow>
          <InlineFieldRow>
            <InlineField
              label="Unit"
              labelWidth={10}
              htmlFor={`kpi-unit-${i}`}
              tooltip="A Grafana unit id, e.g. reqps, currencyUSD, s"
            >
              <Input
                id={`kpi-unit-${i}`}
                width={16}
                placeholder="reqps"
                value={kpi.unit ?? ''}
                onChange={(e) => update(i, { unit: e.currentTarget.value })}
              />
            </InlineField>
            <InlineField
              label="Objective"
              labelWidth={12}
              htmlFor={`kpi-objective-${i}`}
              tooltip="The value the KPI should stay on the good side of; empty for none"
              invalid={Boolean(errors[i]?.objective)}
              error={errors[i]?.objective}
            >
              <Input
                id={`kpi-objective-${i}`}
                type="number"
                width={16}
                value={kpi.objective ?? ''}
                onChange={(e) => {
                  const v = e.currentTarget.value.trim();
                  update(i, { objective: v === '' ? undefined : Number(v) });
                }}
              />
            </InlineField>
            <InlineField label="Direction" labelWidth={12}>
              <RadioButtonGroup<Direction>
                options={DIRECTIONS}
                value={kpi.direction}
                onChange={(direction) => update(i, { direction })}
              />
            </InlineField>
          </InlineFieldRow>
        </div>
      ))}
      <div>
        <Button icon="plus" variant="secondary" onClick={add}>
          Add KPI
        </Button>
      </div>
    </Stack>
  );
}

// KpiError holds what is wrong with one KPI, field by field.
export interface KpiError {
  name?: string;
  expr?: string;
  objective?: string;
}

// kpiErrors checks each KPI on its own and names against each other.
export function kpiErrors(kpis: KpiDefinition[]): Array<KpiError | undefined> {
  const seen = new Map<string, number>();
  return kpis.map((kpi, i) => {
    const e: KpiError = {};
    const name = kpi.name.trim();
    if (name === '') {
      e.name = 'A KPI needs a name';
    } else if (seen.has(name)) {
      e.name = `KPI ${seen.get(name)! + 1} is already named "${name}"`;
    } else {
      seen.set(name, i);
    }
    if (kpi.expr.trim() === '') {
      e.expr = 'A KPI needs a PromQL expression';
    }
    if (kpi.objective !== undefined && !Number.isFinite(kpi.objective)) {
      e.objective = 'The objective must be a number';
    }
    return Object.keys(e).length > 0 ? e : undefined;
  });
}
