// Reads a safetensors body (8-byte little-endian header length, JSON header, raw
// little-endian tensors): enough to show the per-sample parameters /v1/augment returns.

const ARRAYS = {
  F64: Float64Array, F32: Float32Array, I64: BigInt64Array, I32: Int32Array,
  I16: Int16Array, I8: Int8Array, U8: Uint8Array, BOOL: Uint8Array,
};

export function readSafetensors(buffer, wanted = () => true) {
  const view = new DataView(buffer);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, headerLength)));
  const start = 8 + headerLength;
  const tensors = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__" || !wanted(name)) continue;
    const Kind = ARRAYS[info.dtype];
    if (!Kind) continue;
    const [begin, end] = info.data_offsets;
    const bytes = buffer.slice(start + begin, start + end);  // aligned copy
    const values = Array.from(new Kind(bytes), (v) => (typeof v === "bigint" ? Number(v) : v));
    tensors[name] = { shape: info.shape, values: info.dtype === "BOOL" ? values.map(Boolean) : values };
  }
  return { metadata: header.__metadata__ || {}, tensors };
}

// One sample's values of a (N, ...) tensor, as a number, a flat list or nested rows.
export function sampleValue(tensor, index) {
  const [n, ...rest] = tensor.shape;
  const per = rest.reduce((a, b) => a * b, 1);
  if (index >= n) return undefined;
  const flat = tensor.values.slice(index * per, (index + 1) * per);
  if (rest.length === 0) return flat[0];
  if (rest.length === 1) return flat;
  const rows = [];
  for (let i = 0; i < flat.length; i += rest[rest.length - 1]) rows.push(flat.slice(i, i + rest[rest.length - 1]));
  return rows;
}
