// Shared by the server tests: start `fdpp serve` on a free loopback port (--port 0; the port is
// read from its "listening on" line), an openai client for it, /metrics parsing, `fdpp generate`.
import { spawn, execFileSync } from 'node:child_process';
import OpenAI from 'openai';

export const FDPP = process.env.FDPP_BINARY;
export const MODEL_DIR = process.env.FDPP_MODEL_DIR;
export const MODEL_NAME = 'stories260K-hf';

// Starts the server; resolves once it listens. extraArgs: more `fdpp serve` flags.
export async function startServer(extraArgs = []) {
  const args = ['serve', '-m', MODEL_DIR, '--host', '127.0.0.1', '--port', '0', '--backend', 'cpu',
                '--no-progress', ...extraArgs];
  // One OpenMP thread: the CI machine's cores are shared, and the tiny model gains nothing.
  const proc = spawn(FDPP, args, { env: { ...process.env, OMP_NUM_THREADS: '1' },
                                   stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`fdpp serve did not start in 30 s; stderr:\n${stderr}`)), 30000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`fdpp serve exited (${code}):\n${stderr}`)); });
  });
  const baseURL = `http://127.0.0.1:${port}`;
  return {
    port,
    baseURL,
    proc,
    stderr: () => stderr,
    client: (opts = {}) => new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60000, ...opts }),
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal)));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

// GET /metrics as { 'name{labels}': value }.
export async function metrics(baseURL) {
  const text = await (await fetch(`${baseURL}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

// Polls until pred(metrics) holds; returns the last metrics or throws after timeoutMs.
export async function waitForMetrics(baseURL, pred, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  let m;
  while (Date.now() < end) {
    m = await metrics(baseURL);
    if (pred(m)) return m;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`metrics condition not reached in ${timeoutMs} ms; last: ${JSON.stringify(m)}`);
}

// `fdpp generate --temp 0 --no-echo`: the continuation as the CLI prints it (without its final newline).
export function greedyGenerate(prompt, n) {
  const out = execFileSync(FDPP, ['generate', '-m', MODEL_DIR, '-p', prompt, '-n', String(n), '--temp', '0',
                                  '--no-echo', '--no-progress', '--backend', 'cpu'],
                           { env: { ...process.env, OMP_NUM_THREADS: '1' }, encoding: 'utf8',
                             stdio: ['ignore', 'pipe', 'ignore'] });
  return out.endsWith('\n') ? out.slice(0, -1) : out;
}

// Number of tokens `fdpp tokenize` gives for text (BOS included, as the server counts prompts).
export function tokenCount(text) {
  return execFileSync(FDPP, ['tokenize', '-m', MODEL_DIR, text], { encoding: 'utf8' }).trim().split(/\s+/).length;
}

// Reads a streamed completion or chat completion to the end: { text, finish, chunks, usage }.
export async function collect(stream) {
  let text = '';
  let finish = null;
  let chunks = 0;
  let usage = null;
  for await (const chunk of stream) {
    ++chunks;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.text ?? c.delta?.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { text, finish, chunks, usage };
}

// 32 distinct short story openings.
export function prompts(n) {
  const who = ['Once upon a time', 'The little dog', 'Lily and Tom', 'A big red ball', 'One sunny day',
               'The old cat', 'Sam had a toy', 'In the park'];
  const how = ['', ', there was', ' went to the', ' saw a'];
  const out = [];
  for (let i = 0; i < n; ++i) out.push(who[i % who.length] + how[Math.floor(i / who.length) % how.length]);
  return out;
}
