import webpack from 'webpack';

const NAME = 'BuildModeWebpackPlugin';

// BuildModeWebpackPlugin records the webpack mode ("production" or "development") in the
// emitted plugin.json, as Grafana's plugin tooling expects to find it there.
export class BuildModeWebpackPlugin {
  apply(compiler: webpack.Compiler) {
    compiler.hooks.compilation.tap(NAME, (compilation) => {
      compilation.hooks.processAssets.tap(
        { name: NAME, stage: webpack.Compilation.PROCESS_ASSETS_STAGE_ADDITIONS },
        () => {
          for (const asset of compilation.getAssets()) {
            if (!asset.name.endsWith('plugin.json')) {
              continue;
            }
            const json = JSON.parse(asset.source.source().toString());
            const out = JSON.stringify({ ...json, buildMode: compilation.options.mode }, null, 2) + '\n';
            compilation.updateAsset(asset.name, new webpack.sources.RawSource(out));
          }
        }
      );
    });
  }
}
