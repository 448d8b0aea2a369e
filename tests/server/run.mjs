// ctest entry point: checks what the server tests need, then runs tests/*.test.mjs one file at a
// time with node's built-in test runner. Exits 77 (ctest: skipped) with a message when the npm
// packages, the model or a server-enabled fdpp are missing.
//   node run.mjs FDPP_BINARY SHARED_DIR
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [binary, shared] = process.argv.slice(2);
const skip = (why) => { console.log(`SKIP: ${why}`); process.exit(77); };

if (!existsSync(join(here, 'node_modules', 'openai'))) skip('tests/server/node_modules is missing (npm ci --prefix tests/server)');
const model = join(shared ?? '', 'models', 'stories260K-hf');
if (!existsSync(join(model, 'config.json'))) skip(`missing test model ${model}`);
if (!binary || !existsSync(binary)) skip(`fdpp binary not found: ${binary}`);
const probe = spawnSync(binary, ['serve', '-m', join(here, 'no-such-model')], { encoding: 'utf8' });
if (/without the HTTP server/.test(probe.stderr)) skip('fdpp was built without the HTTP server (cpp-httplib not found)');

const files = readdirSync(join(here, 'tests')).filter((f) => f.endsWith('.test.mjs')).sort()
  .map((f) => join(here, 'tests', f));
const only = process.env.FDPP_SERVER_TESTS;  // e.g. "errors" runs tests/errors.test.mjs alone
const selected = only ? files.filter((f) => f.includes(only)) : files;
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...selected], {
  stdio: 'inherit',
  env: { ...process.env, FDPP_BINARY: binary, FDPP_MODEL_DIR: model },
});
process.exit(r.status ?? 1);
