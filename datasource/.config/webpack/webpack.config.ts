/*
 * Webpack configuration in the shape of @grafana/create-plugin's, written for this repository:
 * it runs on Node 20 (loaded through ts-node, no native TypeScript stripping needed) and keeps
 * only what a production build and `npm run dev` need.
 */
import CopyWebpackPlugin from 'copy-webpack-plugin';
import path from 'path';
import ReplaceInFileWebpackPlugin from 'replace-in-file-webpack-plugin';
import TerserPlugin from 'terser-webpack-plugin';
import webpack, { type Configuration } from 'webpack';
import { SubresourceIntegrityPlugin } from 'webpack-subresource-integrity';
import VirtualModulesPlugin from 'webpack-virtual-modules';

import { copyFilePatterns } from '../bundler/copyFiles';
import { DIST_DIR, SOURCE_DIR } from '../bundler/constants';
import { externals } from '../bundler/externals';
import { getEntries, getPackageJson, getPluginJson } from '../bundler/utils';
import { BuildModeWebpackPlugin } from './BuildModeWebpackPlugin';

const pluginJson = getPluginJson();
const pluginVersion: string = getPackageJson().version;

// Grafana serves a plugin's files under public/plugins/<id>/; the AMD "module" dependency
// gives the real URL, which wins when Grafana serves from a CDN or a sub-path.
const publicPath = new VirtualModulesPlugin({
  'node_modules/grafana-public-path.js': `
import amdMetaModule from 'amd-module';

__webpack_public_path__ =
  amdMetaModule && amdMetaModule.uri
    ? amdMetaModule.uri.slice(0, amdMetaModule.uri.lastIndexOf('/') + 1)
    : 'public/plugins/${pluginJson.id}/';
`,
});

type Env = Record<string, unknown>;

const config = async (env: Env): Promise<Configuration> => {
  const production = Boolean(env.production);
  return {
    cache: {
      type: 'filesystem',
      buildDependencies: {
        config: [path.resolve(process.cwd(), '.config', 'webpack', 'webpack.config.ts')],
      },
    },
    context: path.join(process.cwd(), SOURCE_DIR),
    devtool: production ? 'source-map' : 'eval-source-map',
    entry: await getEntries(),
    externals,
    mode: production ? 'production' : 'development',
    module: {
      rules: [
        // Must come first so source maps stay right: sets the public path before anything else.
        {
          test: /src\/(?:.*\/)?module\.tsx?$/,
          use: [{ loader: 'imports-loader', options: { imports: 'side-effects grafana-public-path' } }],
        },
        {
          exclude: /node_modules/,
          test: /\.[tj]sx?$/,
          use: {
            loader: 'swc-loader',
            options: {
              jsc: {
                baseUrl: path.resolve(process.cwd(), SOURCE_DIR),
                target: 'es2015',
                loose: false,
                parser: { syntax: 'typescript', tsx: true, decorators: false, dynamicImport: true },
              },
            },
          },
        },
        { test: /\.css$/, use: ['style-loader', 'css-loader'] },
        {
          test: /\.(png|jpe?g|gif|svg|woff2?|eot|ttf|otf)$/,
          type: 'asset/resource',
          generator: { filename: production ? '[hash][ext]' : '[file]' },
        },
      ],
    },
    optimization: {
      minimize: production,
      minimizer: [
        new TerserPlugin({
          terserOptions: {
            // Keep only the banner comment that names the plugin and its version.
            // (A RegExp, not a function: terser runs in workers that don't share this module's scope.)
            format: { comments: new RegExp(`${pluginJson.id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}@`) },
            compress: { drop_console: ['log', 'info'] },
          },
        }),
      ],
    },
    output: {
      // The backend build writes gpx_* binaries into the same directory: keep them.
      clean: { keep: /(^|\/)(gpx_.*_(amd64|arm64|arm)(\.exe)?|go_plugin_build_manifest)$/ },
      filename: '[name].js',
      chunkFilename: production ? '[name].js?_cache=[contenthash]' : '[name].js',
      library: { type: 'amd' },
      path: path.resolve(process.cwd(), DIST_DIR),
      publicPath: `public/plugins/${pluginJson.id}/`,
      uniqueName: pluginJson.id,
      crossOriginLoading: 'anonymous',
    },
    plugins: [
      new BuildModeWebpackPlugin(),
      publicPath,
      new webpack.BannerPlugin({
        banner: `/* ${pluginJson.id}@${pluginVersion} */`,
        raw: true,
        entryOnly: true,
      }),
      new CopyWebpackPlugin({ patterns: copyFilePatterns }),
      new ReplaceInFileWebpackPlugin([
        {
          dir: DIST_DIR,
          test: [/(^|\/)plugin\.json$/, /(^|\/)README\.md$/],
          rules: [
            { search: /%VERSION%/g, replace: pluginVersion },
            { search: /%TODAY%/g, replace: new Date().toISOString().substring(0, 10) },
            { search: /%PLUGIN_ID%/g, replace: pluginJson.id },
          ],
        },
      ]),
      new SubresourceIntegrityPlugin({ hashFuncNames: ['sha256'] }),
    ],
    resolve: {
      extensions: ['.js', '.jsx', '.ts', '.tsx'],
      modules: [path.resolve(process.cwd(), SOURCE_DIR), 'node_modules'],
      unsafeCache: true,
    },
  };
};

export default config;
