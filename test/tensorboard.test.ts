/**
 * TensorBoard logs: CRC32C against its published test vectors, and the event files training writes
 * read back by an independent reader (bitwise CRC, record framing and protobuf wire format decoded
 * by hand here, not through the writer's code or descriptor).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { crc32c, frameRecord, maskedCrc32c } from '../src/runs/tensorboard.js';
import { cli, tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';

/** CRC32C bit by bit (no table), as the specification states it. */
function crcBitwise(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}
const mask = (c: number) => ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) % 2 ** 32;

test('CRC32C: the RFC 3720 (iSCSI) test vectors, and the masked form', () => {
  const vectors: [Uint8Array, number][] = [
    [new Uint8Array(32), 0x8a9136aa],
    [new Uint8Array(32).fill(0xff), 0x62a8ab43],
    [Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
    [Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
  ];
  for (const [bytes, want] of vectors) {
    assert.equal(crc32c(bytes), want);
    assert.equal(crcBitwise(bytes), want);
    assert.equal(maskedCrc32c(bytes), mask(want));
  }
  const rec = frameRecord(Buffer.from('hello'));
  assert.equal(rec.length, 5 + 16);
  assert.equal(rec.readUInt32LE(0), 5);
  assert.equal(rec.readUInt32LE(4), 0);
  assert.equal(rec.readUInt32LE(8), mask(crcBitwise(rec.subarray(0, 8))));
  assert.equal(rec.readUInt32LE(17), mask(crcBitwise(Buffer.from('hello'))));
});

// ---- an independent reader -----------------------------------------------------------------------

type Field = { no: number; wire: number; int?: bigint; bytes?: Buffer; fixed?: Buffer };

function varint(buf: Buffer, at: number): [bigint, number] {
  let v = 0n;
  let shift = 0n;
  for (;;) {
    const b = buf[at++]!;
    v |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) return [v, at];
    shift += 7n;
  }
}

/** Protobuf wire format to a flat list of fields. */
function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let at = 0;
  while (at < buf.length) {
    const [key, a] = varint(buf, at);
    at = a;
    const no = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [v, b] = varint(buf, at);
      out.push({ no, wire, int: v });
      at = b;
    } else if (wire === 2) {
      const [len, b] = varint(buf, at);
      out.push({ no, wire, bytes: buf.subarray(b, b + Number(len)) });
      at = b + Number(len);
    } else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      out.push({ no, wire, fixed: buf.subarray(at, at + n) });
      at += n;
    } else throw new Error(`wire type ${wire}`);
  }
  return out;
}
const one = (fs: Field[], no: number) => fs.find((f) => f.no === no);
const text = (f?: Field) => f?.bytes?.toString('utf8');

interface ReadEvent { step: number; wallTime: number; fileVersion?: string; values: { tag: string; simple?: number; plugin?: string; content?: Buffer }[] }

/** Every record of an event file, CRCs checked, decoded per event.proto / summary.proto field numbers. */
function readEvents(file: string): ReadEvent[] {
  const buf = readFileSync(file);
  const events: ReadEvent[] = [];
  let at = 0;
  while (at < buf.length) {
    const len = Number(buf.readBigUInt64LE(at));
    assert.equal(buf.readUInt32LE(at + 8), mask(crcBitwise(buf.subarray(at, at + 8))), `length CRC at byte ${at}`);
    const data = buf.subarray(at + 12, at + 12 + len);
    assert.equal(buf.readUInt32LE(at + 12 + len), mask(crcBitwise(data)), `data CRC at byte ${at}`);
    at += 16 + len;
    const ev = fields(data);
    const summary = one(ev, 5);
    events.push({
      wallTime: one(ev, 1)!.fixed!.readDoubleLE(0),
      step: Number(one(ev, 2)?.int ?? 0n),
      fileVersion: text(one(ev, 3)),
      values: summary
        ? fields(summary.bytes!).filter((f) => f.no === 1).map((v) => {
            const vf = fields(v.bytes!);
            const meta = one(vf, 9);
            const pluginData = meta ? fields(one(fields(meta.bytes!), 1)!.bytes!) : undefined;
            return { tag: text(one(vf, 1))!, simple: one(vf, 2)?.fixed?.readFloatLE(0), plugin: pluginData && text(one(pluginData, 1)), content: pluginData && one(pluginData, 2)?.bytes };
          })
        : [],
    });
  }
  assert.equal(at, buf.length, 'no torn record');
  return events;
}

/** google.protobuf.Value: number 2, string 3, bool 4. */
function protoValue(buf: Buffer): number | string | boolean {
  const f = fields(buf)[0]!;
  return f.no === 2 ? f.fixed!.readDoubleLE(0) : f.no === 3 ? f.bytes!.toString('utf8') : f.int === 1n;
}

const dir = tempDir();
const cfg = writeFile(dir, 'exp.yaml', tinyConfigYaml());

test('train writes tb/: losses every log_every steps, validation and samples/s per epoch, hparams and final metrics', () => {
  const r = cli(['-q', 'train', cfg, '--runs-dir', dir, '--set', 'train.log_every=20', '--set', 'train.epochs=2']);
  assert.equal(r.code, 0, r.stderr);
  const run = r.stdout.trim().split('\n').pop()!;
  const tb = path.join(run, 'tb');
  const files = readdirSync(tb);
  assert.equal(files.length, 1);
  assert.match(files[0]!, /^events\.out\.tfevents\.\d+\./);
  const events = readEvents(path.join(tb, files[0]!));
  assert.equal(events[0]!.fileVersion, 'brain.Event:2');
  for (const e of events) assert.ok(Math.abs(e.wallTime - Date.now() / 1000) < 600, 'wall time is now');
  const scalars = (tag: string) => events.flatMap((e) => e.values.filter((v) => v.tag === tag && v.simple !== undefined).map((v) => ({ step: e.step, value: v.simple! })));

  // per-task losses at steps 20, 40, ... up to the last step of training
  const history = readFileSync(path.join(run, 'history.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
  const col = (n: string) => history[0]!.indexOf(n);
  const totalSteps = Number(history.at(-1)![col('steps')]); // cumulative
  for (const tag of ['train/loss', 'train/loss_ctr', 'train/loss_ctcvr', 'train/samples_per_second']) {
    const got = scalars(tag);
    assert.deepEqual(got.map((g) => g.step), Array.from({ length: Math.floor(totalSteps / 20) }, (_, i) => 20 * (i + 1)), tag);
    for (const g of got) assert.ok(Number.isFinite(g.value) && g.value > 0, `${tag} ${g.value}`);
  }
  // validation per epoch, equal (as float32) to history.csv's columns
  const auc = scalars('validation/ctr/auc');
  assert.equal(auc.length, 2);
  history.slice(1).forEach((row, i) => assert.equal(auc[i]!.value, Math.fround(Number(row[col('val_ctr_auc')]))));
  assert.equal(scalars('epoch/samples_per_second').length, 2);
  assert.deepEqual(scalars('epoch/epoch').map((s) => s.value), [1, 2]);
  // final metrics of the eval split, equal to metrics.json
  const metrics = JSON.parse(readFileSync(path.join(run, 'metrics.json'), 'utf8')) as { name: string; task: string; split: string; value: number | null }[];
  const finalAuc = metrics.find((m) => m.split === 'eval' && m.name === 'auc' && m.task === 'ctcvr')!.value!;
  assert.deepEqual(scalars('eval/ctcvr/auc'), [{ step: totalSteps, value: Math.fround(finalAuc) }]);

  // HParams: session_start_info (HParamsPluginData field 3) with the run's hyperparameters, then session_end_info (4) with STATUS_SUCCESS (1)
  const hp = events.flatMap((e) => e.values.filter((v) => v.plugin === 'hparams'));
  assert.deepEqual(hp.map((v) => v.tag), ['_hparams_/session_start_info', '_hparams_/session_end_info']);
  const start = fields(hp[0]!.content!);
  assert.equal(one(start, 1)?.int ?? 0n, 0n, 'plugin data version 0');
  const hparams = new Map(fields(one(start, 3)!.bytes!).filter((f) => f.no === 1).map((entry) => {
    const kv = fields(entry.bytes!);
    return [text(one(kv, 1))!, protoValue(one(kv, 2)!.bytes!)] as const;
  }));
  assert.equal(hparams.get('model.type'), 'resflow');
  assert.equal(hparams.get('model.embedding_dim'), 8);
  assert.equal(hparams.get('train.log_every'), 20);
  assert.equal(hparams.get('train.optimizer.lr'), 0.001);
  assert.equal(hparams.get('runtime.seed'), 42);
  const end = fields(one(fields(hp[1]!.content!), 4)!.bytes!);
  assert.equal(one(end, 1)!.int, 1n);
});

test('--no-tensorboard and runtime.tensorboard: false write no tb/', () => {
  const a = cli(['-q', 'train', cfg, '--runs-dir', dir, '--no-tensorboard']);
  assert.equal(a.code, 0, a.stderr);
  assert.ok(!existsSync(path.join(a.stdout.trim().split('\n').pop()!, 'tb')));
  const b = cli(['-q', 'train', cfg, '--runs-dir', dir, '--set', 'runtime.tensorboard=false']);
  assert.equal(b.code, 0, b.stderr);
  const run = b.stdout.trim().split('\n').pop()!;
  assert.ok(!existsSync(path.join(run, 'tb')));
  assert.match(readFileSync(path.join(run, 'config.yaml'), 'utf8'), /tensorboard: false/);
});
