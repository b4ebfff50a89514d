// jsonBody (lib/server/json.ts): response bodies with JSON text made elsewhere spliced in.
import { describe, expect, it } from 'vitest';
import { jsonBody, RawJson } from '../lib/server/json.js';

const raw = (text: string) => new RawJson(new TextEncoder().encode(text));

describe('jsonBody', () => {
  it('is JSON.stringify for bodies without RawJson (undefined members left out, as there)', () => {
    for (const value of [
      { a: 1, b: 'x"\\\u2028é', c: [1, null, undefined, { d: undefined, e: false }], f: undefined, g: { h: [] } },
      [undefined, 2],
      'text',
      3.5,
      null,
      {},
    ]) {
      expect(jsonBody(value).toString()).toBe(JSON.stringify(value));
    }
  });

  it('splices RawJson text in where it lies, walking only the containers on the way to it', () => {
    const body = {
      imageId: 'ab',
      masks: [
        { score: 0.5, box: [1, 2, 3, 4], polygons: raw('[{"outer":[[0,0],[1,0],[1,1],[0,1]],"holes":[]}]'), label: 'cät' },
        { score: 0.25, skipped: undefined, polygons: raw('[]') },
      ],
      timings: { totalMs: 1.5 },
    };
    const text = jsonBody(body).toString();
    expect(text).toBe(
      '{"imageId":"ab","masks":[{"score":0.5,"box":[1,2,3,4],"polygons":[{"outer":[[0,0],[1,0],[1,1],[0,1]],"holes":[]}],"label":"cät"},' +
        '{"score":0.25,"polygons":[]}],"timings":{"totalMs":1.5}}',
    );
    expect(JSON.parse(text).masks[0].polygons[0].outer).toHaveLength(4);
    expect(jsonBody([raw('1'), [raw('"two"')], undefined, () => 3]).toString()).toBe('[1,["two"],null,null]');
    expect(jsonBody({ a: raw('1'), f: () => 3, s: Symbol('s') }).toString()).toBe('{"a":1}');
  });
});
