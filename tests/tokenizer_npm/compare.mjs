// Compares fdpp's tokenizer with the npm package @huggingface/tokenizers (Hugging Face's
// JavaScript tokenizers) on a corpus of varied strings, for three tokenizer.json files:
//   llama2-spm   ../shared/testdata/tokenizer-llama2 (SentencePiece-style, byte fallback)
//   stories260K  ../shared/models/stories260K-hf
//   bytelevel    tests/tokenizer_npm/bytelevel (GPT-2 / Llama-3 style, made by make_bytelevel.mjs)
// Encodes with and without special tokens and decodes the ids back, through
// `fdpp tokenize --batch`, and reports every disagreement.
//
// Usage: node tests/tokenizer_npm/compare.mjs <path-to-fdpp-binary> <shared-dir>
// Exit: 0 all agree, 1 a mismatch (or an error), 77 skipped (node_modules not installed).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const SKIP = 77;

let Tokenizer;
try {
  ({ Tokenizer } = await import("@huggingface/tokenizers"));
} catch (e) {
  console.log(`SKIP: the npm package @huggingface/tokenizers is not installed (${e.code ?? e.message}).`);
  console.log(`Install it with: npm ci --prefix tests/tokenizer_npm`);
  process.exit(SKIP);
}

const [fdppBinary, sharedDir] = process.argv.slice(2);
if (!fdppBinary || !sharedDir) {
  console.error("usage: node compare.mjs <path-to-fdpp-binary> <shared-dir>");
  process.exit(1);
}
if (!fs.existsSync(fdppBinary)) {
  console.error(`error: fdpp binary not found: ${fdppBinary}`);
  process.exit(1);
}

// The corpus, plus llama.cpp's tokenizer test inputs when ../shared has them.
const corpus = JSON.parse(fs.readFileSync(path.join(here, "corpus.json"), "utf8"));
const vectorsFile = path.join(sharedDir, "testdata", "tokenizer-llama2", "ggml-vocab-llama-spm.gguf.inp");
if (fs.existsSync(vectorsFile)) {
  const parts = fs.readFileSync(vectorsFile, "utf8").split("\n__ggml_vocab_test__\n");
  parts.pop();  // what follows the last separator
  corpus.push(...parts);
}

const tokenizers = [
  { name: "llama2-spm", dir: path.join(sharedDir, "testdata", "tokenizer-llama2") },
  { name: "stories260K", dir: path.join(sharedDir, "models", "stories260K-hf") },
  { name: "bytelevel", dir: path.join(here, "bytelevel") },
];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fdpp-tok-npm-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

// Runs `fdpp tokenize -m dir --batch file [flags]` on a JSON value and parses its JSON output.
function fdppBatch(dir, input, flags) {
  const file = path.join(tmp, "batch.json");
  fs.writeFileSync(file, JSON.stringify(input));
  const r = spawnSync(fdppBinary, ["tokenize", "-m", dir, "--batch", file, ...flags], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) {
    throw new Error(`fdpp tokenize ${flags.join(" ")} failed (exit ${r.status}): ${r.stderr}${r.error ?? ""}`);
  }
  return JSON.parse(r.stdout);
}

const show = (s) => JSON.stringify(s);
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

let failures = 0;
const summary = [];
for (const t of tokenizers) {
  const jsonPath = path.join(t.dir, "tokenizer.json");
  if (!fs.existsSync(jsonPath)) {
    summary.push(`${t.name}: skipped (no ${jsonPath})`);
    continue;
  }
  const configPath = path.join(t.dir, "tokenizer_config.json");
  const config = fs.existsSync(configPath) ? JSON.parse(fs.readFileSync(configPath, "utf8")) : {};
  const ref = new Tokenizer(JSON.parse(fs.readFileSync(jsonPath, "utf8")), config);
  const counts = [];
  for (const addSpecial of [true, false]) {
    const label = addSpecial ? "encode" : "encode --no-special";
    const got = fdppBatch(t.dir, corpus, addSpecial ? [] : ["--no-special"]);
    let agree = 0;
    corpus.forEach((text, i) => {
      const want = ref.encode(text, { add_special_tokens: addSpecial }).ids;
      if (same(got[i], want)) {
        agree++;
        return;
      }
      failures++;
      console.log(`MISMATCH ${t.name} ${label} #${i} ${show(text)}`);
      console.log(`  npm : ${show(want)}`);
      console.log(`  fdpp: ${show(got[i])}`);
      console.log(`  npm tokens: ${show(ref.encode(text, { add_special_tokens: addSpecial }).tokens)}`);
    });
    counts.push(`${label} ${agree}/${corpus.length}`);

    if (addSpecial) {
      // Decode the reference ids back (skipping special tokens, HF's usual call).
      const ids = corpus.map((text) => ref.encode(text, { add_special_tokens: true }).ids);
      const decoded = fdppBatch(t.dir, ids, ["--decode"]);
      let agreeDecode = 0;
      ids.forEach((row, i) => {
        const want = row.length === 0 ? "" : ref.decode(row, { skip_special_tokens: true });
        if (decoded[i] === want) {
          agreeDecode++;
          return;
        }
        failures++;
        console.log(`MISMATCH ${t.name} decode #${i} ids ${show(row)}`);
        console.log(`  npm : ${show(want)}`);
        console.log(`  fdpp: ${show(decoded[i])}`);
      });
      counts.push(`decode ${agreeDecode}/${corpus.length}`);
    }
  }
  summary.push(`${t.name}: ${counts.join(", ")}`);
}

console.log(`fdpp vs @huggingface/tokenizers on ${corpus.length} strings:`);
for (const line of summary) console.log(`  ${line}`);
if (failures > 0) {
  console.log(`FAILED: ${failures} disagreement(s)`);
  process.exit(1);
}
console.log("all agree");
