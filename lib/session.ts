// Interactive segmentation on one encoded image: rounds of clicks and scribbles, each decoded
// with everything given so far plus the previous round's best mask logits as the dense prompt —
// the mask memory SAM and SEEM use for multi-round refinement.
import type { ImageEmbedding } from './embedding.js';
import { invalidRange } from './errors.js';
import type { Mask } from './mask.js';
import { MAX_PROMPT_POINTS, type Prompt } from './prompt.js';
import { WorkQueue } from './queue.js';
import { scribbleToPoints } from './scribble.js';
import type { SegmentResult, Segmenter } from './segmenter.js';
import type { Box, Point, Scribble } from './types.js';
import { abortSignal, box, optionalArray, plainObject, point, scribble } from './validate.js';

/** What one round adds. At least one of `points`, `scribbles` or `box` is required. */
export interface SessionPrompt {
  /** Clicks added in this round, label 1 positive / 0 negative; they stay for later rounds. Default: none. */
  points?: Point[];
  /**
   * Scribbles added in this round (each becomes clicks along its length, as in `Prompt.scribbles`);
   * they stay for later rounds. Default: none.
   */
  scribbles?: Scribble[];
  /** A box `[x0, y0, x1, y1]` for this and later rounds, replacing an earlier round's box. Default: the previous round's box, if any. */
  box?: Box;
}

export interface SessionOptions {
  /**
   * Return SAM's 3 multimask outputs in every round instead of its single-mask output; the
   * highest-scoring one is the round's `best`. Default: `false`.
   */
  multimask?: boolean;
  /** Logit threshold for the binary masks. Default: `0`. */
  threshold?: number;
  /** Cancels the encode when `segmenter.session()` is given an image (see `EncodeOptions.signal`). Default: none. */
  signal?: AbortSignal;
}

export interface SessionAddOptions {
  /**
   * Cancels the round if it has not started (it waits for the rounds before it and for the
   * decoder); a cancelled round rejects with an `AbortError` and leaves no trace in `history`.
   * Default: none.
   */
  signal?: AbortSignal;
}

/** One round of a session. */
export interface SessionRound {
  /** What this round added (validated copy). */
  readonly prompt: Readonly<SessionPrompt>;
  /** The decoder's result for everything given up to this round. */
  readonly result: SegmentResult;
  /** The result's highest-scoring mask (the first on ties): the mask prompt of the next round. */
  readonly best: Mask;
}

/** Settings fixed for a session. */
interface SessionSettings {
  multimask: boolean;
  threshold: number;
}

interface Entry {
  round: SessionRound;
  /** Copy of `round.best.lowResLogits`, so that changes to the result cannot alter later rounds. */
  logits: Float32Array;
}

/**
 * An interactive segmentation of one image. Create it with `segmenter.session()`.
 *
 * The image is encoded once; each `add()` is one decoder call with all the clicks and scribbles
 * of the rounds so far (in round order), the latest box, and — from the second round on — the
 * previous round's best low-resolution logits as `maskInput`. `undo()` drops the last round,
 * `reset()` all of them. Rounds run one at a time in the order `add()` was called.
 */
export class SegmentSession {
  /** The encoded image the rounds decode. */
  readonly embedding: ImageEmbedding;
  /** Width of the image, pixels. */
  readonly width: number;
  /** Height of the image, pixels. */
  readonly height: number;

  readonly #segmenter: Segmenter;
  readonly #ownsEmbedding: boolean;
  readonly #settings: SessionSettings;
  readonly #entries: Entry[] = [];
  readonly #rounds = new WorkQueue(1);
  #disposed = false;

  /** @internal Use `segmenter.session()`. */
  constructor(segmenter: Segmenter, embedding: ImageEmbedding, ownsEmbedding: boolean, settings: SessionSettings) {
    this.#segmenter = segmenter;
    this.embedding = embedding;
    this.width = embedding.width;
    this.height = embedding.height;
    this.#ownsEmbedding = ownsEmbedding;
    this.#settings = settings;
  }

  /** The rounds so far, oldest first (a snapshot: later calls do not change it). */
  get history(): readonly SessionRound[] {
    return Object.freeze(this.#entries.map((entry) => entry.round));
  }

  /** The last round's best mask; undefined before the first round. */
  get mask(): Mask | undefined {
    return this.#entries.at(-1)?.round.best;
  }

  /**
   * Runs one round: this prompt added to those of the earlier rounds, with the previous round's
   * best logits as the mask prompt.
   * @returns the round's result (also recorded in `history`).
   * @throws TypeError / RangeError for an invalid prompt (checked against the image);
   *   AbortError when `signal` cancels it; Error when the session, its embedding or the
   *   Segmenter was disposed. A round that fails leaves `history` unchanged.
   */
  async add(prompt: SessionPrompt, options: SessionAddOptions = {}): Promise<SegmentResult> {
    this.#live();
    const opts = plainObject(options, 'options', 'an object {signal?}');
    const signal = opts.signal === undefined ? undefined : abortSignal(opts.signal, 'signal');
    const added = this.#validate(prompt);
    const clicks = this.#clicks(added);
    this.#adding++;
    this.#queuedClicks += clicks;
    try {
      return await this.#rounds.run(async () => {
        this.#live();
        const result = await this.#segmenter.segment(this.embedding, this.#accumulate(added), { ...this.#settings, signal });
        const best = result.masks.reduce((a, m) => (m.score > a.score ? m : a));
        // (a round that ends after an abort, or after dispose(), is not the session's)
        if (signal?.aborted !== true && !this.#disposed) {
          this.#entries.push({ round: Object.freeze({ prompt: added, result, best }), logits: best.lowResLogits.slice() });
        }
        return result;
      }, signal);
    } finally {
      this.#adding--;
      this.#queuedClicks -= clicks;
    }
  }

  /**
   * Drops the last round, going back to the state before it (its clicks, scribbles and box no
   * longer count; the round before it supplies the mask prompt again).
   * @returns the dropped round, or undefined when there was none.
   * @throws Error while a round is in progress (await `add()` first).
   */
  undo(): SessionRound | undefined {
    this.#idle('undo');
    return this.#entries.pop()?.round;
  }

  /** Drops every round; the next `add()` starts from scratch on the same embedding. @throws Error while a round is in progress. */
  reset(): void {
    this.#idle('reset');
    this.#entries.length = 0;
  }

  /** Ends the session; frees the embedding if the session encoded it (not one passed in). Idempotent. */
  dispose(): void {
    this.#disposed = true;
    if (this.#ownsEmbedding) this.embedding.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  #live(): void {
    if (this.#disposed) throw new Error('The session has been disposed; start a new one with segmenter.session()');
  }

  /**
   * Rounds whose add() has not settled. A round aborted while its decode runs has settled (an
   * AbortError) though its task still holds the queue: it never records itself, so undo() and
   * reset() may run then.
   */
  #adding = 0;
  /** Clicks (scribble points included) of the rounds added and not settled: they count towards the limit too. */
  #queuedClicks = 0;

  /** The clicks a round adds to the decoder's prompt, scribble points included. */
  #clicks(p: SessionPrompt): number {
    return (p.points?.length ?? 0) + (p.scribbles ?? []).reduce((n, s) => n + scribbleToPoints(s, this.width, this.height).length, 0);
  }

  #idle(method: string): void {
    if (this.#adding > 0) {
      throw new Error(`A round is in progress; await session.add() before calling ${method}()`);
    }
  }

  /** The decoder prompt of the next round: every round's clicks and scribbles, the latest box, the last best logits. */
  #accumulate(added: SessionPrompt): Prompt {
    const prompts = [...this.#entries.map((entry) => entry.round.prompt), added];
    const points = prompts.flatMap((p) => p.points ?? []);
    const scribbles = prompts.flatMap((p) => p.scribbles ?? []);
    const latestBox = prompts.reduce<Box | undefined>((current, p) => p.box ?? current, undefined);
    const previous = this.#entries.at(-1);
    return {
      ...(points.length > 0 ? { points } : {}),
      ...(scribbles.length > 0 ? { scribbles } : {}),
      ...(latestBox !== undefined ? { boxes: [latestBox] } : {}),
      ...(previous !== undefined ? { maskInput: previous.logits } : {}),
    };
  }

  #validate(prompt: unknown): Readonly<SessionPrompt> {
    const what = 'an object {points?, scribbles?, box?}';
    const obj = plainObject(prompt, 'prompt', what);
    // A session keeps one box and sets the mask prompt itself: say so rather than ignore them.
    if ('boxes' in obj || 'maskInput' in obj || 'mask' in obj) throw invalidRange(what, 'prompt', prompt);
    const { width, height } = this;
    // Array.from, not map: it visits the holes of a sparse array too (refused by name).
    const rawPoints = optionalArray(obj.points, 'prompt.points', 'an array of points {x, y, label}');
    const points = rawPoints && Array.from(rawPoints, (p, i) => point(p, `prompt.points[${i}]`, width, height));
    const rawScribbles = optionalArray(obj.scribbles, 'prompt.scribbles', 'an array of scribbles {path, label}');
    const scribbles =
      rawScribbles && Array.from(rawScribbles, (s, i) => scribble(s, `prompt.scribbles[${i}]`, width, height));
    const b = obj.box === undefined ? undefined : box(obj.box, 'prompt.box', width, height);
    if ((points?.length ?? 0) === 0 && (scribbles?.length ?? 0) === 0 && b === undefined) {
      throw invalidRange('at least one of points, scribbles or box', 'prompt', prompt);
    }
    // The decoder takes every round's clicks at once: the limit is on the session's total, the
    // rounds still queued included.
    const before = this.#entries.reduce((n, entry) => n + this.#clicks(entry.round.prompt), 0) + this.#queuedClicks;
    const adds = this.#clicks({ points, scribbles });
    if (before + adds > MAX_PROMPT_POINTS) {
      throw invalidRange(
        `at most ${MAX_PROMPT_POINTS} points in a session's rounds together, scribble points included (the rounds so far have ${before}, this one adds ${adds})`,
        scribbles !== undefined && scribbles.length > 0 ? 'prompt.points and prompt.scribbles' : 'prompt.points',
        obj.points,
      );
    }
    return Object.freeze({
      ...(points !== undefined && points.length > 0 ? { points } : {}),
      ...(scribbles !== undefined && scribbles.length > 0 ? { scribbles } : {}),
      ...(b !== undefined ? { box: b } : {}),
    });
  }
}
