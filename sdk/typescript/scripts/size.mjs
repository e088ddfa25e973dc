#!/usr/bin/env node
// Bundles the package's entry (dist/index.js, from `npm run build`) with esbuild as a browser
// app would: minified, browser platform, ESM, every dependency included. Prints the size in
// bytes, raw and gzipped, and the largest inputs.
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist', 'index.js');
if (!existsSync(entry)) {
  console.error(`${relative(process.cwd(), entry)} is missing: run npm run build first`);
  process.exit(1);
}
const result = await build({
  entryPoints: [entry],
  bundle: true,
  minify: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  write: false,
  metafile: true,
  logLevel: 'warning',
});
const code = result.outputFiles[0].contents;
const gzipped = gzipSync(code, { level: 9 }).length;
console.log(`bundle of ${relative(root, entry)} (esbuild, minified, browser, ESM, all dependencies): ${code.length} bytes raw, ${gzipped} bytes gzipped`);
const inputs = Object.entries(result.metafile.outputs[Object.keys(result.metafile.outputs)[0]].inputs)
  .map(([file, v]) => [file.replace(/^.*node_modules\//, ''), v.bytesInOutput])
  .sort((a, b) => b[1] - a[1]);
const byPackage = new Map();
for (const [file, bytes] of inputs) {
  const pkg = file.startsWith('@') ? file.split('/').slice(0, 2).join('/') : file.startsWith('dist/') ? '@taksa/sdk' : file.split('/')[0];
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + bytes);
}
for (const [pkg, bytes] of [...byPackage].sort((a, b) => b[1] - a[1])) console.log(`  ${pkg.padEnd(16)} ${String(bytes).padStart(7)} bytes (minified)`);
