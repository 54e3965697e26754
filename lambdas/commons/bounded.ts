/**
 * Text that leaves the process (an error answer, a log line, an operator listing) is cut to a
 * bound, so no caller can make us echo or log what it sent at any length (docs/design.md §2.5).
 */

/** Characters of any one caller-influenced text in an error message (a name, a value). */
export const MAX_NAME_CHARS = 64;
/** Characters of a whole error message answered to a caller. */
export const MAX_MESSAGE_CHARS = 1_000;

/**
 * `text` when it fits in `max` characters, else its start and how much was left out. `total` is
 * the length of the text `text` was taken from, when the caller already shortened it.
 */
export function bounded(text: string, max: number, total = text.length): string {
  if (text.length <= max && total === text.length) return text;
  // Never end on half a surrogate pair: the cut text must stay valid UTF-16.
  const cut = Math.min(text.length, /[\uD800-\uDBFF]/.test(text.charAt(max - 1)) ? max - 1 : max);
  return `${text.slice(0, cut)}…[+${total - cut} chars]`;
}
