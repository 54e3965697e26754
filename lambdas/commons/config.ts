import * as z from 'zod/mini';
import { describeIssues } from './validation';

/**
 * The runtime's environment: the same names in Lambda (set by the CDK stack from stage config)
 * and locally (set by `npm start`, overridable by the engineer). Read once per container.
 */
const seconds = (fallback: number) => z._default(z.coerce.number().check(z.int(), z.positive()), fallback);

const schema = z.object({
  STAGE: z._default(z.string().check(z.regex(/^[a-z][a-z0-9-]{0,31}$/)), 'local'),
  TABLE_NAME: z._default(z.string().check(z.minLength(3)), 'refund-relay-local'),
  DYNAMODB_ENDPOINT: z.optional(z.url()),
  SECRETS_SOURCE: z._default(z.enum(['aws', 'file']), 'aws'),
  SECRETS_PREFIX: z.optional(z.string()),
  LOCAL_SECRETS_FILE: z._default(z.string(), '.local/secrets.json'),
  SECRETS_MAX_AGE_SECONDS: seconds(300),
  /** Base of the callback URLs handed to Apace (the API Gateway stage URL or a custom domain). */
  PUBLIC_BASE_URL: z._default(z.url(), 'http://127.0.0.1:3000'),
  /** How long after an `allow_refund: true` answer Apace may still pay out (DESIGN §2.3). */
  APACE_CLAIM_WINDOW_SECONDS: seconds(900),
  /** How long callback tokens stay valid after the offer expires (webhook retries arrive late). */
  APACE_CALLBACK_GRACE_SECONDS: seconds(7 * 24 * 3600),
});

export type RuntimeConfig = z.infer<typeof schema> & { secretsPrefix: string };

export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  const result = schema.safeParse(env);
  if (!result.success) throw new ConfigurationError(`bad environment: ${describeIssues(result.error.issues)}`);
  const config = result.data;
  return { ...config, secretsPrefix: config.SECRETS_PREFIX ?? `refund-relay/${config.STAGE}/` };
}
