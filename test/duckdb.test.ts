import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError } from '../src/base/errors.js';
import { firstLine, openDuckDB, sharedConnection, sqlIdent, sqlString, withDuckDB } from '../src/data/duckdb.js';

test('sqlString and sqlIdent quote what DuckDB reads back verbatim', async () => {
  assert.equal(sqlString("it's"), "'it''s'");
  assert.equal(sqlIdent('my "col"'), '"my ""col"""');
  const got = await withDuckDB(async (con) => {
    const r = await con.runAndReadAll(`SELECT ${sqlString("a'b\"c")} AS ${sqlIdent('we"ird name')}`);
    return { value: String(r.getRows()[0]![0]), name: r.columnNames()[0] };
  });
  assert.deepEqual(got, { value: 'a\'b"c', name: 'we"ird name' });
});

test('withDuckDB returns what fn returns and closes after a failure too', async () => {
  assert.equal(await withDuckDB(async (con) => Number((await con.runAndReadAll('SELECT 41 + 1')).getRows()[0]![0])), 42);
  await assert.rejects(withDuckDB(async (con) => con.run('SELECT * FROM no_such_table')), /no_such_table/);
});

test('openDuckDB: a database that cannot be opened is a DataError naming it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'resflow-duckdb-test-'));
  try {
    const bad = join(dir, 'not-a-db.duckdb');
    writeFileSync(bad, 'this is not a DuckDB file');
    await assert.rejects(openDuckDB({ path: bad }), (err: unknown) => err instanceof DataError && err.message.includes(bad));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sharedConnection: connections to one instance; firstLine keeps the first line', async () => {
  const a = await sharedConnection();
  const b = await sharedConnection();
  try {
    assert.equal(String((await a.runAndReadAll("SELECT current_setting('threads')")).getRows()[0]![0]), '2');
    assert.equal(Number((await b.runAndReadAll('SELECT 1')).getRows()[0]![0]), 1);
  } finally {
    a.closeSync();
    b.closeSync();
  }
  assert.equal(firstLine(new Error('one\ntwo')), 'one');
  assert.equal(firstLine('plain'), 'plain');
});
