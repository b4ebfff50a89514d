// Response bodies with parts made as JSON text off the JS thread (a mask's polygons: tens of MB
// for a noisy 12 MP mask), spliced into the rest of the body, which JSON.stringify makes.
import { isPlainObject } from '../validate.js';

/** JSON text made elsewhere (UTF-8), inserted as it is by `jsonBody`. */
export class RawJson {
  constructor(readonly bytes: Uint8Array) {}
}

/**
 * The UTF-8 JSON of `value` as JSON.stringify writes it (plain objects, arrays and JSON values;
 * members that are undefined, functions or symbols are left out, as JSON.stringify does), with each `RawJson` in it
 * inserted as its text. Only the containers on the way to a `RawJson` are walked here; everything
 * else is JSON.stringify's.
 */
export function jsonBody(value: unknown): Buffer {
  const parts: Uint8Array[] = [];
  let text = '';
  const flush = () => {
    if (text !== '') parts.push(Buffer.from(text));
    text = '';
  };
  const write = (v: unknown): void => {
    if (v instanceof RawJson) {
      flush();
      parts.push(v.bytes);
    } else if (!holdsRaw(v)) {
      text += JSON.stringify(v) ?? 'null';
    } else if (Array.isArray(v)) {
      text += '[';
      v.forEach((item, i) => {
        if (i > 0) text += ',';
        write(omitted(item) ? null : item);
      });
      text += ']';
    } else {
      text += '{';
      let first = true;
      for (const [key, item] of Object.entries(v as Record<string, unknown>)) {
        if (omitted(item)) continue;
        text += `${first ? '' : ','}${JSON.stringify(key)}:`;
        first = false;
        write(item);
      }
      text += '}';
    }
  };
  write(value);
  flush();
  return Buffer.concat(parts);
}

/** Values JSON.stringify leaves out of objects (and writes as null in arrays). */
function omitted(v: unknown): boolean {
  return v === undefined || typeof v === 'function' || typeof v === 'symbol';
}

/** Whether a RawJson lies in `v` (through arrays and plain objects). */
function holdsRaw(v: unknown): boolean {
  if (v instanceof RawJson) return true;
  if (Array.isArray(v)) return v.some(holdsRaw);
  return isPlainObject(v) && Object.values(v).some(holdsRaw);
}
