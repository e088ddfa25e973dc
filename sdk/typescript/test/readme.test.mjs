// The README's example, taken from README.md as it is, type-checked against the built
// declarations and run against a real `taksa dev`, so the README cannot rot.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { DevNode } from './helpers/node.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Inside the package, so that `import … from '@taksa/sdk'` resolves to this package itself.
const work = join(root, '.tmp', `readme-${process.pid}`);
let node;

/** The code block right after the `readme-example` marker. */
function example() {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const m = /<!-- readme-example[^>]*-->\s*```js\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README.md has a ```js block after <!-- readme-example -->');
  return m[1];
}

before(async () => {
  mkdirSync(work, { recursive: true });
  node = await DevNode.start({ label: 'readme', instant: true });
});

after(async () => {
  await node?.destroy();
  rmSync(work, { recursive: true, force: true });
});

test('the README example is at most 10 lines of code', () => {
  const lines = example().split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('//'));
  assert.ok(lines.length <= 10, `${lines.length} lines`);
});

test('the README example type-checks against the built declarations', () => {
  writeFileSync(join(work, 'example.ts'), example());
  writeFileSync(
    join(work, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, types: ['node'], skipLibCheck: true },
      files: ['example.ts'],
    }),
  );
  const tsc = join(root, 'node_modules', '.bin', 'tsc');
  const r = spawnSync(tsc, ['-p', join(work, 'tsconfig.json')], { encoding: 'utf8', cwd: work });
  assert.equal(r.status, 0, `tsc: ${r.stdout}${r.stderr}`);
});

test('the README example runs as written against a dev node', () => {
  const file = join(work, 'example.mjs');
  writeFileSync(file, example());
  const r = spawnSync(process.execPath, [file], {
    encoding: 'utf8',
    cwd: work,
    env: { ...process.env, TAKSA_RPC: node.url },
    timeout: 60_000,
  });
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^final at height \d+: tdev1[02-9ac-hj-np-z]{58} has 1\.5 TKS\n$/);
});
