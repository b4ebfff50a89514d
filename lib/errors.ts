// Error construction shared by every module. Argument errors use one template, as sharp does:
//   Expected <what> for <param> but received <value> of type <type>
// TypeError when the value has the wrong type, RangeError when it has the right type but an
// unacceptable value; state errors (disposed objects, missing backends) are plain Errors.

/** Longest string rendered before it is cut with "...". */
const MAX_STRING = 40;
/** Array elements / object keys rendered before the rest is summarised. */
const MAX_ITEMS = 4;
/** Nesting depth rendered before containers collapse to "[...]" / "{...}". */
const MAX_DEPTH = 2;

/**
 * The type name used in argument errors: `typeof`, refined so that messages are useful
 * (`null`, `array`, and the class name of typed arrays, Buffers and other class instances).
 */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') {
    const name = constructorName(value);
    return name === undefined || name === 'Object' ? 'object' : name;
  }
  return typeof value;
}

/**
 * Renders a value compactly for an error message: strings quoted (and cut), arrays and objects
 * abbreviated after a few items, typed arrays as `Float32Array(65536)`.
 */
export function describeValue(value: unknown, depth = 0): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}...` : value);
    case 'bigint':
      return `${value}n`;
    case 'symbol':
      return value.toString();
    case 'function':
      return value.name ? `[Function ${value.name}]` : '[Function]';
    case 'object':
      return value === null ? 'null' : describeObject(value, depth);
    default:
      // number, boolean, undefined
      return String(value);
  }
}

function describeObject(value: object, depth: number): string {
  if (ArrayBuffer.isView(value)) {
    const length = 'length' in value && typeof value.length === 'number' ? value.length : value.byteLength;
    return `${constructorName(value) ?? 'ArrayBufferView'}(${length})`;
  }
  if (value instanceof ArrayBuffer) return `ArrayBuffer(${value.byteLength})`;
  if (Array.isArray(value)) {
    if (depth >= MAX_DEPTH) return value.length === 0 ? '[]' : '[...]';
    const items = value.slice(0, MAX_ITEMS).map((item: unknown) => describeValue(item, depth + 1));
    if (value.length > MAX_ITEMS) items.push(`... ${value.length - MAX_ITEMS} more`);
    return `[${items.join(', ')}]`;
  }
  const name = constructorName(value);
  if (name !== undefined && name !== 'Object') return name;
  const keys = Object.keys(value);
  if (depth >= MAX_DEPTH) return keys.length === 0 ? '{}' : '{...}';
  const record = value as Record<string, unknown>;
  const entries = keys.slice(0, MAX_ITEMS).map((key) => `${key}: ${describeValue(record[key], depth + 1)}`);
  if (keys.length > MAX_ITEMS) entries.push(`... ${keys.length - MAX_ITEMS} more`);
  return `{${entries.join(', ')}}`;
}

function constructorName(value: object): string | undefined {
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === null) return undefined;
  const ctor: unknown = (proto as { constructor?: unknown }).constructor;
  return typeof ctor === 'function' && ctor.name !== '' ? ctor.name : undefined;
}

/** The shared message: `Expected <what> for <param> but received <value> of type <type>`. */
export function argumentMessage(what: string, param: string, value: unknown): string {
  return `Expected ${what} for ${param} but received ${describeValue(value)} of type ${typeName(value)}`;
}

/** A TypeError for a value of the wrong type. */
export function invalidType(what: string, param: string, value: unknown): TypeError {
  return new TypeError(argumentMessage(what, param, value));
}

/** A RangeError for a value of the right type but outside what is accepted. */
export function invalidRange(what: string, param: string, value: unknown): RangeError {
  return new RangeError(argumentMessage(what, param, value));
}

/**
 * Gives an error from the native addon the stack of the JS call that caused it (native errors
 * carry no useful JS stack once they settle a promise asynchronously). `context` must be created
 * synchronously in the public method, before its first `await`.
 */
export function withCallerStack(error: unknown, context: Error): unknown {
  if (error instanceof Error && context.stack !== undefined) {
    const header = `${error.name}: ${error.message}`;
    const frames = context.stack.split('\n').slice(1).join('\n');
    error.stack = frames === '' ? header : `${header}\n${frames}`;
  }
  return error;
}

/**
 * The rejection of a call cancelled through its `signal` option. Its `name` is `'AbortError'`
 * (as for `fetch` and Node's own APIs) whatever the abort reason; the reason is its `cause`.
 */
export class AbortError extends Error {
  override readonly name = 'AbortError';
  readonly code = 'ABORT_ERR';

  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The AbortError for an aborted signal, with the signal's reason as its cause. */
export function abortError(signal: AbortSignal): AbortError {
  return new AbortError('The operation was aborted', { cause: signal.reason });
}

/** The library's abort handlers by signal, under one listener per signal (see onAbort). */
const abortHandlers = new Map<AbortSignal, { handlers: Set<() => void>; listener: () => void }>();

/**
 * Calls `handler` once when `signal` aborts; returns the function that takes it back. The
 * library's calls add one listener to a signal between them, whatever their number, and remove
 * it with the last handler: a listener each made Node warn (MaxListenersExceededWarning) for a
 * signal shared by more than 10 calls, and a long-lived signal keeps none once they settle.
 */
export function onAbort(signal: AbortSignal, handler: () => void): () => void {
  let entry = abortHandlers.get(signal);
  if (entry === undefined) {
    const handlers = new Set<() => void>();
    const listener = (): void => {
      abortHandlers.delete(signal);
      for (const h of handlers) h();
    };
    entry = { handlers, listener };
    abortHandlers.set(signal, entry);
    signal.addEventListener('abort', listener, { once: true });
  }
  const { handlers, listener } = entry;
  handlers.add(handler);
  return () => {
    if (!handlers.delete(handler) || handlers.size > 0 || abortHandlers.get(signal)?.handlers !== handlers) return;
    abortHandlers.delete(signal);
    signal.removeEventListener('abort', listener);
  };
}

/**
 * Settles with `promise`, or rejects with an AbortError as soon as `signal` fires (an abort
 * that happened before the call is not seen: check `signal.aborted` first where it matters).
 */
export function untilAborted<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const off = onAbort(signal, () => reject(abortError(signal)));
    promise.then(
      (value) => {
        off();
        resolve(value);
      },
      (error: unknown) => {
        off();
        reject(error);
      },
    );
  });
}
