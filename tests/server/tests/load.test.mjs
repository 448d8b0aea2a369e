// Continuous batching under load, loopback only and bounded: 32 concurrent streaming clients each
// get their own solo greedy text (with a batch of 32, and with a batch of 8 and a queue), and a
// client that disconnects mid-stream gets its sequence cancelled and its KV blocks freed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, collect, metrics, waitForMetrics, prompts, MODEL_NAME } from '../helpers.mjs';

const CLIENTS = 32;
const MAX_TOKENS = 48;
const servers = [];
after(async () => {
  for (const s of servers) assert.equal(await s.stop(), 0, 'the server exits cleanly on SIGTERM');
});

async function concurrentStreamsMatchSolo(serverArgs, t) {
  const server = await startServer(serverArgs);
  servers.push(server);
  const client = server.client();
  const ps = prompts(CLIENTS);
  const body = (prompt) => ({ model: MODEL_NAME, prompt, max_tokens: MAX_TOKENS, temperature: 0 });

  const solo = [];
  for (const p of ps) solo.push((await client.completions.create(body(p))).choices[0].text);

  const t0 = performance.now();
  const results = await Promise.all(ps.map(async (p) =>
    collect(await client.completions.create({ ...body(p), stream: true, stream_options: { include_usage: true } }))));
  const wall = performance.now() - t0;
  for (let i = 0; i < CLIENTS; ++i) {
    assert.equal(results[i].text, solo[i], `client ${i} (${JSON.stringify(ps[i])})`);
    assert.ok(['stop', 'length'].includes(results[i].finish));
  }
  const tokens = results.reduce((n, r) => n + r.usage.completion_tokens, 0);
  t.diagnostic(`${CLIENTS} concurrent streams (${serverArgs.join(' ')}): ${wall.toFixed(0)} ms wall, ` +
               `${tokens} tokens, ${(tokens / (wall / 1000)).toFixed(0)} tokens/s`);
  const m = await waitForMetrics(server.baseURL, (x) => x['fdpp_kv_cache_blocks_used'] === 0);
  assert.equal(m['fdpp_requests_running'], 0);
  assert.ok(wall < 60000, 'bounded in time');
  return server;
}

test(`${CLIENTS} concurrent streaming clients in one batch each get their solo greedy text`, async (t) => {
  await concurrentStreamsMatchSolo(['--max-batch', String(CLIENTS), '--max-queue', '64'], t);
});

test(`${CLIENTS} concurrent streaming clients over a batch of 8 (the rest queued) get their solo text`, async (t) => {
  const server = await concurrentStreamsMatchSolo(['--max-batch', '8', '--max-queue', '64'], t);
  const m = await metrics(server.baseURL);
  assert.equal(m['fdpp_requests_rejected_total{reason="queue_full"}'], 0);
});

test('a client that disconnects mid-stream frees its sequence and KV blocks', async () => {
  const server = await startServer(['--max-batch', '4']);
  servers.push(server);
  const client = server.client();
  const before = await metrics(server.baseURL);
  const stream = await client.completions.create({ model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 500,
                                                   temperature: 0, ignore_eos: true, stream: true });
  let chunks = 0;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'text_completion');
    if (++chunks === 3) {
      const during = await metrics(server.baseURL);
      assert.ok(during['fdpp_kv_cache_blocks_used'] > 0 || during['fdpp_requests_finished_total{reason="length"}'] > 0);
      break;  // leaving the loop aborts the HTTP request: the client disconnects
    }
  }
  const m = await waitForMetrics(server.baseURL, (x) =>
    x['fdpp_kv_cache_blocks_used'] === 0 &&
    x['fdpp_requests_finished_total{reason="cancelled"}'] === before['fdpp_requests_finished_total{reason="cancelled"}'] + 1);
  assert.equal(m['fdpp_requests_running'], 0);
  assert.ok(m['fdpp_generation_tokens_total'] < 500, `cancelled before the end (${m['fdpp_generation_tokens_total']} tokens)`);

  // The server keeps serving.
  const r = await client.completions.create({ model: MODEL_NAME, prompt: 'The old cat', max_tokens: 5, temperature: 0 });
  assert.equal(r.usage.completion_tokens, 5);
});

test('SIGTERM with requests in flight: every client gets an answer, then the server exits', async () => {
  const server = await startServer(['--max-batch', '2', '--max-queue', '64']);
  const client = server.client();
  const runs = [];
  for (let i = 0; i < 16; ++i) {
    const stream = i % 2 === 0;
    runs.push(client.completions.create({ model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 480,
                                          temperature: 0, ignore_eos: true, stream })
      .then((x) => (stream ? collect(x) : x))
      .then(() => 'completed', (e) => (/shutting down/.test(e.message) ? 'shutdown error' : `unexpected: ${e.message}`)));
  }
  await waitForMetrics(server.baseURL, (m) => m['fdpp_requests_running'] + m['fdpp_requests_waiting'] >= 12);
  assert.equal(await server.stop(), 0);
  const outcomes = await Promise.all(runs);
  for (const o of outcomes) assert.ok(o === 'completed' || o === 'shutdown error', o);
  assert.ok(outcomes.includes('shutdown error'));
});
