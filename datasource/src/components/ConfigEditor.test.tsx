import React, { useState } from 'react';
import { DataSourceSettings } from '@grafana/data';
import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';

import { TelltaleOptions, TelltaleSecureJsonData } from '../types';
import { ConfigEditor, timeoutError, urlError } from './ConfigEditor';

type Settings = DataSourceSettings<TelltaleOptions, TelltaleSecureJsonData>;

function settings(patch: Partial<Settings> = {}): Settings {
  return {
    id: 1,
    uid: 'telltale',
    orgId: 1,
    name: 'Telltale',
    type: 'telltale-insights-datasource',
    typeName: 'Telltale Insights',
    typeLogoUrl: '',
    access: 'proxy',
    url: 'http://localhost:9090',
    user: '',
    basicAuth: false,
    basicAuthUser: '',
    isDefault: false,
    withCredentials: false,
    readOnly: false,
    jsonData: {},
    secureJsonFields: {},
    ...patch,
  } as Settings;
}

// Harness keeps the settings in state, as Grafana's settings page does, and records every
// change so a test can assert on what the editor sent.
function setup(initial: Settings) {
  const changes: Settings[] = [];
  function Harness() {
    const [options, setOptions] = useState(initial);
    return (
      <ConfigEditor
        options={options}
        onOptionsChange={(o) => {
          changes.push(o);
          setOptions(o);
        }}
      />
    );
  }
  render(<Harness />);
  const last = () => changes[changes.length - 1];
  return { changes, last };
}

describe('ConfigEditor', () => {
  it('edits the Prometheus URL', async () => {
    const { last } = setup(settings({ url: '' }));
    expect(screen.getByText(/A Prometheus URL is required/)).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText(/^URL/), 'http://prom:9090');
    expect(last().url).toBe('http://prom:9090');
    expect(screen.queryByText(/A Prometheus URL is required/)).not.toBeInTheDocument();
  });

  it('says what is wrong with a bad URL', () => {
    setup(settings({ url: 'ftp://prom' }));
    expect(screen.getByText('The URL must start with http:// or https://, not "ftp:"')).toBeInTheDocument();
  });

  it('stores the timeout as a number of seconds', async () => {
    const { last } = setup(settings());
    await userEvent.type(screen.getByLabelText(/^Timeout/), '45');
    expect(last().jsonData.timeout).toBe(45);
    await userEvent.clear(screen.getByLabelText(/^Timeout/));
    expect(last().jsonData.timeout).toBeUndefined();
    expect('timeout' in last().jsonData && last().jsonData.timeout !== undefined).toBe(false);
  });

  it('sets basic authentication with a secret password', async () => {
    const { last } = setup(settings());
    expect(screen.queryByLabelText(/^Password/)).not.toBeInTheDocument();
    await userEvent.click(screen.getByLabelText('Basic'));
    expect(last().jsonData.authType).toBe('basic');
    await userEvent.type(screen.getByLabelText(/^User/), 'grafana');
    await userEvent.type(screen.getByLabelText(/^Password/), 's3cret');
    expect(last().jsonData.basicAuthUser).toBe('grafana');
    expect(last().secureJsonData).toEqual({ basicAuthPassword: 's3cret' });
    // The password never goes into jsonData, which the browser can read back.
    expect(JSON.stringify(last().jsonData)).not.toContain('s3cret');
  });

  it('resets a stored bearer token', async () => {
    const { last } = setup(settings({ jsonData: { authType: 'bearer' }, secureJsonFields: { bearerToken: true } }));
    expect(screen.getByDisplayValue('configured')).toBeDisabled();
    await userEvent.click(screen.getByText('Reset'));
    expect(last().secureJsonFields.bearerToken).toBe(false);
    expect(last().secureJsonData).toEqual({ bearerToken: '' });
    await userEvent.type(screen.getByLabelText(/^Token/), 'tok');
    expect(last().secureJsonData).toEqual({ bearerToken: 'tok' });
  });

  it('edits the KPI list', async () => {
    const { last } = setup(settings());
    await userEvent.click(screen.getByText('Add KPI'));
    expect(last().jsonData.kpis).toEqual([{ name: '', expr: '', unit: '', direction: 'higher' }]);
    expect(screen.getByText('A KPI needs a name')).toBeInTheDocument();

    await userEvent.type(screen.getByLabelText('Name'), 'checkout_latency');
    // user-event reads "[" as the start of a key name; "[[" types one.
    await userEvent.type(screen.getByLabelText('PromQL'), 'histogram_quantile(0.9, rate(x[[5m]))');
    await userEvent.type(screen.getByLabelText('Unit'), 's');
    await userEvent.type(screen.getByLabelText('Objective'), '0.25');
    await userEvent.click(screen.getByLabelText('Lower is better'));
    expect(last().jsonData.kpis).toEqual([
      {
        name: 'checkout_latency',
        expr: 'histogram_quantile(0.9, rate(x[5m]))',
        unit: 's',
        objective: 0.25,
        direction: 'lower',
      },
    ]);
    expect(screen.queryByText('A KPI needs a name')).not.toBeInTheDocument();

    await userEvent.clear(screen.getByLabelText('Objective'));
    expect(last().jsonData.kpis?.[0]).not.toHaveProperty('objective');
  });

  it('flags duplicate KPI names and removes a KPI', async () => {
    const kpis = [
      { name: 'orders', expr: 'sum(rate(orders_total[5m]))', direction: 'higher' as const },
      { name: 'orders', expr: '', direction: 'higher' as const },
    ];
    const { last } = setup(settings({ jsonData: { kpis } }));
    expect(screen.getByText('KPI 1 is already named "orders"')).toBeInTheDocument();
    expect(screen.getByText('A KPI needs a PromQL expression')).toBeInTheDocument();
    await userEvent.click(screen.getByLabelText('Remove KPI 2 (orders)'));
    expect(last().jsonData.kpis).toEqual([kpis[0]]);
  });
});

describe('urlError', () => {
  it.each([
    ['http://localhost:9090', undefined],
    ['https://prom.example.com/prometheus', undefined],
    [undefined, 'A Prometheus URL is required, e.g. http://localhost:9090'],
    ['localhost:9090', 'The URL must start with http:// or https://, not "localhost:"'],
    ['not a url', '"not a url" is not a URL; write it like http://localhost:9090'],
  ])('urlError(%j)', (url, want) => {
    expect(urlError(url)).toBe(want);
  });
});

describe('timeoutError', () => {
  it.each([
    [undefined, undefined],
    [30, undefined],
    [0, 'The timeout must be a positive number of seconds'],
    [-1, 'The timeout must be a positive number of seconds'],
    [NaN, 'The timeout must be a positive number of seconds'],
  ])('timeoutError(%j)', (t, want) => {
    expect(timeoutError(t)).toBe(want);
  });
});
