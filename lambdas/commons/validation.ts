import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { UnprocessableEntityError } from './errors';

// zod/mini ships without messages; the English locale makes every 4xx say what was wrong. Import
// schemas' `z` straight from 'zod/mini': re-exporting the namespace would defeat tree shaking
// and pull every locale into each Lambda bundle.
z.config(en());

/** One readable line per problem: `items.0.item_id: Invalid input: expected string`. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], limit = 10): string {
  const lines = issues.slice(0, limit).map((issue) => {
    const path = issue.path.map(String).join('.');
    return path ? `${path}: ${issue.message}` : issue.message;
  });
  if (issues.length > limit) lines.push(`…and ${issues.length - limit} more`);
  return lines.join('; ');
}

/** Parses `input` or throws a 422 naming every problem. */
export function parseOrReject<T>(schema: z.ZodMiniType<T>, input: unknown, what: string): T {
  const result = schema.safeParse(input);
  if (!result.success) throw new UnprocessableEntityError(`${what} is invalid: ${describeIssues(result.error.issues)}`);
  return result.data;
}
