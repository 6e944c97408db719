/**
 * TensorBoard event files (src/runs/README.md, `tb/`): the record framing, the masked CRC32C that
 * guards it, and the few Event / Summary / HParams messages training writes, encoded with protobufjs
 * from the descriptor below (field numbers as in TensorFlow's event.proto and summary.proto and
 * TensorBoard's hparams plugin_data.proto and api.proto).
 *
 * A file is a sequence of records: u64 length (little-endian), u32 masked CRC32C of those 8 bytes,
 * the data, u32 masked CRC32C of the data. The first event holds `file_version: "brain.Event:2"`.
 * Unlike the run's other files an event file is a log: events are appended as they happen (a crash
 * loses at most the event being written; TensorBoard skips a torn last record).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import protobuf from 'protobufjs';
import { writeFailure } from './atomic.js';

// ---- CRC32C (Castagnoli, reflected polynomial 0x82F63B78) ----------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32C of `bytes`. */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The masked CRC the record framing stores: rotate right by 15, add 0xa282ead8 (mod 2^32). */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

/** One record: length, masked CRC of the length, data, masked CRC of the data. */
export function frameRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(data.length + 16);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

// ---- messages ------------------------------------------------------------------------------------

const root = protobuf.Root.fromJSON({
  nested: {
    tensorflow: {
      nested: {
        Event: {
          fields: {
            wall_time: { type: 'double', id: 1 },
            step: { type: 'int64', id: 2 },
            file_version: { type: 'string', id: 3 },
            summary: { type: 'Summary', id: 5 },
          },
        },
        Summary: {
          fields: { value: { rule: 'repeated', type: 'Value', id: 1 } },
          nested: {
            Value: {
              fields: {
                tag: { type: 'string', id: 1 },
                simple_value: { type: 'float', id: 2 },
                tensor: { type: 'TensorProto', id: 8 },
                metadata: { type: 'SummaryMetadata', id: 9 },
              },
            },
          },
        },
        SummaryMetadata: {
          fields: { plugin_data: { type: 'PluginData', id: 1 } },
          nested: { PluginData: { fields: { plugin_name: { type: 'string', id: 1 }, content: { type: 'bytes', id: 2 } } } },
        },
        TensorProto: {
          fields: { dtype: { type: 'int32', id: 1 }, tensor_shape: { type: 'TensorShapeProto', id: 2 } },
        },
        TensorShapeProto: {
          fields: { dim: { rule: 'repeated', type: 'Dim', id: 2 } },
          nested: { Dim: { fields: { size: { type: 'int64', id: 1 } } } },
        },
      },
    },
    tensorboard: {
      nested: {
        hparams: {
          nested: {
            HParamsPluginData: {
              oneofs: { data: { oneof: ['session_start_info', 'session_end_info'] } },
              fields: {
                version: { type: 'int32', id: 1 },
                session_start_info: { type: 'SessionStartInfo', id: 3 },
                session_end_info: { type: 'SessionEndInfo', id: 4 },
              },
            },
            SessionStartInfo: {
              fields: {
                hparams: { keyType: 'string', type: 'google.protobuf.Value', id: 1 } as protobuf.IMapField,
                group_name: { type: 'string', id: 4 },
                start_time_secs: { type: 'double', id: 5 },
              },
            },
            SessionEndInfo: { fields: { status: { type: 'int32', id: 1 }, end_time_secs: { type: 'double', id: 2 } } },
          },
        },
      },
    },
    google: {
      nested: {
        protobuf: {
          nested: {
            Value: {
              oneofs: { kind: { oneof: ['number_value', 'string_value', 'bool_value'] } },
              fields: { number_value: { type: 'double', id: 2 }, string_value: { type: 'string', id: 3 }, bool_value: { type: 'bool', id: 4 } },
            },
          },
        },
      },
    },
  },
});
const Event = root.lookupType('tensorflow.Event');
const HParamsPluginData = root.lookupType('tensorboard.hparams.HParamsPluginData');

/** api.proto's Status. */
export const SESSION_STATUS = { success: 1, failure: 2, running: 3 } as const;
export type SessionStatus = keyof typeof SESSION_STATUS;
/** Tags the hparams plugin reads (its metadata module); its plugin data is version 0. */
export const HPARAMS_TAGS = { start: '_hparams_/session_start_info', end: '_hparams_/session_end_info' } as const;
const DT_FLOAT = 1;

export type HParamValue = number | string | boolean;

/** Appends events to one event file in a run's tb/ folder. */
export class EventWriter {
  readonly file: string;
  private fd: number | null;

  /** Creates `dir` and a new event file in it (TensorBoard reads every `*tfevents*` file of a folder). */
  constructor(dir: string) {
    const secs = Math.floor(Date.now() / 1000);
    this.file = path.join(dir, `events.out.tfevents.${secs}.${hostname()}.${process.pid}`);
    try {
      mkdirSync(dir, { recursive: true });
      this.fd = openSync(this.file, 'a');
    } catch (err) {
      throw writeFailure(this.file, err);
    }
    this.event({ file_version: 'brain.Event:2' }, 0);
  }

  /** Scalars at one step, as the scalars plugin reads them (simple_value). */
  scalars(step: number, values: Record<string, number>): void {
    const value = Object.entries(values)
      .filter(([, v]) => Number.isFinite(v))
      .map(([tag, v]) => ({ tag, simple_value: v }));
    if (value.length) this.event({ summary: { value } }, step);
  }

  /** The session's hyperparameters (HParams view: one session per run folder). */
  sessionStart(hparams: Record<string, HParamValue>, startSecs: number): void {
    const values = Object.fromEntries(
      Object.entries(hparams).map(([k, v]) => [k, typeof v === 'number' ? { number_value: v } : typeof v === 'boolean' ? { bool_value: v } : { string_value: v }]),
    );
    this.hparams(HPARAMS_TAGS.start, { session_start_info: { hparams: values, start_time_secs: startSecs } });
  }

  sessionEnd(status: SessionStatus, endSecs: number): void {
    this.hparams(HPARAMS_TAGS.end, { session_end_info: { status: SESSION_STATUS[status], end_time_secs: endSecs } });
  }

  private hparams(tag: string, data: Record<string, unknown>): void {
    const content = HParamsPluginData.encode(HParamsPluginData.fromObject({ version: 0, ...data })).finish();
    // the plugin's summaries carry an empty float tensor beside their metadata
    const tensor = { dtype: DT_FLOAT, tensor_shape: { dim: [{ size: 0 }] } };
    this.event({ summary: { value: [{ tag, metadata: { plugin_data: { plugin_name: 'hparams', content } }, tensor }] } }, 0);
  }

  private event(fields: Record<string, unknown>, step: number): void {
    if (this.fd === null) return;
    const data = Event.encode(Event.fromObject({ wall_time: Date.now() / 1000, step, ...fields })).finish();
    const record = frameRecord(data);
    try {
      for (let at = 0; at < record.length; ) at += writeSync(this.fd, record, at, record.length - at);
    } catch (err) {
      throw writeFailure(this.file, err);
    }
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}
