import React, { ChangeEvent } from 'react';
import { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import { Field, FieldSet, Input, RadioButtonGroup, SecretInput } from '@grafana/ui';

import { AuthType, KpiDefinition, TelltaleOptions, TelltaleSecureJsonData } from '../types';
import { KpiListEditor } from './KpiListEditor';

type Props = DataSourcePluginOptionsEditorProps<TelltaleOptions, TelltaleSecureJsonData>;

const AUTH_TYPES: Array<{ value: AuthType; label: string; description: string }> = [
  { value: 'none', label: 'None', description: 'Prometheus needs no credentials' },
  { value: 'basic', label: 'Basic', description: 'HTTP basic authentication with a user and a password' },
  { value: 'bearer', label: 'Bearer token', description: 'An Authorization: Bearer header' },
];

type Secret = keyof TelltaleSecureJsonData;

// ConfigEditor edits the datasource settings: where Prometheus is, how to authenticate to it,
// how long to wait, and the KPIs defined here rather than by the apps.
export function ConfigEditor({ options, onOptionsChange }: Props) {
  const jsonData = options.jsonData ?? {};
  const secureJsonFields = options.secureJsonFields ?? {};
  const secureJsonData = options.secureJsonData ?? {};
  const authType = jsonData.authType ?? 'none';

  const setJsonData = (patch: Partial<TelltaleOptions>) =>
    onOptionsChange({ ...options, jsonData: { ...jsonData, ...patch } });

  const setSecret = (key: Secret) => (e: ChangeEvent<HTMLInputElement>) =>
    onOptionsChange({ ...options, secureJsonData: { ...secureJsonData, [key]: e.currentTarget.value } });

  // resetSecret forgets a stored secret so that a new one can be typed.
  const resetSecret = (key: Secret) => () =>
    onOptionsChange({
      ...options,
      secureJsonFields: { ...secureJsonFields, [key]: false },
      secureJsonData: { ...secureJsonData, [key]: '' },
    });

  const onTimeout = (e: ChangeEvent<HTMLInputElement>) => {
    const v = e.currentTarget.value.trim();
    setJsonData({ timeout: v === '' ? undefined : Number(v) });
  };

  return (
    <>
      <FieldSet label="Prometheus">
        <Field
          label="URL"
          description="Base URL of the Prometheus server (or Mimir/Cortex) that scrapes the Telltale exporter and detector"
          invalid={Boolean(urlError(options.url))}
          error={urlError(options.url)}
          required
        >
          <Input
            id="telltale-url"
            width={60}
            placeholder="http://localhost:9090"
            value={options.url ?? ''}
            onChange={(e) => onOptionsChange({ ...options, url: e.currentTarget.value.trim() })}
          />
        </Field>
        <Field
          label="Timeout"
          description="Seconds to wait for Prometheus before a query fails; empty for the default"
          invalid={Boolean(timeoutError(jsonData.timeout))}
          error={timeoutError(jsonData.timeout)}
        >
          <Input
            id="telltale-timeout"
            type="number"
            min={1}
            width={20}
            suffix="s"
            value={jsonData.timeout ?? ''}
            onChange={onTimeout}
          />
        </Field>
      </FieldSet>

      <FieldSet label="Authentication">
        <Field label="Method">
          <RadioButtonGroup<AuthType>
            id="telltale-auth-type"
            options={AUTH_TYPES}
            value={authType}
            onChange={(v) => setJsonData({ authType: v })}
          />
        </Field>
        {authType === 'basic' && (
          <>
            <Field label="User">
              <Input
                id="telltale-basic-user"
                width={40}
                value={jsonData.basicAuthUser ?? ''}
                onChange={(e) => setJsonData({ basicAuthUser: e.currentTarget.value })}
              />
            </Field>
            <Field label="Password">
              <SecretInput
                id="telltale-basic-password"
                width={40}
                isConfigured={Boolean(secureJsonFields.basicAuthPassword)}
                value={secureJsonData.basicAuthPassword ?? ''}
                onChange={setSecret('basicAuthPassword')}
                onReset={resetSecret('basicAuthPassword')}
              />
            </Field>
          </>
        )}
        {authType === 'bearer' && (
          <Field label="Token">
            <SecretInput
              id="telltale-bearer-token"
              width={60}
              isConfigured={Boolean(secureJsonFields.bearerToken)}
              value={secureJsonData.bearerToken ?? ''}
              onChange={setSecret('bearerToken')}
              onReset={resetSecret('bearerToken')}
            />
          </Field>
        )}
      </FieldSet>

      <FieldSet label="KPIs">
        <KpiListEditor kpis={jsonData.kpis ?? []} onChange={(kpis: KpiDefinition[]) => setJsonData({ kpis })} />
      </FieldSet>
    </>
  );
}

// urlError says what is wrong with a Prometheus URL, or nothing when it is usable.
export function urlError(url?: string): string | undefined {
  if (!url) {
    return 'A Prometheus URL is required, e.g. http://localhost:9090';
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `"${url}" is not a URL; write it like http://localhost:9090`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return `The URL must start with http:// or https://, not "${u.protocol}"`;
  }
  return undefined;
}

// timeoutError says what is wrong with a timeout, or nothing when it is usable or unset.
export function timeoutError(timeout?: number): string | undefined {
  if (timeout === undefined) {
    return undefined;
  }
  if (!Number.isFinite(timeout) || timeout <= 0) {
    return 'The timeout must be a positive number of seconds';
  }
  return undefined;
}
