// Renders the chat-template fixtures (chat_templates/cases.json) with the npm package
// @huggingface/jinja, the reference for fdpp's own Jinja interpreter.
//   node chat_template_expected.mjs           compare with chat_templates/expected.json (exit 1 on a difference)
//   node chat_template_expected.mjs --write   regenerate chat_templates/expected.json
// Exits 77 (ctest: skipped) when node_modules is missing (run `npm ci --prefix tests/server`).
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
let Template;
try {
  ({ Template } = await import('@huggingface/jinja'));
} catch {
  console.log('SKIP: @huggingface/jinja is not installed (npm ci --prefix tests/server)');
  process.exit(77);
}

const dir = join(here, 'chat_templates');
const cases = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8'));

function render(source, vars) {
  try {
    return { output: new Template(source).render(vars) };
  } catch (e) {
    return { error: String(e.message ?? e) };
  }
}

const results = [];
for (const [name, t] of Object.entries(cases.templates)) {
  const source = readFileSync(join(dir, 'templates', t.file), 'utf8');
  for (const conv of cases.conversations) {
    const vars = {
      messages: conv.messages,
      add_generation_prompt: conv.add_generation_prompt,
      bos_token: t.bos_token,
      eos_token: t.eos_token,
      tools: conv.tools ?? null,
      documents: null,
    };
    results.push({ template: name, case: conv.name, ...render(source, vars) });
  }
}
for (const s of cases.snippets) results.push({ template: 'snippet', case: s.name, ...render(s.template, s.vars) });

const text = JSON.stringify({ generator: '@huggingface/jinja', results }, null, 1) + '\n';
const expectedPath = join(dir, 'expected.json');
if (process.argv.includes('--write')) {
  writeFileSync(expectedPath, text);
  console.log(`wrote ${results.length} renderings to ${expectedPath}`);
  process.exit(0);
}
const committed = JSON.parse(readFileSync(expectedPath, 'utf8')).results;
let bad = 0;
for (let i = 0; i < results.length; ++i) {
  if (JSON.stringify(results[i]) !== JSON.stringify(committed[i])) {
    ++bad;
    console.log(`DIFF ${results[i].template}/${results[i].case}:\n  npm:       ${JSON.stringify(results[i])}\n  committed: ${JSON.stringify(committed[i])}`);
  }
}
if (results.length !== committed.length) {
  ++bad;
  console.log(`count differs: npm ${results.length}, committed ${committed.length}`);
}
console.log(bad ? `${bad} renderings differ from expected.json` : `all ${results.length} renderings agree with expected.json`);
process.exit(bad ? 1 : 0);
