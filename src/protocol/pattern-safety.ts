/**
 * Whether a topic schema's regular expression is safe to run on hostile strings. ajv runs a schema's `pattern` (and
 * `patternProperties` keys) with JavaScript's backtracking `RegExp`, unanchored, on strings of up to a million
 * characters: `^(a+)+$` or even `\d+x` on a long enough string blocks the event loop for minutes. A schema comes from
 * a config file, which is input like any other, so every pattern is checked when its topic is defined, with
 * `redos-detector` (it proves a bound on backtracking, or says it could not), before anything is compiled.
 *
 * The check is bounded in steps, not time, so a verdict does not depend on the machine. A pattern the detector
 * cannot prove safe within the bound is refused: anchor it (`^...$`), avoid nested or adjacent repetition of what
 * the same characters can match, or use `enum` for lists of words.
 *
 * @module
 */
import { isSafePattern } from 'redos-detector';

/** Steps the detector may take per pattern: realistic patterns need under a hundred; the worst take ~0.3 s. */
const MAX_DETECTOR_STEPS = 3000;

/** Verdicts already reached (the catalog's patterns recur in every registry); bounded. */
const verdicts = new Map<string, string | null>();
const MAX_REMEMBERED = 1024;

/**
 * Why `pattern` must not be compiled into a validator, or null when it is provably free of catastrophic
 * backtracking. Checked as ajv compiles it (the `u` flag). Never throws.
 */
export function unsafePatternReason(pattern: string): string | null {
  const known = verdicts.get(pattern);
  if (known !== undefined) return known;
  const reason = detect(pattern);
  if (verdicts.size >= MAX_REMEMBERED) verdicts.clear();
  verdicts.set(pattern, reason);
  return reason;
}

function detect(pattern: string): string | null {
  try {
    new RegExp(pattern, 'u'); // compiles only; nothing is matched
  } catch (error) {
    return `is not a valid regular expression (${firstLine(error)})`;
  }
  let result: ReturnType<typeof isSafePattern>;
  try {
    result = isSafePattern(pattern, { unicode: true, maxSteps: MAX_DETECTOR_STEPS });
  } catch (error) {
    return `could not be checked for catastrophic backtracking (${firstLine(error)})`;
  }
  if (result.safe) return null;
  const verdict =
    result.error === 'hitMaxSteps' || result.error === 'timedOut'
      ? 'is too complex to prove free of catastrophic backtracking'
      : 'may backtrack catastrophically on a long string (ReDoS)';
  return `${verdict}: anchor it (^...$), do not repeat what the same characters can match, or use enum`;
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return (text.split('\n')[0] ?? '').slice(0, 120);
}
