// Generates bytelevel/tokenizer.json and bytelevel/tokenizer_config.json: a small GPT-2 / Llama-3
// style byte-level BPE tokenizer (256 byte tokens, merges learned here from bytelevel/train.txt,
// the Llama-3 Split regex, ByteLevel pre-tokenizer and decoder, special tokens, TemplateProcessing
// adding <|begin_of_text|>). Deterministic: rerun with `node tests/tokenizer_npm/make_bytelevel.mjs`.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.join(here, "bytelevel");
const NUM_MERGES = 400;

// GPT-2's byte -> printable character map.
function byteToChar() {
  const map = new Array(256);
  let extra = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    map[b] = String.fromCodePoint(printable ? b : extra++);
  }
  return map;
}
const BYTE_CHAR = byteToChar();
const toByteLevel = (s) => Array.from(new TextEncoder().encode(s), (b) => BYTE_CHAR[b]).join("");

// Llama-3's pre-tokenizer pattern as written in its tokenizer.json (Oniguruma syntax).
const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// The same for training here, in JavaScript syntax (no inline (?i:...) groups).
const TRAIN_SPLIT =
  /'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

// ---- train: count pre-tokenized words, then repeatedly merge the most frequent adjacent pair ----
const text = fs.readFileSync(path.join(outDir, "train.txt"), "utf8");
const wordCounts = new Map();
for (const m of text.matchAll(TRAIN_SPLIT)) {
  const w = toByteLevel(m[0]);
  wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
}
const words = [...wordCounts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  .map(([w, count]) => ({ symbols: Array.from(w), count }));

const vocab = {};
for (let b = 0; b < 256; b++) vocab[BYTE_CHAR[b]] = b;
let nextId = 256;
const merges = [];
while (merges.length < NUM_MERGES) {
  const pairCounts = new Map();
  for (const { symbols, count } of words) {
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = JSON.stringify([symbols[i], symbols[i + 1]]);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + count);
    }
  }
  let best = null;
  let bestCount = 1;  // a pair must occur at least twice
  for (const [key, count] of pairCounts) {
    if (count > bestCount || (count === bestCount && best !== null && key < best)) {
      best = key;
      bestCount = count;
    }
  }
  if (best === null) break;
  const [a, b] = JSON.parse(best);
  const merged = a + b;
  if (!(merged in vocab)) vocab[merged] = nextId++;
  merges.push([a, b]);
  for (const w of words) {
    const out = [];
    for (let i = 0; i < w.symbols.length; i++) {
      if (i + 1 < w.symbols.length && w.symbols[i] === a && w.symbols[i + 1] === b) {
        out.push(merged);
        i++;
      } else {
        out.push(w.symbols[i]);
      }
    }
    w.symbols = out;
  }
}

// ---- added tokens (Llama-3 style specials, plus a non-special one and one with lstrip) ----
const added = [
  { content: "<|begin_of_text|>", special: true },
  { content: "<|end_of_text|>", special: true },
  { content: "<|start_header_id|>", special: true },
  { content: "<|end_header_id|>", special: true },
  { content: "<|eot_id|>", special: true },
  { content: "<|python_tag|>", special: true },
  { content: "<|mask|>", special: true, lstrip: true },
  { content: "<tool>", special: false },
].map((t) => ({
  id: nextId++,
  content: t.content,
  single_word: false,
  lstrip: t.lstrip ?? false,
  rstrip: false,
  normalized: false,
  special: t.special,
}));
const bos = added[0];

const tokenizer = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: added,
  normalizer: null,
  pre_tokenizer: {
    type: "Sequence",
    pretokenizers: [
      { type: "Split", pattern: { Regex: LLAMA3_PATTERN }, behavior: "Isolated", invert: false },
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  },
  post_processor: {
    type: "Sequence",
    processors: [
      { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
      {
        type: "TemplateProcessing",
        single: [{ SpecialToken: { id: bos.content, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
        pair: [
          { SpecialToken: { id: bos.content, type_id: 0 } },
          { Sequence: { id: "A", type_id: 0 } },
          { SpecialToken: { id: bos.content, type_id: 1 } },
          { Sequence: { id: "B", type_id: 1 } },
        ],
        special_tokens: { [bos.content]: { id: bos.content, ids: [bos.id], tokens: [bos.content] } },
      },
    ],
  },
  decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: {
    type: "BPE",
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: true,
    vocab,
    merges,
  },
};

const config = {
  bos_token: bos.content,
  eos_token: "<|eot_id|>",
  clean_up_tokenization_spaces: false,
  model_max_length: 8192,
  tokenizer_class: "PreTrainedTokenizerFast",
};

fs.writeFileSync(path.join(outDir, "tokenizer.json"), JSON.stringify(tokenizer, null, 1) + "\n");
fs.writeFileSync(path.join(outDir, "tokenizer_config.json"), JSON.stringify(config, null, 2) + "\n");
console.log(`wrote ${outDir}: ${Object.keys(vocab).length} tokens, ${merges.length} merges, ${added.length} added tokens`);
