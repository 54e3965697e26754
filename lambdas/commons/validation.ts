import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { bounded, MAX_MESSAGE_CHARS, MAX_NAME_CHARS } from './bounded';
import { InvalidInputError } from './application-errors';

// zod/mini ships without messages; the English locale makes every 4xx say what was wrong. Import
// schemas' `z` straight from 'zod/mini': re-exporting the namespace would defeat tree shaking
// and pull every locale into each Lambda bundle.
z.config(en());

/** Characters of one issue's message: zod quotes unknown keys and option lists, which a caller chooses. */
const MAX_ISSUE_CHARS = 200;
/** Path segments named at most: a path is as deep as the caller's JSON. */
const MAX_PATH_SEGMENTS = 8;

/**
 * One readable line per problem: `items.0.item_id: Invalid input: expected string`. Bounded
 * whatever the input: at most `limit` issues, each path segment and message cut, the whole line
 * within MAX_MESSAGE_CHARS, so an error answer never echoes what the caller sent at length.
 */
export function describeIssues(issues: readonly z.core.$ZodIssue[], limit = 10): string {
  const lines = issues.slice(0, limit).map((issue) => {
    const segments = issue.path.slice(0, MAX_PATH_SEGMENTS).map((segment) => bounded(String(segment), MAX_NAME_CHARS));
    if (issue.path.length > MAX_PATH_SEGMENTS) segments.push('…');
    const message = bounded(issue.message, MAX_ISSUE_CHARS);
    return segments.length ? `${segments.join('.')}: ${message}` : message;
  });
  if (issues.length > limit) lines.push(`…and ${issues.length - limit} more`);
  return bounded(lines.join('; '), MAX_MESSAGE_CHARS);
}

/** Parses `input` or throws an InvalidInputError (422) naming every problem. */
export function parseOrReject<T>(schema: z.ZodMiniType<T>, input: unknown, what: string): T {
  const result = schema.safeParse(input);
  if (!result.success) throw new InvalidInputError(`${what} is invalid: ${describeIssues(result.error.issues)}`);
  return result.data;
}
