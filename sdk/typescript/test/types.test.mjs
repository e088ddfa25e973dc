// src/rpc-types.ts is what scripts/gen-types.mjs generates from the node's rpc/openrpc.json:
// regenerated here and compared, so the types cannot drift from the spec. The check itself is
// shown to fail on a changed spec.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { RPC_ERROR_CODES, RPC_PARAM_NAMES, RPC_SUBSCRIPTIONS } from '../dist/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const specPath = join(root, '..', '..', 'rpc', 'openrpc.json');
const spec = JSON.parse(readFileSync(specPath, 'utf8'));
const gen = join(root, 'scripts', 'gen-types.mjs');

function check(env = {}) {
  return spawnSync(process.execPath, [gen, '--check'], { encoding: 'utf8', env: { ...process.env, ...env } });
}

test('the committed src/rpc-types.ts is exactly what the generator writes from rpc/openrpc.json', async () => {
  const { render } = await import(gen);
  assert.equal(readFileSync(join(root, 'src', 'rpc-types.ts'), 'utf8'), render(specPath));
  const r = check();
  assert.equal(r.status, 0, r.stderr);
});

test('a change to the spec makes the check fail', () => {
  const dir = mkdtempSync(join(tmpdir(), 'taksa-sdk-spec-'));
  try {
    const changed = structuredClone(spec);
    changed.components.schemas.ChainInfo.properties.newField = { type: 'string' };
    writeFileSync(join(dir, 'openrpc.json'), JSON.stringify(changed));
    const r = check({ TAKSA_OPENRPC: join(dir, 'openrpc.json') });
    assert.equal(r.status, 1, 'the check fails');
    assert.match(r.stderr, /differs/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the generated tables cover every method, parameter, subscription and error of the spec', () => {
  assert.deepEqual(Object.keys(RPC_PARAM_NAMES), spec.methods.map((m) => m.name));
  for (const m of spec.methods) assert.deepEqual(RPC_PARAM_NAMES[m.name], m.params.map((p) => p.name), m.name);
  const subscribes = spec.methods.filter((m) => /Notifications: `/.test(m.summary)).map((m) => m.name);
  assert.deepEqual(Object.keys(RPC_SUBSCRIPTIONS).sort(), subscribes.sort());
  for (const [reason, e] of Object.entries(spec.components.errors)) assert.equal(RPC_ERROR_CODES[e.data?.reason ?? reason], e.code, reason);
});

test('the public types work as a TypeScript user writes them (test/typecheck/usage.ts)', () => {
  const dir = join(root, '.tmp', `typecheck-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2022', 'dom'], strict: true, noEmit: true, types: ['node'], skipLibCheck: false },
        files: [join(root, 'test', 'typecheck', 'usage.ts')],
      }),
    );
    const r = spawnSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(dir, 'tsconfig.json')], { encoding: 'utf8' });
    assert.equal(r.status, 0, `tsc: ${r.stdout}${r.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
