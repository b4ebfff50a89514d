import { describe, expect, it } from 'vitest';
import { parseCliArgs, UsageError } from '../lib/cli/args.js';
import { helpText } from '../lib/cli/help.js';
import { expectUsage, parse } from './helpers/cli.js';



describe('segment', () => {
  it('parses every flag', () => {
    expect(
      parse(
        'segment img.png --model m --point 10,20,1 --point 30.5,40,0 --box 1,2,3,4 --mask-input in.f32 ' +
          '--multimask --threads 4 --json --save-logits l.f32 --out o.png --scribble 1,2;3.5,4;5,6:1 --scribble 7,8:0 ' +
          '--device cuda --precision bf16',
      ),
    ).toEqual({
      command: 'segment',
      image: 'img.png',
      model: 'm',
      device: 'cuda',
      precision: 'bf16',
      threads: 4,
      points: [
        { x: 10, y: 20, label: 1 },
        { x: 30.5, y: 40, label: 0 },
      ],
      scribbles: [
        { path: [[1, 2], [3.5, 4], [5, 6]], label: 1 },
        { path: [[7, 8]], label: 0 },
      ],
      box: [1, 2, 3, 4],
      maskInput: 'in.f32',
      multimask: true,
      json: true,
      saveLogits: 'l.f32',
      out: 'o.png',
    });
  });

  it('has defaults for the optional flags; options may come before the image and use =', () => {
    expect(parse('segment --model=m --box=0,0,5,5 img.png')).toEqual({
      command: 'segment',
      image: 'img.png',
      model: 'm',
      device: 'auto',
      precision: 'fp32',
      points: [],
      scribbles: [],
      box: [0, 0, 5, 5],
      multimask: false,
      json: false,
    });
  });

  it('accepts a mask input alone as the prompt', () => {
    expect(parse('segment img.png --model m --mask-input prev.f32')).toMatchObject({ maskInput: 'prev.f32', points: [] });
  });

  it('leaves range checks (negative or outside coordinates) to the library', () => {
    expect(parse('segment img.png --model m --point -5,3,1')).toMatchObject({ points: [{ x: -5, y: 3, label: 1 }] });
  });

  it('requires a prompt, the model and the image', () => {
    expectUsage('segment img.png --model m', 'Missing prompt: give at least one --point, --scribble, --box or --mask-input');
    expectUsage('segment img.png --point 1,2,1', 'Missing required option --model');
    expectUsage('segment --model m --point 1,2,1', 'Missing the <image> argument; see omniseg segment --help');
  });

  it('rejects malformed points and boxes', () => {
    expectUsage(
      'segment img.png --model m --point 1,2',
      'Expected x,y,label (numbers, label 0 or 1) for --point but received "1,2" of type string',
    );
    expectUsage(
      'segment img.png --model m --point 1,2,2',
      'Expected x,y,label (numbers, label 0 or 1) for --point but received "1,2,2" of type string',
    );
    expectUsage(
      'segment img.png --model m --point a,2,1',
      'Expected x,y,label (numbers, label 0 or 1) for --point but received "a,2,1" of type string',
    );
    expectUsage(
      'segment img.png --model m --box 1,2,3',
      'Expected x0,y0,x1,y1 (4 numbers) for --box but received "1,2,3" of type string',
    );
    expectUsage(
      'segment img.png --model m --box 1,2,,4',
      'Expected x0,y0,x1,y1 (4 numbers) for --box but received "1,2,,4" of type string',
    );
  });

  it('accepts scribbles alone as the prompt, with spaces around the numbers', () => {
    expect(parse('segment img.png --model m --scribble=0,0;10,-2.5e1:0')).toMatchObject({
      points: [],
      scribbles: [{ path: [[0, 0], [10, -25]], label: 0 }],
    });
    expect(parseCliArgs(['segment', 'img.png', '--model', 'm', '--scribble', ' 1, 2 ; 3,4 : 1'])).toMatchObject({
      scribbles: [{ path: [[1, 2], [3, 4]], label: 1 }],
    });
  });

  it('rejects malformed scribbles', () => {
    for (const raw of ['1,2;3,4', '1,2;3,4:2', '1,2;3:1', '1,2;;3,4:1', ':1', '1,2;a,4:1', '1,2;3,4;:1', '1,2,3:1', '1,2:1:1']) {
      expectUsage(
        `segment img.png --model m --scribble ${raw}`,
        `Expected x0,y0;x1,y1;...:label (number pairs, label 0 or 1) for --scribble but received ${JSON.stringify(raw)} of type string`,
      );
    }
  });

  it('allows one --box only', () => {
    expectUsage('segment img.png --model m --box 1,2,3,4 --box 1,2,3,4', 'Option --box was given more than once');
  });
});

describe('encode', () => {
  it('parses', () => {
    expect(parse('encode img.png --model m --save-embedding e.f32 --threads 2 --json')).toEqual({
      command: 'encode',
      image: 'img.png',
      model: 'm',
      device: 'auto',
      precision: 'fp32',
      threads: 2,
      saveEmbedding: 'e.f32',
      json: true,
    });
  });

  it('requires --save-embedding', () => {
    expectUsage('encode img.png --model m', 'Missing required option --save-embedding');
  });

  it('takes --device and --precision', () => {
    expect(parse('encode img.png --model m --save-embedding e.f32 --device=cpu --precision fp16')).toMatchObject({
      device: 'cpu',
      precision: 'fp16',
    });
  });
});

describe('bench', () => {
  it('parses with 5 runs by default', () => {
    expect(parse('bench --model m --image img.png')).toEqual({
      command: 'bench',
      model: 'm',
      image: 'img.png',
      device: 'auto',
      precision: 'fp32',
      runs: 5,
      json: false,
    });
    expect(parse('bench --model m --image img.png --runs 12 --threads 3 --json --device auto --precision fp16')).toMatchObject({
      runs: 12,
      threads: 3,
      json: true,
      device: 'auto',
      precision: 'fp16',
    });
  });

  it('takes the image as an option, not a positional', () => {
    expectUsage('bench --model m img.png', 'Unexpected argument "img.png" for omniseg bench');
    expectUsage('bench --model m', 'Missing required option --image');
  });

  it('rejects runs and threads that are not positive integers', () => {
    expectUsage('bench --model m --image i --runs 0', 'Expected a positive integer for --runs but received "0" of type string');
    expectUsage('bench --model m --image i --runs 2.5', 'Expected a positive integer for --runs but received "2.5" of type string');
    expectUsage('bench --model m --image i --threads x', 'Expected a positive integer for --threads but received "x" of type string');
  });
});

describe('--device and --precision', () => {
  it('accept every device and precision on encode, segment and bench', () => {
    for (const device of ['cpu', 'cuda', 'auto']) {
      for (const precision of ['fp32', 'fp16', 'bf16']) {
        const flags = `--device ${device} --precision ${precision}`;
        expect(parse(`encode i.png --model m --save-embedding e ${flags}`)).toMatchObject({ device, precision });
        expect(parse(`segment i.png --model m --point 1,2,1 ${flags}`)).toMatchObject({ device, precision });
        expect(parse(`bench --model m --image i.png ${flags}`)).toMatchObject({ device, precision });
      }
    }
  });

  it('reject other values, case included', () => {
    expectUsage('encode i.png --model m --save-embedding e --device gpu', 'Expected one of cpu, cuda, auto for --device but received "gpu" of type string');
    expectUsage('segment i.png --model m --point 1,2,1 --device CUDA', 'Expected one of cpu, cuda, auto for --device but received "CUDA" of type string');
    expectUsage('bench --model m --image i --precision fp8', 'Expected one of fp32, fp16, bf16 for --precision but received "fp8" of type string');
    expectUsage('bench --model m --image i --precision half', 'Expected one of fp32, fp16, bf16 for --precision but received "half" of type string');
  });

  it('need a value, once', () => {
    expectUsage('bench --model m --image i --device', 'Option --device requires a value');
    expectUsage('bench --model m --image i --precision= ', 'Option --precision requires a value');
    expectUsage('bench --model m --image i --device cpu --device cuda', 'Option --device was given more than once');
  });

  it('are not options of info', () => {
    expectUsage('info --device cpu', 'Unknown option --device for omniseg info; see omniseg info --help');
  });
});

describe('--cpu-matmul', () => {
  const SAM_COMMANDS = [
    'encode i.png --model m --save-embedding e',
    'segment i.png --model m --point 1,2,1',
    'segment-frames f --model m --point 1,2,1 --out-dir o',
    'bench --model m --image i.png',
    'serve --model m',
    'eval --gt g.json --clicks --model m',
    'eval --dataset d.jsonl --model m',
  ];

  it('is absent (the library default) unless given', () => {
    for (const line of [...SAM_COMMANDS, 'heatmap i.png --model c --text cat']) {
      expect(parse(line)).not.toHaveProperty('cpuMatmul');
    }
  });

  it('takes bf16x3 and fp32 on every command that loads SAM or CLIPSeg', () => {
    for (const cpuMatmul of ['bf16x3', 'fp32']) {
      for (const line of SAM_COMMANDS) expect(parse(`${line} --cpu-matmul ${cpuMatmul}`)).toMatchObject({ cpuMatmul });
      expect(parse(`heatmap i.png --model c --text cat --cpu-matmul=${cpuMatmul}`)).toMatchObject({ cpuMatmul });
      expect(parse(`segment i.png --model m --referrer c --text cat --cpu-matmul ${cpuMatmul}`)).toMatchObject({
        cpuMatmul,
        referring: { referrer: 'c' },
      });
    }
  });

  it('rejects other values, case included, with the template of --precision', () => {
    for (const line of [...SAM_COMMANDS, 'heatmap i.png --model c --text cat']) {
      expectUsage(`${line} --cpu-matmul bf16`, 'Expected one of bf16x3, fp32 for --cpu-matmul but received "bf16" of type string');
    }
    expectUsage('bench --model m --image i --cpu-matmul FP32', 'Expected one of bf16x3, fp32 for --cpu-matmul but received "FP32" of type string');
    expectUsage('bench --model m --image i --cpu-matmul', 'Option --cpu-matmul requires a value');
    expectUsage('bench --model m --image i --cpu-matmul fp32 --cpu-matmul fp32', 'Option --cpu-matmul was given more than once');
  });

  it('goes only with the modes of eval that load a model, and is no option of info or pull', () => {
    expectUsage('eval --gt g.json --pred p.json --cpu-matmul fp32', 'Option --cpu-matmul goes with --clicks');
    expectUsage('info --cpu-matmul fp32', 'Unknown option --cpu-matmul for omniseg info; see omniseg info --help');
    expectUsage('pull sam-vit-base --cpu-matmul fp32', 'Unknown option --cpu-matmul for omniseg pull; see omniseg pull --help');
  });

  it('is in the help of those commands, and bench --json documents its key', () => {
    for (const topic of ['encode', 'segment', 'segment-frames', 'bench', 'eval', 'serve', 'heatmap'] as const) {
      expect(helpText(topic)).toMatch(/--cpu-matmul <m> +the (image encoders'|vision tower's) matrix products \(linear layers, attention\) on CPU/);
    }
    expect(helpText('bench')).toMatch(/"device","precision",\s+"cpuMatmul"\}/);
  });
});

describe('info, help and version', () => {
  it('info', () => {
    expect(parse('info')).toEqual({ command: 'info', json: false });
    expect(parse('info --json')).toEqual({ command: 'info', json: true });
  });

  it('pull', () => {
    expect(parse('pull sam-vit-base')).toEqual({ command: 'pull', id: 'sam-vit-base', quiet: false, allowUnverified: false });
    expect(parse('pull slimsam-77 --quiet --allow-unverified')).toEqual({
      command: 'pull',
      id: 'slimsam-77',
      quiet: true,
      allowUnverified: true,
    });
    expectUsage('pull', 'Missing the <id> argument; see omniseg pull --help');
    expectUsage('pull a b', 'Unexpected argument "b" for omniseg pull');
    expectUsage('pull a --model m', 'Unknown option --model for omniseg pull; see omniseg pull --help');
  });

  it('help in every spelling', () => {
    expect(parse('--help')).toEqual({ command: 'help' });
    expect(parse('-h')).toEqual({ command: 'help' });
    expect(parse('help')).toEqual({ command: 'help' });
    expect(parse('help segment')).toEqual({ command: 'help', topic: 'segment' });
    expect(parse('segment --help')).toEqual({ command: 'help', topic: 'segment' });
    expect(parse('bench -h')).toEqual({ command: 'help', topic: 'bench' });
  });

  it('--help wins over other mistakes on the line', () => {
    expect(parse('segment --bogus --help')).toEqual({ command: 'help', topic: 'segment' });
  });

  it('version', () => {
    expect(parse('--version')).toEqual({ command: 'version' });
  });
});

describe('usage errors', () => {
  it('are UsageErrors with exit code 2', () => {
    const error = (() => {
      try {
        parse('info --bogus');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).exitCode).toBe(2);
  });

  it('missing or unknown command', () => {
    expectUsage('', 'Missing command (encode, segment, segment-frames, bench, info, eval, serve, heatmap, pull); see omniseg --help');
    expectUsage('frobnicate', 'Unknown command "frobnicate"; expected one of encode, segment, segment-frames, bench, info, eval, serve, heatmap, pull');
    expectUsage('help frobnicate', 'Unknown command "frobnicate"; expected one of encode, segment, segment-frames, bench, info, eval, serve, heatmap, pull');
  });

  it('unknown options, long and short', () => {
    expectUsage('segment img.png --model m --bogus', 'Unknown option --bogus for omniseg segment; see omniseg segment --help');
    expectUsage('info -x', 'Unknown option -x for omniseg info; see omniseg info --help');
    expectUsage('info --point 1,2,1', 'Unknown option --point for omniseg info; see omniseg info --help');
  });

  it('an option without its value', () => {
    expectUsage('segment img.png --point 1,2,1 --model', 'Option --model requires a value');
    expectUsage('segment img.png --model --json --point 1,2,1', 'Option --model requires a value');
    expectUsage('segment img.png --model= --point 1,2,1', 'Option --model requires a value');
    // a value that starts with "-" is taken with "=" (and the message says so)
    expectUsage(
      'segment img.png --model m --referrer c --text -x',
      'Option --text requires a value (a value starting with "-": write --text=-x)',
    );
    expect(parse('segment img.png --model m --referrer c --text=-x')).toMatchObject({ referring: { texts: ['-x'] } });
  });

  it('a file name that starts with "-" is refused, not read as short options (-sheep.png was -h: help, exit 0)', () => {
    expectUsage(
      'segment -sheep.png --model m --point 1,1,1 --json',
      'Unknown option -sheep.png for omniseg segment (a file whose name starts with "-": write ./-sheep.png, or put it after --)',
    );
    expect(parse('segment --model m --point 1,1,1 -- -sheep.png')).toMatchObject({ image: '-sheep.png' });
    expect(parse('segment ./-sheep.png --model m --point 1,1,1')).toMatchObject({ image: './-sheep.png' });
    expect(parse('segment -h')).toEqual({ command: 'help', topic: 'segment' });
  });

  it('a value given to a flag', () => {
    expectUsage('info --json=yes', 'Option --json does not take a value');
  });

  it('an option repeated', () => {
    expectUsage('encode img.png --model a --model b --save-embedding e', 'Option --model was given more than once');
  });

  it('extra positional arguments', () => {
    expectUsage('segment a.png b.png --model m --point 1,2,1', 'Unexpected argument "b.png" for omniseg segment');
  });
});

describe('heatmap', () => {
  it('parses every flag', () => {
    expect(
      parseCliArgs([
        'heatmap', 'img.png', '--model', 'c', '--text', 'a red cat', '--ref-image', 'ref.png', '--text-weight', '0.25',
        '--save', 'logits.f32', '--out', 'heat.png', '--save-f32', 'heat.f32', '--json', '--device', 'cpu', '--threads', '2',
      ]),
    ).toEqual({
      command: 'heatmap',
      image: 'img.png',
      referrer: 'c',
      texts: ['a red cat'],
      refImages: ['ref.png'],
      textWeight: 0.25,
      each: false,
      device: 'cpu',
      threads: 2,
      save: 'logits.f32',
      out: 'heat.png',
      saveF32: 'heat.f32',
      json: true,
    });
    // --referrer names the checkpoint as well (the segment command's name for it)
    expect(parse('heatmap img.png --referrer c --text cat')).toMatchObject({ referrer: 'c', texts: ['cat'] });
    // several texts and reference images: fused into one query by the command
    expect(parseCliArgs(['heatmap', 'img.png', '--model', 'c', '--text', 'cat', '--text', 'the cat', '--ref-image', 'a.png', '--ref-image', 'b.png'])).toMatchObject({
      texts: ['cat', 'the cat'],
      refImages: ['a.png', 'b.png'],
    });
  });

  it('defaults: device auto, no files, no JSON', () => {
    expect(parse('heatmap img.png --model c --ref-image r.png')).toEqual({
      command: 'heatmap',
      image: 'img.png',
      referrer: 'c',
      texts: [],
      refImages: ['r.png'],
      each: false,
      device: 'auto',
      json: false,
    });
  });

  it('usage errors', () => {
    expectUsage('heatmap img.png --text cat', 'Missing required option --model');
    expectUsage('heatmap img.png --model c --referrer c --text cat', 'Options --model and --referrer do not go together (they name the same checkpoint)');
    expectUsage('heatmap img.png --referrer c', 'Missing referring prompt: give --text, --ref-image or both');
    expectUsage('heatmap img.png --referrer c --text cat --text-weight 0.5', 'Option --text-weight goes with one --text and one --ref-image');
    expectUsage(
      'heatmap img.png --referrer c --text cat --text dog --ref-image r.png --text-weight 0.5',
      'Option --text-weight goes with one --text and one --ref-image',
    );
    expectUsage('heatmap img.png --referrer c --text cat --each', 'Unknown option --each for omniseg heatmap; see omniseg heatmap --help');
    expect(() => parseCliArgs(['heatmap', 'img.png', '--referrer', 'c', '--text', ' '])).toThrow('Option --text must not be empty');
    expectUsage(
      'heatmap img.png --referrer c --text cat --ref-image r.png --text-weight 1.5',
      'Expected a number from 0 to 1 for --text-weight but received "1.5" of type string',
    );
    expectUsage('heatmap img.png --referrer c --text cat --precision fp16', 'Unknown option --precision for omniseg heatmap; see omniseg heatmap --help');
    expectUsage('heatmap --referrer c --text cat', 'Missing the <image> argument; see omniseg heatmap --help');
  });

  it('--ref-mask / --ref-box: a region of --ref-image, on heatmap and segment --referrer', () => {
    expect(parse('heatmap img.png --referrer c --ref-image r.png --ref-box 1,2,30.5,40')).toMatchObject({
      refImages: ['r.png'],
      refBox: [1, 2, 30.5, 40],
    });
    expect(parse('heatmap img.png --referrer c --ref-image r.png --ref-mask m.png')).toMatchObject({ refMask: 'm.png' });
    expect(parse('segment img.png --model m --referrer c --ref-image r.png --ref-box 0,0,5,5')).toMatchObject({
      referring: { refImages: ['r.png'], refBox: [0, 0, 5, 5] },
    });
    expectUsage('heatmap img.png --referrer c --text cat --ref-box 0,0,5,5', 'Option --ref-box goes with one --ref-image');
    expectUsage('heatmap img.png --referrer c --text cat --ref-mask m.png', 'Option --ref-mask goes with one --ref-image');
    expectUsage(
      'heatmap img.png --referrer c --ref-image a.png --ref-image b.png --ref-box 0,0,5,5',
      'Option --ref-box goes with one --ref-image',
    );
    expectUsage(
      'heatmap img.png --referrer c --ref-image r.png --ref-mask m.png --ref-box 0,0,5,5',
      'Options --ref-mask and --ref-box do not go together',
    );
    expectUsage(
      'heatmap img.png --referrer c --ref-image r.png --ref-box 0,0,5',
      'Expected x0,y0,x1,y1 (4 numbers) for --ref-box but received "0,0,5" of type string',
    );
    expectUsage('segment img.png --model m --point 1,1,1 --ref-box 0,0,5,5', 'Option --ref-box goes with --referrer');
  });

  it('--help', () => {
    expect(parse('heatmap --help')).toEqual({ command: 'help', topic: 'heatmap' });
  });
});

describe('segment --referrer', () => {
  it('parses the referring options', () => {
    expect(
      parseCliArgs([
        'segment', 'img.png', '--model', 'm', '--referrer', 'c', '--text', 'a red cat', '--threshold-heat', '0.3',
        '--min-area', '0', '--json', '--device', 'cpu',
      ]),
    ).toEqual({
      command: 'segment',
      image: 'img.png',
      model: 'm',
      device: 'cpu',
      precision: 'fp32',
      points: [],
      scribbles: [],
      multimask: false,
      json: true,
      referring: { referrer: 'c', texts: ['a red cat'], refImages: [], each: false, thresholdHeat: 0.3, minArea: 0 },
    });
  });

  it('many prompts, --each, target-image prompts and a vocabulary', () => {
    expect(
      parseCliArgs([
        'segment', 'img.png', '--model', 'm', '--referrer', 'c', '--text', 'cat', '--text', 'dog', '--each', '--point', '5,6,1',
        '--box', '0,0,9,9', '--vocabulary', 'cat,dog', '--vocabulary', ' red car ',
      ]),
    ).toMatchObject({
      points: [{ x: 5, y: 6, label: 1 }],
      box: [0, 0, 9, 9],
      referring: { texts: ['cat', 'dog'], each: true, vocabulary: ['cat', 'dog', 'red car'] },
    });
    expect(parse('segment img.png --model m --referrer c --text cat --vocabulary-file v.txt')).toMatchObject({
      referring: { vocabularyFile: 'v.txt' },
    });
  });

  it('usage errors', () => {
    expectUsage('segment img.png --model m --referrer c', 'Missing referring prompt: give --text, --ref-image or both');
    expectUsage('segment img.png --referrer c --text cat', 'Missing required option --model');
    expectUsage('segment img.png --model m --referrer c --text cat --mask-input l.f32', 'Option --mask-input does not go with --referrer');
    expectUsage('segment img.png --model m --point 1,2,1 --each', 'Option --each goes with --referrer');
    expectUsage('segment img.png --model m --point 1,2,1 --vocabulary cat', 'Option --vocabulary goes with --referrer');
    expectUsage('segment img.png --model m --referrer c --text cat --vocabulary ,', 'Option --vocabulary has no labels');
    expectUsage(
      'segment img.png --model m --referrer c --text cat --vocabulary a --vocabulary-file v.txt',
      'Options --vocabulary and --vocabulary-file do not go together',
    );
    expectUsage(
      'segment img.png --model m --referrer c --text cat --ref-image r.png --each --text-weight 0.3',
      'Options --each and --text-weight do not go together',
    );
    expectUsage('segment img.png --model m --referrer c --text cat --multimask', 'Option --multimask does not go with --referrer');
    expectUsage('segment img.png --model m --text cat --point 1,2,1', 'Option --text goes with --referrer');
    expectUsage(
      'segment img.png --model m --referrer c --text cat --threshold-heat x',
      'Expected a number from 0 to 1 for --threshold-heat but received "x" of type string',
    );
  });
});
