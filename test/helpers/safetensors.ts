// A safetensors file taken apart for tests that write malformed checkpoints on purpose.
export type SafetensorsHeader = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;

export interface ParsedSafetensors {
  bytes: Buffer;
  /** The tensor entries (without __metadata__). */
  header: SafetensorsHeader;
  /** Offset of the data section in `bytes`. */
  dataStart: number;
}

export function parseSafetensors(bytes: Buffer): ParsedSafetensors {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as SafetensorsHeader;
  delete (header as Record<string, unknown>).__metadata__;
  return { bytes, header, dataStart: 8 + n };
}

/**
 * Re-serialises the file's tensors with `edit` applied to a copy of the header entries: deleted
 * entries are dropped, others keep their data and are re-packed in order (offsets recomputed).
 */
export function rewriteSafetensors(file: ParsedSafetensors, edit: (h: SafetensorsHeader) => void): Buffer {
  const { bytes, header, dataStart } = file;
  const h = structuredClone(header);
  edit(h);
  const chunks: Buffer[] = [];
  const out: Record<string, unknown> = {};
  let offset = 0;
  for (const [k, v] of Object.entries(h).sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0])) {
    const [b, e] = header[k]?.data_offsets ?? v.data_offsets;
    const data = bytes.subarray(dataStart + b, dataStart + e);
    out[k] = { ...v, data_offsets: [offset, offset + data.length] };
    chunks.push(data);
    offset += data.length;
  }
  let json = JSON.stringify(out);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, Buffer.from(json), ...chunks]);
}
