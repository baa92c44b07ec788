import React from 'react';
import { render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';

import { fakeDatasource } from '../test/fakes';
import { giveElementsASize } from '../test/layout';
import { TelltaleQuery } from '../types';
import { QueryEditor, metricName, withMetricName } from './QueryEditor';

function setup(query: Partial<TelltaleQuery>, lists = {}) {
  const { ds, listResource } = fakeDatasource({
    kpis: ['orders', 'revenue', 'checkout_latency'],
    services: ['cart', 'shop'],
    metrics: ['up', 'telltale_service_threads'],
    ...lists,
  });
  const onChange = jest.fn();
  const onRunQuery = jest.fn();
  const utils = render(
    <QueryEditor query={{ refId: 'A', ...query }} datasource={ds} onChange={onChange} onRunQuery={onRunQuery} />
  );
  return { ...utils, onChange, onRunQuery, listResource };
}

beforeAll(() => giveElementsASize());

describe('QueryEditor', () => {
  it('switches the query type and runs the query', async () => {
    const { onChange, onRunQuery } = setup({ queryType: 'kpi' });
    await userEvent.click(screen.getByLabelText('Service map'));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'servicemap' });
    expect(onRunQuery).toHaveBeenCalledTimes(1);
  });

  it('defaults to the kpi type', () => {
    setup({});
    expect(screen.getByLabelText('KPIs')).toBeChecked();
    expect(screen.getByLabelText('KPI')).toBeInTheDocument();
  });

  it('picks a KPI from the backend list', async () => {
    const { onChange, onRunQuery, listResource } = setup({ queryType: 'kpi' });
    await userEvent.click(screen.getByLabelText('KPI'));
    await userEvent.click(await screen.findByText('revenue'));
    expect(listResource).toHaveBeenCalledWith('kpis');
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'kpi', kpi: 'revenue' });
    expect(onRunQuery).toHaveBeenCalled();
  });

  it('filters the KPI list by what is typed', async () => {
    setup({ queryType: 'insights' });
    await userEvent.type(screen.getByLabelText('KPI'), 'ord');
    expect(await screen.findByText('orders')).toBeInTheDocument();
    expect(screen.queryByText('revenue')).not.toBeInTheDocument();
  });

  it('accepts a template variable as a KPI', async () => {
    const { onChange } = setup({ queryType: 'insights' });
    await userEvent.type(screen.getByLabelText('KPI'), '$kpi');
    await userEvent.keyboard('{Enter}');
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'insights', kpi: '$kpi' });
  });

  it('says when insights have no KPI', () => {
    setup({ queryType: 'insights' });
    expect(screen.getByText('Insights need a KPI')).toBeInTheDocument();
  });

  it('shows why the KPI list could not be loaded', async () => {
    setup({ queryType: 'kpi' }, { kpis: new Error('Prometheus unreachable') });
    await userEvent.click(screen.getByLabelText('KPI'));
    expect(await screen.findByText('Could not load kpis: Prometheus unreachable')).toBeInTheDocument();
  });

  it('edits the anomalies selector and runs on blur', async () => {
    const { onChange, onRunQuery } = setup({ queryType: 'anomalies' });
    expect(screen.getByText('Choose a KPI or write a selector')).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText('Selector'), 'u');
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'anomalies', selector: 'u' });
    expect(onRunQuery).not.toHaveBeenCalled();
    await userEvent.tab();
    expect(onRunQuery).toHaveBeenCalledTimes(1);
  });

  it('starts the selector from a picked metric, keeping its matchers', async () => {
    const { onChange } = setup({ queryType: 'anomalies', selector: 'up{job="shop"}' });
    await userEvent.click(screen.getByLabelText('Metric'));
    await userEvent.click(await screen.findByText('telltale_service_threads'));
    expect(onChange).toHaveBeenLastCalledWith({
      refId: 'A',
      queryType: 'anomalies',
      selector: 'telltale_service_threads{job="shop"}',
    });
  });

  it('filters the service map by service and host', async () => {
    const { onChange, listResource } = setup({ queryType: 'servicemap' });
    await userEvent.click(screen.getByLabelText('Service'));
    await userEvent.click(await screen.findByText('shop'));
    expect(listResource).toHaveBeenCalledWith('services');
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'servicemap', service: 'shop' });
    await userEvent.type(screen.getByLabelText('Host'), 'h');
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'servicemap', host: 'h' });
  });

  it('filters deploys by service', async () => {
    const { onChange } = setup({ queryType: 'deploys', service: 'shop' });
    expect(screen.getByLabelText('Service')).toHaveValue('shop');
    await userEvent.click(screen.getByLabelText('Service'));
    await userEvent.click(await screen.findByText('cart'));
    await waitFor(() =>
      expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'deploys', service: 'cart' })
    );
  });
});

describe('QueryEditor ids', () => {
  it('are unique when a panel shows several queries', () => {
    const { ds } = fakeDatasource({});
    render(
      <>
        <QueryEditor
          query={{ refId: 'A', queryType: 'kpi' }}
          datasource={ds}
          onChange={jest.fn()}
          onRunQuery={jest.fn()}
        />
        <QueryEditor
          query={{ refId: 'B', queryType: 'kpi' }}
          datasource={ds}
          onChange={jest.fn()}
          onRunQuery={jest.fn()}
        />
      </>
    );
    const ids = screen.getAllByLabelText('KPI').map((el) => el.id);
    expect(ids).toEqual(['telltale-kpi-A', 'telltale-kpi-B']);
  });
});

describe('withMetricName', () => {
  it.each([
    ['', 'up', 'up'],
    ['up', 'node_load1', 'node_load1'],
    ['up{job="a"}', 'node_load1', 'node_load1{job="a"}'],
    ['{job="a"}', 'up', 'up{job="a"}'],
    ['  up {job="a"}', 'x', 'x{job="a"}'],
    ['up{job="a"}', '', '{job="a"}'],
  ])('withMetricName(%j, %j) = %j', (selector, metric, want) => {
    expect(withMetricName(selector, metric)).toBe(want);
  });

  it('reads the metric name back', () => {
    expect(metricName('up{job="a"}')).toBe('up');
    expect(metricName('{job="a"}')).toBeUndefined();
    expect(metricName(undefined)).toBeUndefined();
  });
});
