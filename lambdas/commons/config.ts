import * as z from 'zod/mini';
import { describeIssues } from './validation';

/**
 * The runtime's environment: the same names in Lambda (set by the CDK stack from stage config)
 * and locally (set by `npm start`, overridable by the engineer). Read once per container.
 */
/** A whole number above zero from the environment (a duration in the unit its name gives, or a count), `fallback` when unset. */
export const positiveWhole = (fallback: number) => z._default(z.coerce.number().check(z.int(), z.positive()), fallback);

/** A whole number from `min` to `max` from the environment, `fallback` when unset. */
export const wholeWithin = (fallback: number, min: number, max: number) => z._default(z.coerce.number().check(z.int(), z.gte(min), z.lte(max)), fallback);

const schema = z.object({
  STAGE: z._default(z.string().check(z.regex(/^[a-z][a-z0-9-]{0,31}$/)), 'local'),
  TABLE_NAME: z._default(z.string().check(z.minLength(3)), 'refund-relay-local'),
  DYNAMODB_ENDPOINT: z.optional(z.url()),
  SECRETS_SOURCE: z._default(z.enum(['aws', 'file']), 'aws'),
  SECRETS_PREFIX: z.optional(z.string()),
  LOCAL_SECRETS_FILE: z._default(z.string(), '.local/secrets.json'),
  SECRETS_MAX_AGE_SECONDS: positiveWhole(300),
  /** Base of the callback URLs handed to Apace (the API Gateway stage URL or a custom domain). */
  PUBLIC_BASE_URL: z._default(z.url(), 'http://127.0.0.1:3000'),
  /** How long after an `allow_refund: true` answer Apace may still pay out (docs/design.md §2.3). */
  APACE_CLAIM_WINDOW_SECONDS: positiveWhole(900),
  /** How long callback tokens stay valid after the offer expires (webhook retries arrive late). */
  APACE_CALLBACK_GRACE_SECONDS: positiveWhole(7 * 24 * 3600),
  /**
   * How long after Apace's `pending` its `processed` may take before the refund is followed up with
   * Apace's own record (docs/design.md §2.5), and again every `DISPATCH_SYNC_DELAY_MS` until settled.
   */
  APACE_PROCESSED_WITHIN_SECONDS: positiveWhole(3600),
  /** The currency of the stage's Apace vendor account: Apace pays only in it (`refund_amount` is a bare decimal). */
  APACE_CURRENCY: z._default(z.string().check(z.regex(/^[A-Z]{3}$/)), 'AUD'),
  /** Apace first with card reversal as fallback, or card reversal only (stage config). */
  ROUTING_POLICY: z._default(z.enum(['apace_first', 'reversal_only']), 'apace_first'),
  /** Provider calls per refund and channel before it goes to manual review. */
  DISPATCH_MAX_ATTEMPTS: positiveWhole(8),
  DISPATCH_BASE_DELAY_MS: positiveWhole(2_000),
  DISPATCH_MAX_DELAY_MS: positiveWhole(15 * 60_000),
  /** How long a claimed provider call is owned before the sweeper takes it over (> provider timeouts). */
  DISPATCH_LEASE_MS: positiveWhole(2 * 60_000),
  /**
   * Time kept, beyond a provider call's timeout, to record its outcome: the dispatcher starts a call
   * only with more than both left in the invocation (lib/dispatch-queue.ts).
   */
  DISPATCH_CALL_MARGIN_MS: positiveWhole(3_000),
  /** Wait before asking a provider again about a refund it left pending. */
  DISPATCH_SYNC_DELAY_MS: positiveWhole(5 * 60_000),
  /** The dispatch queue (AWS only; locally the queue is in-process). */
  DISPATCH_QUEUE_URL: z.optional(z.url()),
});

export type RuntimeConfig = z.infer<typeof schema> & { secretsPrefix: string };

export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
}

/** Parses environment variables with `schema`, or throws a ConfigurationError naming every bad one. */
export function parseEnvironment<T>(schema: z.ZodMiniType<T>, env: NodeJS.ProcessEnv, what: string): T {
  const result = schema.safeParse(env);
  if (!result.success) throw new ConfigurationError(`bad ${what}environment: ${describeIssues(result.error.issues)}`);
  return result.data;
}

/** A setting holding a case-insensitive regular expression (provider wordings we must recognise). */
export const regexSetting = z.string().check(
  z.minLength(1),
  z.refine((text) => {
    try {
      new RegExp(text, 'i');
      return true;
    } catch {
      return false;
    }
  }, 'must be a valid regular expression'),
);

export function loadConfig(env: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  const config = parseEnvironment(schema, env, '');
  return { ...config, secretsPrefix: config.SECRETS_PREFIX ?? `refund-relay/${config.STAGE}/` };
}
