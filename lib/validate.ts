// Argument validators. Each takes an unknown value and the parameter's name as the user wrote it
// (e.g. `prompt.points[0].x`), and returns the value typed, or throws with the shared template:
// TypeError for a wrong type, RangeError for a wrong value (NaN, ±Infinity, out of range).
import { invalidRange, invalidType } from './errors.js';
import type { BinaryMask, Box, Point, PointLabel, Scribble, Vertex } from './types.js';

/** "between 0 and 640", or ">= 1" when there is no upper bound. */
function rangeText(min: number, max: number): string {
  return max === Infinity ? `>= ${min}` : `between ${min} and ${max}`;
}

/** A number that is not NaN or ±Infinity. */
export function finiteNumber(value: unknown, param: string): number {
  if (typeof value !== 'number') throw invalidType('a finite number', param, value);
  if (!Number.isFinite(value)) throw invalidRange('a finite number', param, value);
  return value;
}

/** A number in [min, max] (NaN is out of every range). */
export function numberInRange(value: unknown, param: string, min: number, max: number): number {
  const what = `a number ${rangeText(min, max)}`;
  if (typeof value !== 'number') throw invalidType(what, param, value);
  if (!(value >= min && value <= max)) throw invalidRange(what, param, value);
  return value;
}

/** An integer in [min, max]; max defaults to no upper bound. */
export function integerInRange(value: unknown, param: string, min: number, max = Infinity): number {
  const what = `an integer ${rangeText(min, max)}`;
  if (typeof value !== 'number') throw invalidType(what, param, value);
  if (!Number.isInteger(value) || value < min || value > max) throw invalidRange(what, param, value);
  return value;
}

/** true or false. */
export function boolean(value: unknown, param: string): boolean {
  if (typeof value !== 'boolean') throw invalidType('a boolean', param, value);
  return value;
}

/** A string with at least one character. */
export function nonEmptyString(value: unknown, param: string): string {
  if (typeof value !== 'string') throw invalidType('a non-empty string', param, value);
  if (value.length === 0) throw invalidRange('a non-empty string', param, value);
  return value;
}

/** A plain object (not null, not an array, not a class instance). */
export function plainObject(value: unknown, param: string, what = 'an object'): Record<string, unknown> {
  if (!isPlainObject(value)) throw invalidType(what, param, value);
  return value;
}

/**
 * Refuses a key of `opts` that is not in `keys` (a misspelt option would otherwise leave its
 * default in place silently), naming it and the keys `fn` takes.
 */
export function knownKeys(opts: Record<string, unknown>, keys: ReadonlySet<string>, fn: string, param = 'options'): void {
  const unknown = Object.keys(opts).find((key) => !keys.has(key));
  if (unknown !== undefined) throw invalidRange(`an option ${fn} takes (${[...keys].join(', ')})`, param, unknown);
}

/** An options object that may be left out: `undefined` reads as `{}`, anything else must be a plain object. */
export function optionalObject(value: unknown, param: string, what = 'an object'): Record<string, unknown> {
  return value === undefined ? {} : plainObject(value, param, what);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** One of a fixed set of strings. A non-string is a TypeError, an unknown string a RangeError. */
export function oneOf<T extends string>(value: unknown, param: string, choices: readonly T[]): T {
  const what = `one of ${choices.map((choice) => `'${choice}'`).join(', ')}`;
  if (typeof value !== 'string') throw invalidType(what, param, value);
  if (!(choices as readonly string[]).includes(value)) throw invalidRange(what, param, value);
  return value as T;
}

/** A point `{ x, y, label }` inside a width × height image (edges included), label 0 or 1. */
export function point(value: unknown, param: string, width: number, height: number): Point {
  const obj = plainObject(value, param, 'an object {x, y, label}');
  const x = numberInRange(obj.x, `${param}.x`, 0, width);
  const y = numberInRange(obj.y, `${param}.y`, 0, height);
  return { x, y, label: pointLabel(obj.label, `${param}.label`) };
}

/** 1 (positive) or 0 (negative). */
export function pointLabel(value: unknown, param: string): PointLabel {
  if (typeof value !== 'number') throw invalidType('0 or 1', param, value);
  if (value !== 0 && value !== 1) throw invalidRange('0 or 1', param, value);
  return value;
}

/** A box `[x0, y0, x1, y1]` inside a width × height image with x0 <= x1 and y0 <= y1. */
export function box(value: unknown, param: string, width: number, height: number): Box {
  const what = 'an array [x0, y0, x1, y1]';
  if (!Array.isArray(value)) throw invalidType(what, param, value);
  if (value.length !== 4) throw invalidRange(what, param, value);
  const limits = [width, height, width, height];
  const [x0, y0, x1, y1] = limits.map((max, i) => numberInRange(value[i], `${param}[${i}]`, 0, max));
  if (x0 > x1 || y0 > y1) throw invalidRange('a box [x0, y0, x1, y1] with x0 <= x1 and y0 <= y1', param, value);
  return [x0, y0, x1, y1];
}

/** A vertex `[x, y]` inside a width × height image (edges included). */
export function vertex(value: unknown, param: string, width: number, height: number): Vertex {
  const what = 'an array [x, y]';
  if (!Array.isArray(value)) throw invalidType(what, param, value);
  if (value.length !== 2) throw invalidRange(what, param, value);
  return [numberInRange(value[0], `${param}[0]`, 0, width), numberInRange(value[1], `${param}[1]`, 0, height)];
}

/**
 * A scribble `{ path, label, dense? }`: a non-empty array of vertices inside the image, label 0
 * or 1, dense a boolean (kept only when true).
 */
export function scribble(value: unknown, param: string, width: number, height: number): Scribble {
  const obj = plainObject(value, param, 'an object {path, label, dense?}');
  const what = 'a non-empty array of vertices [x, y]';
  if (!Array.isArray(obj.path)) throw invalidType(what, `${param}.path`, obj.path);
  if (obj.path.length === 0) throw invalidRange(what, `${param}.path`, obj.path);
  // Array.from, not map: a hole in a sparse path is refused by name like any other non-vertex.
  const path = Array.from(obj.path as unknown[], (v, i) => vertex(v, `${param}.path[${i}]`, width, height));
  const dense = obj.dense === undefined ? false : boolean(obj.dense, `${param}.dense`);
  return { path, label: pointLabel(obj.label, `${param}.label`), ...(dense ? { dense } : {}) };
}

/**
 * A copy of `data` as a plain Uint8Array. (`data.slice()` is no copy when data is a Buffer:
 * Buffer's slice is a view of the same memory.)
 */
export function copyBytes(data: Uint8Array): Uint8Array {
  return new Uint8Array(data);
}

/**
 * The longest typed array the library makes for one image or mask: 2^32 − 1 elements (Node
 * refuses more, with a message that names nothing).
 */
export const MAX_ARRAY_LENGTH = 0xffffffff;

/** The length (e.g. width × height) of an array to be made, checked against MAX_ARRAY_LENGTH; `unit` names its elements. */
export function arrayLength(length: number, param: string, unit = 'values'): number {
  if (length > MAX_ARRAY_LENGTH) throw invalidRange(`at most 2^32 - 1 ${unit}`, param, length);
  return length;
}

/**
 * Raw RGB pixels `{ data, width, height, channels? }`: data a Uint8Array of width × height × 3
 * bytes; `channels`, when `withChannels` or present, must be 3. Returned as given.
 */
export function rgbPixels<T extends { data: Uint8Array; width: number; height: number }>(
  value: unknown,
  param: string,
  withChannels: boolean,
): T {
  const what = `raw RGB pixels {data: Uint8Array of width × height × 3 bytes, width, height${withChannels ? ', channels: 3' : ''}}`;
  const obj = plainObject(value, param, what);
  const width = integerInRange(obj.width, `${param}.width`, 1);
  const height = integerInRange(obj.height, `${param}.height`, 1);
  if ((withChannels || obj.channels !== undefined) && obj.channels !== 3) throw invalidRange('3', `${param}.channels`, obj.channels);
  if (!(obj.data instanceof Uint8Array)) throw invalidType(what, `${param}.data`, obj.data);
  if (obj.data.length !== width * height * 3) {
    throw invalidRange(`a Uint8Array of ${width} × ${height} × 3 = ${width * height * 3} bytes`, `${param}.data`, obj.data);
  }
  return value as T;
}

/** A binary mask `{ data, width, height }` of any size: data a Uint8Array of width × height bytes. */
export function sizedMask(value: unknown, param: string): BinaryMask {
  const obj = plainObject(value, param, 'an object {data, width, height}');
  const w = integerInRange(obj.width, `${param}.width`, 1);
  const h = integerInRange(obj.height, `${param}.height`, 1);
  return { data: maskData(obj.data, `${param}.data`, w, h), width: w, height: h };
}

/** A binary mask `{ data, width, height }` of exactly width × height bytes (the image's size). */
export function binaryMask(value: unknown, param: string, width: number, height: number): BinaryMask {
  const obj = plainObject(value, param, 'an object {data, width, height}');
  maskSize(obj, param, width, height);
  return { data: maskData(obj.data, `${param}.data`, width, height), width, height };
}

/** Checks that a mask's width and height are the image's (errors name `${param}.width` / `.height`). */
export function maskSize(mask: { width?: unknown; height?: unknown }, param: string, width: number, height: number): void {
  imageSide(mask.width, `${param}.width`, width, 'width');
  imageSide(mask.height, `${param}.height`, height, 'height');
}

/** A mask's bytes: a Uint8Array of exactly w × h. */
function maskData(value: unknown, param: string, w: number, h: number): Uint8Array {
  const what = `a Uint8Array of ${w * h} bytes (${w}x${h}, 0 outside the mask)`;
  if (!(value instanceof Uint8Array)) throw invalidType(what, param, value);
  if (value.length !== w * h) throw invalidRange(what, param, value);
  return value;
}

/** A mask's width or height: it must be the image's. */
function imageSide(value: unknown, param: string, side: number, name: string): number {
  const what = `the image's ${name} (${side})`;
  if (typeof value !== 'number') throw invalidType(what, param, value);
  if (value !== side) throw invalidRange(what, param, value);
  return value;
}

/** An AbortSignal (checked by shape, so that signals from other realms are accepted too). */
export function abortSignal(value: unknown, param: string): AbortSignal {
  const candidate = value as Partial<AbortSignal> | null;
  if (
    typeof value !== 'object' ||
    candidate === null ||
    typeof candidate.aborted !== 'boolean' ||
    typeof candidate.addEventListener !== 'function' ||
    typeof candidate.removeEventListener !== 'function'
  ) {
    throw invalidType('an AbortSignal', param, value);
  }
  return value as AbortSignal;
}

/** A Float32Array of exactly `length` finite values; `what` describes it for the message. */
export function float32Array(value: unknown, param: string, length: number, what: string): Float32Array {
  if (!(value instanceof Float32Array)) throw invalidType(what, param, value);
  if (value.length !== length) throw invalidRange(what, param, value);
  for (let i = 0; i < value.length; i++) {
    if (!Number.isFinite(value[i])) throw invalidRange(what, `${param}[${i}]`, value[i]);
  }
  return value;
}

/** An optional array: undefined stays undefined; anything else must be an array. */
export function optionalArray(value: unknown, param: string, what: string): readonly unknown[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw invalidType(what, param, value);
  return value;
}
