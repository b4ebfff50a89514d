import { describe, expect, it } from 'vitest';
import { argumentMessage, describeValue, typeName, withCallerStack } from '../lib/errors.js';
import {
  boolean,
  box,
  finiteNumber,
  float32Array,
  integerInRange,
  nonEmptyString,
  numberInRange,
  oneOf,
  plainObject,
  point,
} from '../lib/validate.js';

describe('describeValue', () => {
  it('quotes strings and cuts long ones', () => {
    expect(describeValue('cpu')).toBe('"cpu"');
    expect(describeValue('a"b')).toBe('"a\\"b"');
    expect(describeValue('x'.repeat(50))).toBe(`"${'x'.repeat(40)}..."`);
  });

  it('renders primitives as JavaScript would', () => {
    expect(describeValue(3)).toBe('3');
    expect(describeValue(NaN)).toBe('NaN');
    expect(describeValue(-Infinity)).toBe('-Infinity');
    expect(describeValue(true)).toBe('true');
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue(null)).toBe('null');
    expect(describeValue(10n)).toBe('10n');
    expect(describeValue(Symbol('s'))).toBe('Symbol(s)');
    expect(describeValue(function named() {})).toBe('[Function named]');
  });

  it('abbreviates arrays after 4 items and nesting after 2 levels', () => {
    expect(describeValue([1, 2, 3])).toBe('[1, 2, 3]');
    expect(describeValue([1, 2, 3, 4, 5, 6, 7])).toBe('[1, 2, 3, 4, ... 3 more]');
    expect(describeValue([[1, [2, 3]], []])).toBe('[[1, [...]], []]');
  });

  it('renders typed arrays and buffers by class and length', () => {
    expect(describeValue(new Float32Array(65536))).toBe('Float32Array(65536)');
    expect(describeValue(Buffer.alloc(3))).toBe('Buffer(3)');
    expect(describeValue(new ArrayBuffer(8))).toBe('ArrayBuffer(8)');
  });

  it('renders plain objects compactly and class instances by name', () => {
    expect(describeValue({ x: 1, y: 'a', label: 2 })).toBe('{x: 1, y: "a", label: 2}');
    expect(describeValue({ a: 1, b: 2, c: 3, d: 4, e: 5 })).toBe('{a: 1, b: 2, c: 3, d: 4, ... 1 more}');
    expect(describeValue({ data: new Uint8Array(6), width: 2 })).toBe('{data: Uint8Array(6), width: 2}');
    expect(describeValue(new Map())).toBe('Map');
  });
});

describe('typeName', () => {
  it('refines typeof', () => {
    expect(typeName(null)).toBe('null');
    expect(typeName([])).toBe('array');
    expect(typeName({})).toBe('object');
    expect(typeName(Object.create(null))).toBe('object');
    expect(typeName(new Float32Array(1))).toBe('Float32Array');
    expect(typeName('s')).toBe('string');
    expect(typeName(undefined)).toBe('undefined');
  });
});

describe('argumentMessage', () => {
  it('follows the one template', () => {
    expect(argumentMessage('a boolean', 'multimask', 'yes')).toBe(
      'Expected a boolean for multimask but received "yes" of type string',
    );
  });
});

describe('finiteNumber', () => {
  it('accepts finite numbers', () => {
    expect(finiteNumber(-2.5, 'threshold')).toBe(-2.5);
  });

  it('TypeError for a non-number, RangeError for NaN and Infinity', () => {
    expect(() => finiteNumber('0', 'threshold')).toThrow(
      new TypeError('Expected a finite number for threshold but received "0" of type string'),
    );
    expect(() => finiteNumber(NaN, 'threshold')).toThrow(
      new RangeError('Expected a finite number for threshold but received NaN of type number'),
    );
    expect(() => finiteNumber(Infinity, 'threshold')).toThrow(
      new RangeError('Expected a finite number for threshold but received Infinity of type number'),
    );
  });
});

describe('integerInRange / numberInRange', () => {
  it('accepts values in range', () => {
    expect(integerInRange(4, 'threads', 1)).toBe(4);
    expect(numberInRange(0, 'x', 0, 10)).toBe(0);
    expect(numberInRange(10, 'x', 0, 10)).toBe(10);
  });

  it('threads < 1 is a RangeError', () => {
    expect(() => integerInRange(0, 'threads', 1)).toThrow(
      new RangeError('Expected an integer >= 1 for threads but received 0 of type number'),
    );
  });

  it('fractions and out-of-range values are RangeErrors, strings TypeErrors', () => {
    expect(() => integerInRange(2.5, 'runs', 1, 100)).toThrow(
      new RangeError('Expected an integer between 1 and 100 for runs but received 2.5 of type number'),
    );
    expect(() => integerInRange(101, 'runs', 1, 100)).toThrow(RangeError);
    expect(() => integerInRange('4', 'threads', 1)).toThrow(
      new TypeError('Expected an integer >= 1 for threads but received "4" of type string'),
    );
    expect(() => numberInRange(NaN, 'x', 0, 10)).toThrow(
      new RangeError('Expected a number between 0 and 10 for x but received NaN of type number'),
    );
  });
});

describe('boolean / nonEmptyString / plainObject / oneOf', () => {
  it('boolean', () => {
    expect(boolean(false, 'multimask')).toBe(false);
    expect(() => boolean(1, 'multimask')).toThrow(
      new TypeError('Expected a boolean for multimask but received 1 of type number'),
    );
  });

  it('nonEmptyString', () => {
    expect(nonEmptyString('dir', 'model')).toBe('dir');
    expect(() => nonEmptyString(undefined, 'model')).toThrow(
      new TypeError('Expected a non-empty string for model but received undefined of type undefined'),
    );
    expect(() => nonEmptyString('', 'model')).toThrow(
      new RangeError('Expected a non-empty string for model but received "" of type string'),
    );
  });

  it('plainObject', () => {
    expect(plainObject({ a: 1 }, 'options')).toEqual({ a: 1 });
    expect(() => plainObject([1], 'options')).toThrow(
      new TypeError('Expected an object for options but received [1] of type array'),
    );
    expect(() => plainObject(null, 'options')).toThrow(
      new TypeError('Expected an object for options but received null of type null'),
    );
  });

  it('oneOf: unknown string → RangeError, non-string → TypeError', () => {
    const devices = ['cpu', 'cuda', 'auto'] as const;
    expect(oneOf('cpu', 'device', devices)).toBe('cpu');
    expect(() => oneOf('gpu', 'device', devices)).toThrow(
      new RangeError("Expected one of 'cpu', 'cuda', 'auto' for device but received \"gpu\" of type string"),
    );
    expect(() => oneOf(1, 'device', devices)).toThrow(
      new TypeError("Expected one of 'cpu', 'cuda', 'auto' for device but received 1 of type number"),
    );
  });
});

describe('point', () => {
  const p = (value: unknown) => point(value, 'prompt.points[0]', 640, 480);

  it('accepts points inside the image, edges included', () => {
    expect(p({ x: 0, y: 480, label: 1 })).toEqual({ x: 0, y: 480, label: 1 });
    expect(p({ x: 639.5, y: 0.25, label: 0 })).toEqual({ x: 639.5, y: 0.25, label: 0 });
  });

  it('coordinates outside the image are RangeErrors', () => {
    expect(() => p({ x: 641, y: 10, label: 1 })).toThrow(
      new RangeError('Expected a number between 0 and 640 for prompt.points[0].x but received 641 of type number'),
    );
    expect(() => p({ x: 10, y: -1, label: 1 })).toThrow(
      new RangeError('Expected a number between 0 and 480 for prompt.points[0].y but received -1 of type number'),
    );
    expect(() => p({ x: NaN, y: 1, label: 1 })).toThrow(
      new RangeError('Expected a number between 0 and 640 for prompt.points[0].x but received NaN of type number'),
    );
  });

  it('labels other than 0 and 1 are rejected', () => {
    expect(() => p({ x: 1, y: 1, label: 2 })).toThrow(
      new RangeError('Expected 0 or 1 for prompt.points[0].label but received 2 of type number'),
    );
    expect(() => p({ x: 1, y: 1, label: true })).toThrow(
      new TypeError('Expected 0 or 1 for prompt.points[0].label but received true of type boolean'),
    );
    expect(() => p({ x: 1, y: 1 })).toThrow(
      new TypeError('Expected 0 or 1 for prompt.points[0].label but received undefined of type undefined'),
    );
  });

  it('a non-object is a TypeError', () => {
    expect(() => p([1, 2, 1])).toThrow(
      new TypeError('Expected an object {x, y, label} for prompt.points[0] but received [1, 2, 1] of type array'),
    );
  });
});

describe('box', () => {
  const b = (value: unknown) => box(value, 'prompt.boxes[0]', 640, 480);

  it('accepts boxes inside the image, including degenerate ones', () => {
    expect(b([0, 0, 640, 480])).toEqual([0, 0, 640, 480]);
    expect(b([5, 5, 5, 5])).toEqual([5, 5, 5, 5]);
  });

  it('inverted boxes are RangeErrors', () => {
    expect(() => b([50, 0, 10, 30])).toThrow(
      new RangeError(
        'Expected a box [x0, y0, x1, y1] with x0 <= x1 and y0 <= y1 for prompt.boxes[0] but received [50, 0, 10, 30] of type array',
      ),
    );
    expect(() => b([0, 40, 10, 30])).toThrow(RangeError);
  });

  it('coordinates outside the image are RangeErrors', () => {
    expect(() => b([0, 0, 700, 30])).toThrow(
      new RangeError('Expected a number between 0 and 640 for prompt.boxes[0][2] but received 700 of type number'),
    );
    expect(() => b([0, 0, 10, Infinity])).toThrow(
      new RangeError('Expected a number between 0 and 480 for prompt.boxes[0][3] but received Infinity of type number'),
    );
  });

  it('wrong shapes and element types', () => {
    expect(() => b([1, 2, 3])).toThrow(
      new RangeError('Expected an array [x0, y0, x1, y1] for prompt.boxes[0] but received [1, 2, 3] of type array'),
    );
    expect(() => b({ x0: 1 })).toThrow(
      new TypeError('Expected an array [x0, y0, x1, y1] for prompt.boxes[0] but received {x0: 1} of type object'),
    );
    expect(() => b([1, '2', 3, 4])).toThrow(
      new TypeError('Expected a number between 0 and 480 for prompt.boxes[0][1] but received "2" of type string'),
    );
  });
});

describe('float32Array', () => {
  const what = 'a Float32Array of 4 finite values (2x2 logits)';
  const f = (value: unknown) => float32Array(value, 'prompt.maskInput', 4, what);

  it('accepts the right length and returns the same array', () => {
    const a = new Float32Array(4);
    expect(f(a)).toBe(a);
  });

  it('wrong type, wrong length, non-finite values', () => {
    expect(() => f(new Float64Array(4))).toThrow(
      new TypeError(`Expected ${what} for prompt.maskInput but received Float64Array(4) of type Float64Array`),
    );
    expect(() => f(new Float32Array(5))).toThrow(
      new RangeError(`Expected ${what} for prompt.maskInput but received Float32Array(5) of type Float32Array`),
    );
    expect(() => f(new Float32Array([0, 1, NaN, 2]))).toThrow(
      new RangeError(`Expected ${what} for prompt.maskInput[2] but received NaN of type number`),
    );
  });
});

describe('withCallerStack', () => {
  it('keeps the native message and uses the caller stack', () => {
    const context = new Error();
    const nativeError = new Error('safetensors: missing tensor "x"');
    const result = withCallerStack(nativeError, context) as Error;
    expect(result).toBe(nativeError);
    expect(result.message).toBe('safetensors: missing tensor "x"');
    expect(result.stack?.split('\n')[0]).toBe('Error: safetensors: missing tensor "x"');
    expect(result.stack).toContain('validate.test.ts');
  });
});
