// Small formatting helpers for the CLI's human-readable output.

/** Milliseconds with one decimal: "812.3 ms". */
export function ms(value: number): string {
  return `${value.toFixed(1)} ms`;
}

/** Rounds to `digits` decimals for JSON output (keeps integers as they are). */
export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** One line of JSON followed by a newline. */
export function jsonLine(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}
