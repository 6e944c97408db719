/** Column buffers for one batch of synthetic rows, handed to the table writer as a ColumnBatch. */
import type { ColumnBatch } from './table-schema.js';

export interface BatchArrays {
  request_id: Float64Array;
  user_id: Float64Array;
  query_id: Float64Array;
  item_id: Float64Array;
  user_segment: Int32Array;
  query_category: Int32Array;
  item_category: Int32Array;
  item_brand: Int32Array;
  item_price: Float32Array;
  item_hist_ctr: Float32Array;
  recentOffsets: Int32Array;
  recentValues: number[];
  stage: string[];
  position: Int32Array;
  click: Int8Array;
  purchase: Int8Array;
  all_click: Int8Array;
  all_purchase: Int8Array;
  teacher_ctr: Float32Array;
  teacher_ctcvr: Float32Array;
  p_click: Float32Array;
  p_purchase: Float32Array;
  p_all_click: Float32Array;
  p_all_purchase: Float32Array;
  relevance_ctr: Float32Array;
  relevance_cvr: Float32Array;
}

export function allocBatch(n: number): BatchArrays {
  return {
    request_id: new Float64Array(n),
    user_id: new Float64Array(n),
    query_id: new Float64Array(n),
    item_id: new Float64Array(n),
    user_segment: new Int32Array(n),
    query_category: new Int32Array(n),
    item_category: new Int32Array(n),
    item_brand: new Int32Array(n),
    item_price: new Float32Array(n),
    item_hist_ctr: new Float32Array(n),
    recentOffsets: new Int32Array(n + 1),
    recentValues: [],
    stage: new Array<string>(n),
    position: new Int32Array(n),
    click: new Int8Array(n),
    purchase: new Int8Array(n),
    all_click: new Int8Array(n),
    all_purchase: new Int8Array(n),
    teacher_ctr: new Float32Array(n),
    teacher_ctcvr: new Float32Array(n),
    p_click: new Float32Array(n),
    p_purchase: new Float32Array(n),
    p_all_click: new Float32Array(n),
    p_all_purchase: new Float32Array(n),
    relevance_ctr: new Float32Array(n),
    relevance_cvr: new Float32Array(n),
  };
}

export function toColumnBatch(b: BatchArrays, n: number): ColumnBatch {
  const { recentOffsets, recentValues, ...rest } = b;
  const columns: ColumnBatch['columns'] = {};
  for (const [name, v] of Object.entries(rest)) columns[name] = v as ColumnBatch['columns'][string];
  columns.user_recent_categories = { offsets: recentOffsets, values: Int32Array.from(recentValues) };
  return { length: n, columns };
}
