// Comparisons of numeric arrays shared by the tests.

/** The largest |a[i] − b[i]| over a's length. */
export const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
