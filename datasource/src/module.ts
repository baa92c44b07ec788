import { DataSourcePlugin } from '@grafana/data';

import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { DataSource } from './datasource';
import { TelltaleOptions, TelltaleQuery, TelltaleSecureJsonData } from './types';

export const plugin = new DataSourcePlugin<DataSource, TelltaleQuery, TelltaleOptions, TelltaleSecureJsonData>(
  DataSource
)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
