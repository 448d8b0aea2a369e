// Completions and chat completions through the official openai client, streamed and not:
// greedy output equals `fdpp generate`, usage counts, stop strings, seeds, echo, models, health.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, greedyGenerate, collect, metrics, tokenCount, MODEL_NAME } from '../helpers.mjs';

let server;
let client;
before(async () => {
  server = await startServer(['--max-batch', '4']);
  client = server.client();
});
after(async () => {
  assert.equal(await server.stop(), 0, 'the server exits cleanly on SIGTERM');
});

test('GET /v1/models lists the served model; /health answers', async () => {
  const list = await client.models.list();
  const ids = [];
  for await (const m of list) ids.push(m.id);
  assert.deepEqual(ids, [MODEL_NAME]);
  const one = await client.models.retrieve(MODEL_NAME);
  assert.equal(one.id, MODEL_NAME);
  const health = await (await fetch(`${server.baseURL}/health`)).json();
  assert.equal(health.status, 'ok');
});

test('greedy completion equals `fdpp generate --temp 0 --no-echo`, streamed and not', async () => {
  for (const [prompt, n] of [['Once upon a time', 40], ['The little dog', 64], ['Lily and Tom went to the park', 25]]) {
    const expected = greedyGenerate(prompt, n);
    const r = await client.completions.create({ model: MODEL_NAME, prompt, max_tokens: n, temperature: 0 });
    assert.equal(r.object, 'text_completion');
    assert.match(r.id, /^cmpl-/);
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].text, expected, `prompt ${JSON.stringify(prompt)}`);
    assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    if (r.choices[0].finish_reason === 'length') assert.equal(r.usage.completion_tokens, n);

    const s = await collect(await client.completions.create({ model: MODEL_NAME, prompt, max_tokens: n, temperature: 0,
                                                              stream: true }));
    assert.equal(s.text, expected);
    assert.equal(s.finish, r.choices[0].finish_reason);
    assert.ok(s.chunks > 2, 'the text arrives in several chunks');
  }
});

test('streamed usage (stream_options.include_usage) matches the non-streamed usage', async () => {
  const body = { model: MODEL_NAME, prompt: 'One sunny day', max_tokens: 20, temperature: 0 };
  const whole = await client.completions.create(body);
  const s = await collect(await client.completions.create({ ...body, stream: true,
                                                            stream_options: { include_usage: true } }));
  assert.deepEqual(s.usage, whole.usage);
  assert.equal(whole.usage.prompt_tokens, tokenCount('One sunny day'));
  assert.equal(whole.usage.completion_tokens, 20);
});

test('chat completion: non-streamed equals streamed; roles, ids and usage', async () => {
  const messages = [{ role: 'system', content: 'Tell short stories.' }, { role: 'user', content: 'A story about a cat' }];
  const r = await client.chat.completions.create({ model: MODEL_NAME, messages, max_tokens: 30, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(r.choices[0].message.content.length > 0);
  assert.ok(r.usage.prompt_tokens > 5);

  const stream = await client.chat.completions.create({ model: MODEL_NAME, messages, max_tokens: 30, temperature: 0,
                                                         stream: true, stream_options: { include_usage: true } });
  let first = true;
  let text = '';
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    if (chunk.choices.length === 0) continue;
    if (first) assert.equal(chunk.choices[0].delta.role, 'assistant');
    first = false;
    text += chunk.choices[0].delta.content ?? '';
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  assert.equal(text, r.choices[0].message.content);
  assert.equal(finish, r.choices[0].finish_reason);
  assert.deepEqual(usage, r.usage);
});

test('chat: content given as text parts equals plain content; the fallback template is used', async () => {
  const a = await client.chat.completions.create({ model: MODEL_NAME, max_tokens: 12, temperature: 0,
    messages: [{ role: 'user', content: 'Hello there' }] });
  const b = await client.chat.completions.create({ model: MODEL_NAME, max_tokens: 12, temperature: 0,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello ' }, { type: 'text', text: 'there' }] }] });
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  // "<s>User: Hello there\nAssistant:" is the completion prompt the fallback template renders.
  const c = await client.completions.create({ model: MODEL_NAME, max_tokens: 12, temperature: 0,
                                              prompt: 'User: Hello there\nAssistant:' });
  assert.equal(a.choices[0].message.content, c.choices[0].text);
  assert.equal(a.usage.prompt_tokens, c.usage.prompt_tokens);
});

test('stop strings (a string or a list) end the text before the stop string', async () => {
  const full = greedyGenerate('Once upon a time', 40);  // ", there was a little girl named Lily. ..."
  const r = await client.completions.create({ model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 40,
                                              temperature: 0, stop: 'Lily' });
  assert.equal(r.choices[0].text, full.slice(0, full.indexOf('Lily')));
  assert.equal(r.choices[0].finish_reason, 'stop');
  const s = await collect(await client.completions.create({ model: MODEL_NAME, prompt: 'Once upon a time',
    max_tokens: 40, temperature: 0, stop: ['zzz', 'girl'], stream: true }));
  assert.equal(s.text, full.slice(0, full.indexOf('girl')));
  assert.equal(s.finish, 'stop');
});

test('seeded sampling is reproducible; temperature and top_p are honoured', async () => {
  const body = { model: MODEL_NAME, prompt: 'The old cat', max_tokens: 30, temperature: 1.0, top_p: 0.9 };
  const a = await client.completions.create({ ...body, seed: 1234 });
  const b = await client.completions.create({ ...body, seed: 1234 });
  const c = await client.completions.create({ ...body, seed: 99 });
  assert.equal(a.choices[0].text, b.choices[0].text);
  assert.notEqual(a.choices[0].text, c.choices[0].text);
  const streamed = await collect(await client.completions.create({ ...body, seed: 1234, stream: true }));
  assert.equal(streamed.text, a.choices[0].text);
});

test('max_completion_tokens, echo and token-id prompts', async () => {
  const r = await client.chat.completions.create({ model: MODEL_NAME, max_completion_tokens: 7, temperature: 0,
                                                   ignore_eos: true, messages: [{ role: 'user', content: 'Hi' }] });
  assert.equal(r.usage.completion_tokens, 7);
  assert.equal(r.choices[0].finish_reason, 'length');
  const e = await client.completions.create({ model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 10,
                                              temperature: 0, echo: true });
  assert.equal(e.choices[0].text, 'Once upon a time' + greedyGenerate('Once upon a time', 10));
  const ids = await client.completions.create({ model: MODEL_NAME, prompt: [1, 403, 407, 261, 378], max_tokens: 10,
                                                temperature: 0 });
  assert.equal(ids.usage.prompt_tokens, 5);
  assert.equal(typeof ids.choices[0].text, 'string');
});

test('metrics count the requests and tokens served, and the KV cache is empty when idle', async () => {
  const m = await metrics(server.baseURL);
  assert.ok(m['fdpp_http_requests_total{route="/v1/completions",code="200"}'] >= 10);
  assert.ok(m['fdpp_generation_tokens_total'] > 100);
  assert.ok(m['fdpp_time_to_first_token_seconds_count'] >= 10);
  assert.ok(m['fdpp_inter_token_latency_seconds_count'] > 100);
  assert.equal(m['fdpp_kv_cache_blocks_used'], 0);
  assert.ok(m['fdpp_kv_cache_blocks_total'] > 0);
  assert.equal(m['fdpp_requests_running'], 0);
  assert.equal(m['fdpp_requests_waiting'], 0);
  assert.equal(m['fdpp_softmax_fallback_rows_total'], 0);
  assert.equal(m['fdpp_steps_queued_ahead_total'], 0);  // the CPU backend draws no tokens to feed on
});
