/**
 * The text log never writes client-chosen control characters raw (issue 14: an ESC in a client id
 * reached the operator's terminal). Checked through a running server with real clients, since the
 * client id, username and topic reach the log by the server's event logging.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { connectAsync } from 'mqtt';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { startServer } from '../src/server.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'bucketmq-log-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** C0 controls, DEL, C1 controls and bidi overrides: none may appear raw in a text log line. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

function textLogger(level: 'info' | 'debug'): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, logger: createLogger({ level, format: 'text', destination: { write: (line: string) => void lines.push(line) } }) };
}

test('a client id with ESC, and a topic with C1 and bidi controls, are logged escaped', { timeout: 30_000 }, async () => {
  const { lines, logger } = textLogger('debug');
  const config = loadConfig(['--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--allow-anonymous', 'true', '--data-dir', path.join(scratch, 'data'), '--log-level', 'debug'], {});
  const server = await startServer(config, { logger });
  try {
    // ESC ] 0 ; ... BEL retitles an xterm; ESC [ 2 J clears the screen.
    const clientId = 'dev\u001b]0;pwned\u0007\u001b[2J';
    const client = await connectAsync(`mqtt://127.0.0.1:${server.ports.mqtt}`, { clientId, reconnectPeriod: 0, protocolVersion: 4 });
    await client.subscribeAsync('site/\u009b31m/\u202eevil', { qos: 0 });
    await client.endAsync();
    const deadline = Date.now() + 5000;
    while (!lines.some((l) => l.includes('client disconnected')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  } finally {
    await server.stop();
  }
  const connected = lines.find((l) => l.includes('client connected'));
  assert.ok(connected !== undefined, lines.join(''));
  assert.ok(connected.includes('clientId="dev\\u001b]0;pwned\\u0007\\u001b[2J"'), connected);
  const subscribe = lines.find((l) => / subscribe /.test(l));
  assert.ok(subscribe !== undefined, lines.join(''));
  assert.ok(subscribe.includes('site/\\u009b31m/\\u202eevil'), subscribe);
  for (const line of lines) assert.doesNotMatch(line.replace(/\n$/, ''), RAW_CONTROL, `raw control character in ${JSON.stringify(line)}`);
});

test('message text, field names and error stacks are escaped too; plain values stay bare', () => {
  const { lines, logger } = textLogger('info');
  const err = new Error('bad topic "a\u001b[31m"');
  logger.info({ plain: 'abc', spaced: 'a b', ['k\u001b']: 'v' }, 'hello \u001b[31mred');
  logger.error({ err }, 'failed');
  const [first, second] = lines;
  assert.ok(first !== undefined && second !== undefined);
  assert.match(first, / INFO {2}hello \\u001b\[31mred plain=abc spaced="a b" k\\u001b=v\n$/);
  assert.ok(second.includes('bad topic "a\\u001b[31m"'), second);
  for (const line of lines) assert.doesNotMatch(line, RAW_CONTROL);
});
