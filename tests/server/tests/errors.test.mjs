// Bad input gets an OpenAI-style error body {"error": {"message", "type", "param", "code"}} with the
// right status, while the server keeps serving everyone else (a stream runs throughout).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, collect, greedyGenerate, MODEL_NAME } from '../helpers.mjs';

const MAX_BODY = 65536;
let server;
let client;
before(async () => {
  server = await startServer(['--max-batch', '4', '--max-body-bytes', String(MAX_BODY)]);
  client = server.client();
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

// Raw HTTP for what the openai client cannot send (broken JSON, invalid UTF-8, huge bodies).
async function post(path, body, headers = { 'Content-Type': 'application/json' }) {
  const res = await fetch(`${server.baseURL}${path}`, { method: 'POST', body, headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: JSON.parse(text) };
}

function assertErrorShape(json) {
  assert.ok(json.error, 'has an error object');
  assert.equal(typeof json.error.message, 'string');
  assert.ok(json.error.message.length > 0);
  assert.equal(typeof json.error.type, 'string');
  assert.ok('param' in json.error && 'code' in json.error);
}

// The openai client's error for a request, checked for status, param and a message fragment.
async function expectApiError(promise, status, { param, code, message } = {}) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `an APIError, got ${e}`);
    assert.equal(e.status, status, e.message);
    assertErrorShape({ error: e.error });
    if (param !== undefined) assert.equal(e.param, param, e.message);
    if (code !== undefined) assert.equal(e.code, code, e.message);
    if (message) assert.match(e.error.message, message);
    return e;
  }
  assert.fail(`expected HTTP ${status}`);
}

const completion = (extra) => client.completions.create({ model: MODEL_NAME, prompt: 'Hi', max_tokens: 4, ...extra });
const chat = (extra) => client.chat.completions.create({ model: MODEL_NAME, max_tokens: 4,
  messages: [{ role: 'user', content: 'Hi' }], ...extra });

test('malformed JSON and a non-object body: 400', async () => {
  for (const body of ['{"prompt": "x",', 'not json', '[1, 2]', '']) {
    const r = await post('/v1/completions', body);
    assert.equal(r.status, 400, body);
    assertErrorShape(r.json);
    assert.equal(r.json.error.type, 'invalid_request_error');
  }
  const r = await post('/v1/chat/completions', '{"messages": [}');
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /not valid JSON/);
});

test('invalid UTF-8 in the body: 400', async () => {
  for (const bytes of [[0xff, 0xfe], [0xc3], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {  // junk, truncated, surrogate, overlong
    const body = Buffer.concat([Buffer.from('{"prompt": "ab'), Buffer.from(bytes), Buffer.from('"}')]);
    const r = await post('/v1/completions', body);
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'invalid_utf8');
  }
  const r = await post('/v1/completions', '{"prompt": "\\ud800"}');  // a lone surrogate escape
  assert.equal(r.status, 400);
  assertErrorShape(r.json);
});

test('an oversized body: 413', async () => {
  const r = await post('/v1/completions', JSON.stringify({ prompt: 'a'.repeat(MAX_BODY + 10) }));
  assert.equal(r.status, 413);
  assertErrorShape(r.json);
  assert.match(r.json.error.message, new RegExp(String(MAX_BODY)));
  await expectApiError(completion({ prompt: 'b'.repeat(2 * MAX_BODY) }), 413);
});

test('wrong field types: 400 naming the field', async () => {
  await expectApiError(completion({ temperature: 'hot' }), 400, { param: 'temperature', code: 'invalid_type' });
  await expectApiError(completion({ max_tokens: '5' }), 400, { param: 'max_tokens' });
  await expectApiError(completion({ max_tokens: 2.5 }), 400, { param: 'max_tokens' });
  await expectApiError(completion({ prompt: 42 }), 400, { param: 'prompt' });
  await expectApiError(completion({ prompt: { text: 'x' } }), 400, { param: 'prompt' });
  await expectApiError(completion({ stop: 7 }), 400, { param: 'stop' });
  await expectApiError(completion({ stop: ['ok', 3] }), 400, { param: 'stop' });
  await expectApiError(completion({ stream: 'yes' }), 400, { param: 'stream' });
  await expectApiError(completion({ seed: 'abc' }), 400, { param: 'seed' });
  await expectApiError(completion({ top_p: [0.5] }), 400, { param: 'top_p' });
  await expectApiError(chat({ messages: 'Hi' }), 400, { param: 'messages' });
  await expectApiError(chat({ messages: [{ role: 'user', content: 5 }] }), 400, { param: 'messages[0].content' });
  await expectApiError(chat({ messages: [{ role: 'wizard', content: 'x' }] }), 400, { param: 'messages[0].role' });
  await expectApiError(chat({ messages: [{ content: 'x' }] }), 400, { param: 'messages[0].role' });
  await expectApiError(chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }),
                       400, { param: 'messages[0].content[0].type' });
  await expectApiError(completion({ model: 7 }), 400, { param: 'model' });
});

test('out-of-range values and unsupported options: 400', async () => {
  await expectApiError(completion({ temperature: 2.5 }), 400, { param: 'temperature' });
  await expectApiError(completion({ temperature: -1 }), 400, { param: 'temperature' });
  await expectApiError(completion({ top_p: 0 }), 400, { param: 'top_p' });
  await expectApiError(completion({ top_p: 1.5 }), 400, { param: 'top_p' });
  await expectApiError(completion({ n: 2 }), 400, { param: 'n' });
  await expectApiError(chat({ n: 3 }), 400, { param: 'n' });
  await expectApiError(completion({ stop: '' }), 400, { param: 'stop' });
  await expectApiError(completion({ prompt: ['one', 'two'] }), 400, { param: 'prompt' });
  await expectApiError(completion({ prompt: [1, 99999] }), 400, { param: 'prompt' });
  await expectApiError(completion({ stream_options: { include_usage: true } }), 400, { param: 'stream_options' });
  await expectApiError(chat({ tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] }), 400,
                       { param: 'tools' });
  await expectApiError(chat({ logprobs: true }), 400, { param: 'logprobs' });
});

test('an unknown model: 404 model_not_found', async () => {
  const e = await expectApiError(completion({ model: 'gpt-4o' }), 404, { param: 'model', code: 'model_not_found' });
  assert.match(e.error.message, /gpt-4o/);
  await expectApiError(chat({ model: 'nope' }), 404, { code: 'model_not_found' });
  await expectApiError(client.models.retrieve('nope'), 404);
  const r = await fetch(`${server.baseURL}/v1/no-such-route`);
  assert.equal(r.status, 404);
  assertErrorShape(await r.json());
});

test('max_tokens <= 0 or beyond the context: 400', async () => {
  await expectApiError(completion({ max_tokens: 0 }), 400, { param: 'max_tokens', message: /at least 1/ });
  await expectApiError(completion({ max_tokens: -3 }), 400, { param: 'max_tokens' });
  await expectApiError(chat({ max_completion_tokens: 0 }), 400, { param: 'max_completion_tokens' });
  await expectApiError(completion({ max_tokens: 600 }), 400,
                       { param: 'max_tokens', code: 'context_length_exceeded', message: /512/ });
  await expectApiError(chat({ max_tokens: 100000 }), 400, { code: 'context_length_exceeded' });
});

test('a prompt too long for the context: 400 context_length_exceeded', async () => {
  const long = 'the cat sat on the mat. '.repeat(60);  // well over 512 tokens, well under the body limit
  await expectApiError(completion({ prompt: long }), 400, { param: 'prompt', code: 'context_length_exceeded' });
  await expectApiError(chat({ messages: [{ role: 'user', content: long }] }), 400,
                       { param: 'messages', code: 'context_length_exceeded' });
  await expectApiError(completion({ prompt: Array(600).fill(403) }), 400, { code: 'context_length_exceeded' });
});

test('empty messages and missing fields: 400', async () => {
  await expectApiError(chat({ messages: [] }), 400, { param: 'messages', message: /at least one/ });
  let r = await post('/v1/chat/completions', JSON.stringify({ model: MODEL_NAME }));
  assert.equal(r.status, 400);
  assert.equal(r.json.error.param, 'messages');
  r = await post('/v1/completions', JSON.stringify({ model: MODEL_NAME }));
  assert.equal(r.status, 400);
  assert.equal(r.json.error.param, 'prompt');
});

test('good requests interleaved with bad ones all get their own answers', async () => {
  const good = ['Once upon a time', 'The little dog', 'One sunny day', 'In the park'];
  const expected = good.map((p) => greedyGenerate(p, 60));
  const bad = [
    () => post('/v1/completions', '{"prompt": '),
    () => post('/v1/completions', Buffer.from([0x7b, 0xff, 0x7d])),
    () => post('/v1/completions', JSON.stringify({ prompt: 'x'.repeat(MAX_BODY * 2) })),
    () => post('/v1/completions', JSON.stringify({ prompt: 'Hi', max_tokens: 0 })),
    () => post('/v1/chat/completions', JSON.stringify({ messages: [] })),
    () => post('/v1/completions', JSON.stringify({ prompt: 'Hi', model: 'other' })),
  ];
  const goodRuns = good.map(async (p, i) => {
    const body = { model: MODEL_NAME, prompt: p, max_tokens: 60, temperature: 0 };
    const text = i % 2 === 0 ? (await collect(await client.completions.create({ ...body, stream: true }))).text
                             : (await client.completions.create(body)).choices[0].text;
    assert.equal(text, expected[i], p);
  });
  const badRuns = [];
  for (let round = 0; round < 4; ++round)
    for (const b of bad) badRuns.push(b().then((r) => { assert.ok(r.status >= 400 && r.status < 500); assertErrorShape(r.json); }));
  await Promise.all([...goodRuns, ...badRuns]);
});

test('a full queue: 429 with Retry-After, and service resumes afterwards', async () => {
  const small = await startServer(['--max-batch', '1', '--max-queue', '1']);
  try {
    const c = small.client();
    const long = { model: MODEL_NAME, prompt: 'Once upon a time', max_tokens: 480, temperature: 0, ignore_eos: true,
                   stream: true };
    const running = await c.completions.create(long);  // takes the one batch slot
    const it = running[Symbol.asyncIterator]();
    await it.next();
    const queued = await c.completions.create(long);   // takes the one queue place
    const e = await expectApiError(c.completions.create({ ...long, stream: false }), 429,
                                   { code: 'queue_full' });
    assert.equal(e.type, 'rate_limit_error');
    assert.equal(e.headers.get('retry-after'), '1');
    await expectApiError(c.chat.completions.create({ model: MODEL_NAME, messages: [{ role: 'user', content: 'x' }],
                                                     max_tokens: 5 }), 429);
    running.controller.abort();
    queued.controller.abort();
    // Once they are gone the server takes requests again.
    let done = null;
    for (let i = 0; i < 100 && !done; ++i) {
      try {
        done = await c.completions.create({ model: MODEL_NAME, prompt: 'Hi', max_tokens: 3, temperature: 0 });
      } catch (err) {
        if (err.status !== 429) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert.ok(done, 'served after the queue drained');
  } finally {
    assert.equal(await small.stop(), 0);
  }
});
