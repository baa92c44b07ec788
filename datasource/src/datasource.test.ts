import { DataSourceInstanceSettings } from '@grafana/data';
import { BackendSrv, BackendSrvRequest, setBackendSrv, setTemplateSrv } from '@grafana/runtime';
import { of, throwError } from 'rxjs';

import { DataSource, escapeRegex, interpolateQuery, parseNameList, regexFormat } from './datasource';
import { fakeTemplateSrv } from './test/fakes';
import { TelltaleOptions } from './types';

const instanceSettings = {
  id: 1,
  uid: 'tt-uid',
  type: 'telltale-insights-datasource',
  name: 'Telltale',
  access: 'proxy',
  readOnly: false,
  jsonData: {},
  meta: { id: 'telltale-insights-datasource', name: 'Telltale Insights', type: 'datasource', info: {} },
} as unknown as DataSourceInstanceSettings<TelltaleOptions>;

describe('interpolateQuery', () => {
  const templateSrv = fakeTemplateSrv({ kpi: 'orders', svc: ['cart', 'web.shop'], host: 'db-1', job: 'shop' });

  it('replaces variables in every text field', () => {
    const got = interpolateQuery(
      {
        refId: 'A',
        queryType: 'servicemap',
        kpi: '$kpi',
        selector: 'up{job="$job"}',
        service: '$svc',
        host: '${host}',
      },
      {},
      templateSrv
    );
    expect(got).toEqual({
      refId: 'A',
      queryType: 'servicemap',
      kpi: 'orders',
      selector: 'up{job="shop"}',
      service: '(cart|web\\.shop)',
      host: 'db-1',
    });
  });

  it('prefers scoped variables, e.g. a repeated panel', () => {
    const got = interpolateQuery(
      { refId: 'A', kpi: '$kpi' },
      { kpi: { text: 'revenue', value: 'revenue' } },
      templateSrv
    );
    expect(got.kpi).toBe('revenue');
  });

  it('leaves absent fields absent and does not touch the input', () => {
    const q = { refId: 'A', queryType: 'kpi' as const };
    const got = interpolateQuery(q, {}, templateSrv);
    expect(got).toEqual({ refId: 'A', queryType: 'kpi' });
    expect(got).not.toBe(q);
  });
});

describe('regexFormat', () => {
  it.each([
    ['a.b', 'a.b'],
    [['a.b'], 'a.b'],
    [['a.b', 'c|d', 'e'], '(a\\.b|c\\|d|e)'],
    [[], '()'],
  ])('regexFormat(%j) = %j', (value, want) => {
    expect(regexFormat(value)).toBe(want);
  });

  it('escapes every RE2 metacharacter', () => {
    const special = '\\^$*+?.()|[]{}';
    const re = new RegExp('^' + escapeRegex(special) + '$');
    expect(re.test(special)).toBe(true);
  });
});

describe('parseNameList', () => {
  it('reads names and objects with a name, sorted and without duplicates', () => {
    expect(parseNameList('kpis', ['revenue', { name: 'orders', unit: 'reqps' }, 'revenue'])).toEqual([
      'orders',
      'revenue',
    ]);
  });

  it.each([
    [{ kpis: [] }, 'resource kpis: expected a JSON array, got an object'],
    [null, 'resource kpis: expected a JSON array, got null'],
    ['orders', 'resource kpis: expected a JSON array, got a string'],
    [['orders', 3], 'resource kpis: item 1 is a number, want a string or an object with a "name" string'],
    [[{ title: 'x' }], 'resource kpis: item 0 is an object, want a string or an object with a "name" string'],
    [[['x']], 'resource kpis: item 0 is an array, want a string or an object with a "name" string'],
  ])('rejects %j', (body, want) => {
    expect(() => parseNameList('kpis', body)).toThrow(want);
  });
});

describe('DataSource', () => {
  it('interpolates through Grafana template service', () => {
    setTemplateSrv(fakeTemplateSrv({ svc: ['a', 'b'] }));
    const ds = new DataSource(instanceSettings);
    expect(ds.applyTemplateVariables({ refId: 'A', queryType: 'deploys', service: '$svc' }, {})).toEqual({
      refId: 'A',
      queryType: 'deploys',
      service: '(a|b)',
    });
    expect(ds.getDefaultQuery('dashboard' as never)).toEqual({ queryType: 'kpi' });
  });

  it('asks the backend for a resource list', async () => {
    const requests: BackendSrvRequest[] = [];
    setBackendSrv({
      fetch: (req: BackendSrvRequest) => {
        requests.push(req);
        return of({ data: ['shop', 'cart'], status: 200, ok: true });
      },
    } as unknown as BackendSrv);
    const ds = new DataSource(instanceSettings);
    await expect(ds.listResource('services')).resolves.toEqual(['cart', 'shop']);
    expect(requests.map((r) => [r.method, r.url])).toEqual([['GET', '/api/datasources/uid/tt-uid/resources/services']]);
  });

  it('passes a backend failure on', async () => {
    setBackendSrv({
      fetch: () => throwError(() => new Error('Prometheus unreachable')),
    } as unknown as BackendSrv);
    const ds = new DataSource(instanceSettings);
    await expect(ds.listResource('kpis')).rejects.toThrow('Prometheus unreachable');
  });
});
