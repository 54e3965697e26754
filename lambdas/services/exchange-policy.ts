import * as z from 'zod/mini';
import { parseEnvironment } from '../commons/config';
import { DEFAULT_EXCHANGE_RULES, EXCHANGE_POLICIES, type ExchangePolicy } from '../domain/exchanges';

const schema = z.object({
  /** What an exchange refunds (docs/design.md §2.8): Ap21 returns and Refundid RMA lines alike. */
  EXCHANGE_POLICY: z._default(z.enum(EXCHANGE_POLICIES), DEFAULT_EXCHANGE_RULES.policy),
});

/** The stage's exchange policy (`EXCHANGE_POLICY`), for every path that books returns: Ap21's and Refundid's. */
export function loadExchangePolicy(env: NodeJS.ProcessEnv = process.env): ExchangePolicy {
  return parseEnvironment(schema, env, 'exchange ').EXCHANGE_POLICY;
}
