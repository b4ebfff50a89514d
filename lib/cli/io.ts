// Files the CLI reads and writes: little-endian float32 arrays, text files that take their name
// only when whole, and a small output sink.
import { randomBytes } from 'node:crypto';
import { open, readFile, realpath, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';

/** Where the CLI writes its output (process.stdout / process.stderr, or a test's buffers). */
export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Environment variables (OMNISEG_DEBUG, the OMNISEG_* settings of pull). */
  env: Readonly<Record<string, string | undefined>>;
  /** Whether stderr is a terminal (progress redrawn in place rather than printed line by line). */
  stderrIsTTY?: boolean;
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** Writes `data` as raw little-endian float32. */
export async function writeFloat32File(file: string, data: Float32Array): Promise<void> {
  let bytes: Uint8Array;
  if (LITTLE_ENDIAN) {
    bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } else {
    const view = new DataView(new ArrayBuffer(data.byteLength));
    data.forEach((v, i) => view.setFloat32(i * 4, v, true));
    bytes = new Uint8Array(view.buffer);
  }
  try {
    await writeFile(file, bytes);
  } catch (error) {
    throw new Error(`Cannot write ${file}: ${errorMessage(error)}`);
  }
}

/**
 * Reads a raw little-endian float32 file of exactly `count` values.
 * @param what how to name the file in errors, e.g. "--mask-input"
 */
export async function readFloat32File(file: string, count: number, what: string): Promise<Float32Array> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new Error(`Cannot read ${what} file ${file}: ${errorMessage(error)}`);
  }
  if (bytes.byteLength !== count * 4) {
    throw new Error(
      `${what} file ${file} must hold exactly ${count} float32 values (${count * 4} bytes) but has ${bytes.byteLength} bytes`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** A text file written line by line that only takes its name once whole (WholeFile.open). */
export class WholeFile {
  private constructor(
    readonly file: string,
    private readonly handle: FileHandle,
    /** The temporary file renamed over `file` when done; undefined when written in place. */
    private readonly partial: string | undefined,
  ) {}

  /**
   * Opens a new temporary file beside `file` (`<file>.<pid>.<random>.partial`, created, never an
   * existing one) for writing: `commit()` renames it to `file`, `discard()` removes it, so that a
   * run that fails halfway leaves `file` as it was, not a truncated file that reads as complete.
   * Where `file` exists and is not a regular file (a pipe, a device, a link to one) it is written
   * in place, as a rename would replace it.
   */
  static async open(file: string): Promise<WholeFile> {
    try {
      const target = await realpath(file).catch(() => file); // (a link's target: renamed over, the link stays)
      const info = await stat(target).catch(() => undefined);
      if (info !== undefined && !info.isFile()) return new WholeFile(file, await open(target, 'w'), undefined);
      const partial = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.partial`;
      return new WholeFile(target, await open(partial, 'wx'), partial);
    } catch (error) {
      throw new Error(`Cannot write ${file}: ${errorMessage(error)}`);
    }
  }

  async write(text: string): Promise<void> {
    await this.handle.write(text);
  }

  async commit(): Promise<void> {
    await this.handle.close();
    if (this.partial !== undefined) await rename(this.partial, this.file);
  }

  async discard(): Promise<void> {
    await this.handle.close().catch(() => {});
    if (this.partial !== undefined) await rm(this.partial, { force: true });
  }
}

/** Concatenates arrays (e.g. several masks' logits) into one. */
export function concatFloat32(arrays: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(arrays.reduce((n, a) => n + a.length, 0));
  let offset = 0;
  for (const a of arrays) {
    out.set(a, offset);
    offset += a.length;
  }
  return out;
}

function errorMessage(error: unknown): string {
  const err = error as NodeJS.ErrnoException;
  if (err.code === 'ENOENT') return 'no such file or directory';
  return error instanceof Error ? error.message : String(error);
}
