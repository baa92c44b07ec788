import React, { useCallback, useRef, useState } from 'react';
import { Combobox, ComboboxOption, InlineField } from '@grafana/ui';

import { Resource } from '../types';

// ResourcePickerProps configure one picker fed by a backend resource.
export interface ResourcePickerProps {
  id: string;
  label: string;
  tooltip: string;
  resource: Resource;
  // load returns the resource's names; the picker calls it once, when first opened.
  load: (resource: Resource) => Promise<string[]>;
  value?: string;
  placeholder?: string;
  // error is a validation message about the current value, shown under the field.
  error?: string;
  onChange: (value: string) => void;
}

// ResourcePicker is a combobox whose options are a backend resource list (KPIs, services,
// metric names). Any text is accepted as well: template variables such as $kpi, and regular
// expressions where the backend takes one.
export function ResourcePicker({
  id,
  label,
  tooltip,
  resource,
  load,
  value,
  placeholder,
  error,
  onChange,
}: ResourcePickerProps) {
  const names = useRef<Promise<string[]> | null>(null);
  const [loadError, setLoadError] = useState<string>();

  const options = useCallback(
    async (input: string): Promise<Array<ComboboxOption<string>>> => {
      if (!names.current) {
        names.current = load(resource);
      }
      let list: string[];
      try {
        list = await names.current;
        setLoadError(undefined);
      } catch (err) {
        // Forget the failed request so that opening the picker again retries.
        names.current = null;
        setLoadError(`Could not load ${resource}: ${err instanceof Error ? err.message : String(err)}`);
        return [];
      }
      const needle = input.toLowerCase();
      return list.filter((n) => n.toLowerCase().includes(needle)).map((n) => ({ value: n, label: n }));
    },
    [load, resource]
  );

  const message = error ?? loadError;
  return (
    <InlineField
      label={label}
      labelWidth={14}
      tooltip={tooltip}
      invalid={Boolean(message)}
      error={message}
      htmlFor={id}
    >
      <Combobox<string>
        id={id}
        width={40}
        options={options}
        value={value ? { value, label: value } : null}
        placeholder={placeholder}
        createCustomValue
        isClearable
        onChange={(option) => onChange(option?.value ?? '')}
      />
    </InlineField>
  );
}
