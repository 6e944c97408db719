/**
 * readAhead (src/base/read-ahead.ts): the source's items in their order, the next one read while the
 * consumer is busy, an error raised where its item is asked for, and the source closed when the
 * consumer stops early.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readAhead } from '../src/base/read-ahead.js';

const tick = () => new Promise((r) => setImmediate(r));

/** A source that logs when each read starts and ends, and whether it was closed. */
function loggedSource(n: number, failAt = -1) {
  const log: string[] = [];
  async function* gen() {
    try {
      for (let i = 0; i < n; i++) {
        log.push(`read ${i}`);
        await tick();
        if (i === failAt) throw new Error(`bad item ${i}`);
        log.push(`got ${i}`);
        yield i;
      }
    } finally {
      log.push('closed');
    }
  }
  return { log, source: gen() };
}

test('readAhead yields the source in order and reads the next item while the consumer works', async () => {
  const { log, source } = loggedSource(4);
  const seen: number[] = [];
  for await (const x of readAhead(source)) {
    log.push(`use ${x} begins`);
    await tick();
    await tick();
    log.push(`use ${x} ends`);
    seen.push(x);
  }
  assert.deepEqual(seen, [0, 1, 2, 3]);
  // item 1 is read during the use of item 0, not after it
  assert.ok(log.indexOf('got 1') < log.indexOf('use 0 ends'), log.join(' | '));
  assert.ok(log.indexOf('read 1') > log.indexOf('got 0'));
  // the source ran to its end (and closed itself) while the last item was in use
  assert.ok(log.indexOf('closed') > log.indexOf('got 3') && log.indexOf('closed') < log.indexOf('use 3 ends'), log.join(' | '));
});

test('readAhead raises a read error when its item is asked for, after the items before it were used', async () => {
  const { log, source } = loggedSource(5, 2);
  const seen: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const x of readAhead(source)) {
        await tick();
        seen.push(x);
      }
    })(),
    /bad item 2/,
  );
  assert.deepEqual(seen, [0, 1]);
  assert.ok(log.includes('closed'));
});

test('readAhead closes the source when the consumer stops early, after the read in flight; an abandoned failing read is no unhandled rejection', async () => {
  const { log, source } = loggedSource(10);
  for await (const x of readAhead(source)) if (x === 1) break;
  assert.deepEqual(log.slice(-2), ['got 2', 'closed']);
  assert.ok(!log.includes('read 3'));

  const failing = loggedSource(10, 1);
  let unhandled = 0;
  const onUnhandled = () => unhandled++;
  process.on('unhandledRejection', onUnhandled);
  for await (const x of readAhead(failing.source)) if (x === 0) break; // item 1's read fails in flight
  await tick();
  await tick();
  process.off('unhandledRejection', onUnhandled);
  assert.equal(unhandled, 0);
  assert.ok(failing.log.includes('closed'));
});
