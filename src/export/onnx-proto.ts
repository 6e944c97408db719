/**
 * The part of the ONNX protobuf schema (onnx.proto, IR version 8) that an exported resflow model
 * uses, as a protobufjs JSON descriptor with onnx.proto's own message names, field names and
 * field numbers. protobufjs does the wire encoding (docs/serving.md, "The ONNX graph").
 */
import protobuf from 'protobufjs';

const int64 = (id: number, rule?: 'repeated') => ({ type: 'int64', id, ...(rule ? { rule } : {}) });
const str = (id: number, rule?: 'repeated') => ({ type: 'string', id, ...(rule ? { rule } : {}) });

export const ONNX_DESCRIPTOR = {
  nested: {
    onnx: {
      nested: {
        AttributeProto: {
          fields: {
            name: str(1),
            type: { type: 'AttributeType', id: 20 },
            f: { type: 'float', id: 2 },
            i: int64(3),
            s: { type: 'bytes', id: 4 },
            t: { type: 'TensorProto', id: 5 },
            floats: { type: 'float', id: 7, rule: 'repeated' },
            ints: int64(8, 'repeated'),
          },
          nested: { AttributeType: { values: { UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } } },
        },
        ValueInfoProto: { fields: { name: str(1), type: { type: 'TypeProto', id: 2 }, doc_string: str(3) } },
        NodeProto: {
          fields: {
            input: str(1, 'repeated'),
            output: str(2, 'repeated'),
            name: str(3),
            op_type: str(4),
            domain: str(7),
            attribute: { type: 'AttributeProto', id: 5, rule: 'repeated' },
            doc_string: str(6),
          },
        },
        ModelProto: {
          fields: {
            ir_version: int64(1),
            opset_import: { type: 'OperatorSetIdProto', id: 8, rule: 'repeated' },
            producer_name: str(2),
            producer_version: str(3),
            domain: str(4),
            model_version: int64(5),
            doc_string: str(6),
            graph: { type: 'GraphProto', id: 7 },
            metadata_props: { type: 'StringStringEntryProto', id: 14, rule: 'repeated' },
          },
        },
        StringStringEntryProto: { fields: { key: str(1), value: str(2) } },
        GraphProto: {
          fields: {
            node: { type: 'NodeProto', id: 1, rule: 'repeated' },
            name: str(2),
            initializer: { type: 'TensorProto', id: 5, rule: 'repeated' },
            doc_string: str(10),
            input: { type: 'ValueInfoProto', id: 11, rule: 'repeated' },
            output: { type: 'ValueInfoProto', id: 12, rule: 'repeated' },
            value_info: { type: 'ValueInfoProto', id: 13, rule: 'repeated' },
          },
        },
        TensorProto: {
          fields: {
            dims: int64(1, 'repeated'),
            data_type: { type: 'int32', id: 2 },
            float_data: { type: 'float', id: 4, rule: 'repeated' },
            int64_data: int64(7, 'repeated'),
            name: str(8),
            doc_string: str(12),
            raw_data: { type: 'bytes', id: 9 },
          },
          nested: { DataType: { values: { UNDEFINED: 0, FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, DOUBLE: 11 } } },
        },
        TensorShapeProto: {
          fields: { dim: { type: 'Dimension', id: 1, rule: 'repeated' } },
          nested: { Dimension: { oneofs: { value: { oneof: ['dim_value', 'dim_param'] } }, fields: { dim_value: int64(1), dim_param: str(2), denotation: str(3) } } },
        },
        TypeProto: {
          oneofs: { value: { oneof: ['tensor_type'] } },
          fields: { tensor_type: { type: 'Tensor', id: 1 }, denotation: str(6) },
          nested: { Tensor: { fields: { elem_type: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } } } },
        },
        OperatorSetIdProto: { fields: { domain: str(1), version: int64(2) } },
      },
    },
  },
};

let root: protobuf.Root | undefined;

/** The message types, parsed once. */
export function onnxTypes(): { model: protobuf.Type } {
  root ??= protobuf.Root.fromJSON(ONNX_DESCRIPTOR);
  return { model: root.lookupType('onnx.ModelProto') };
}

/** Encodes a ModelProto given as a plain object with onnx.proto's field names. */
export function encodeModel(model: Record<string, unknown>): Uint8Array {
  const type = onnxTypes().model;
  const problem = type.verify(model);
  if (problem) throw new Error(`ONNX model does not match onnx.proto: ${problem}`);
  return type.encode(type.fromObject(model)).finish();
}

/** Decodes a model (tests and `features.json` checks read back what was written). */
export function decodeModel(bytes: Uint8Array): Record<string, unknown> {
  const type = onnxTypes().model;
  return type.toObject(type.decode(bytes), { longs: Number, bytes: Array, defaults: false }) as Record<string, unknown>;
}
