import { REVERSAL_PROVIDERS, type ProviderId } from '../lambdas/providers/registry';
import { DISPATCH_BUDGET } from './dispatch-queue';

/**
 * Every Lambda the stack deploys. Adding one is one entry here (and, for an inbound route, one in
 * `lambdas/routes.ts`): its role, environment, network placement, log group, alarm and dashboard
 * widgets follow from the entry.
 */
export interface FunctionDefinition {
  /** Module `lambdas/functions/<name>.ts` exporting `handler`. */
  readonly name: string;
  /** Provider secrets it reads; its role can read these and no others. */
  readonly secrets: readonly ProviderId[];
  /**
   * Providers it calls. A function that calls out runs in the private subnets so its traffic
   * leaves through the NAT gateways' static IPs, and gets those providers' base URLs.
   */
  readonly callsOut: readonly ProviderId[];
  /** Providers whose stage settings it reads without calling them or reading their secrets. */
  readonly settings?: readonly ProviderId[];
  readonly table: 'none' | 'read' | 'readWrite';
  /** The outbox doorbell (docs/design.md §2.4): API handlers `send`, the dispatcher `consume`s. */
  readonly dispatchQueue?: 'send' | 'consume';
  /**
   * Publishes Apace offer events (`APACE_OFFER_DELIVERY=event`, docs/design.md §2.6): it gets the
   * stage's offer bus in `APACE_OFFER_EVENT_BUS` and `events:PutEvents` on that bus only.
   */
  readonly offerEvents?: 'publish';
  readonly memoryMb: number;
  /** An API function's must stay within API Gateway's 29 s (its handler's deadline is shorter still). */
  readonly timeoutSeconds: number;
  /**
   * EventBridge schedule expression, e.g. `rate(1 minute)` for the sweeper and the poller. A
   * scheduled run is never retried or delivered late: the next one comes within the minute.
   */
  readonly schedule?: string;
  /**
   * A handler that checks its caller's address itself gets the stage's allowlist of this route
   * path (`ipAllowlists`, the list the API's resource policy enforces) in this variable.
   */
  readonly sourceAllowlist?: { readonly variable: string; readonly path: string };
}

export const FUNCTIONS: readonly FunctionDefinition[] = [
  { name: 'apace-verification', secrets: ['apace'], callsOut: [], table: 'readWrite', memoryMb: 512, timeoutSeconds: 10 },
  { name: 'apace-notification', secrets: ['apace'], callsOut: [], table: 'readWrite', memoryMb: 512, timeoutSeconds: 10 },
  { name: 'health', secrets: [], callsOut: [], table: 'none', memoryMb: 256, timeoutSeconds: 3 },
  // The order fetch reads Ap21 (each read capped at 8 s) from the static egress IPs, and opens the
  // ledger of an order refund-relay has not seen yet.
  {
    name: 'refundid-order',
    secrets: ['refundid', 'ap21'],
    callsOut: ['ap21'],
    table: 'readWrite',
    memoryMb: 512,
    timeoutSeconds: 20,
    sourceAllowlist: { variable: 'REFUNDID_ALLOWED_IPS', path: '/refundid/order' },
  },
  {
    name: 'refundid-refund',
    secrets: ['refundid'],
    callsOut: [],
    table: 'readWrite',
    memoryMb: 512,
    timeoutSeconds: 10,
    sourceAllowlist: { variable: 'REFUNDID_ALLOWED_IPS', path: '/refundid/refund' },
  },
  { name: 'paypro-ipn', secrets: ['paypro'], callsOut: [], table: 'readWrite', memoryMb: 512, timeoutSeconds: 10 },
  // Re-reads Optty's transaction details (OPTTY_TIMEOUT_MS, 10 s by default, plus a token request),
  // cut short at the handler's deadline so the answer beats API Gateway's 29 s.
  { name: 'optty-notification', secrets: ['optty'], callsOut: ['optty'], table: 'readWrite', memoryMb: 512, timeoutSeconds: 28 },
  { name: 'addon-payments-status', secrets: [], callsOut: [], table: 'readWrite', memoryMb: 256, timeoutSeconds: 10 },
  // The event source's maxConcurrency keeps a backlog from stampeding the providers (lib/dispatch-queue.ts).
  {
    name: 'dispatcher',
    // Apace's offers and every card-reversal provider of lambdas/providers/registry.ts.
    secrets: ['apace', ...REVERSAL_PROVIDERS],
    callsOut: ['apace', ...REVERSAL_PROVIDERS],
    // Ap21's receipt rules: a card reversal after Apace may wait for the return (docs/design.md §2.9).
    settings: ['ap21'],
    table: 'readWrite',
    dispatchQueue: 'consume',
    offerEvents: 'publish',
    memoryMb: 512,
    timeoutSeconds: DISPATCH_BUDGET.functionTimeout.toSeconds(),
  },
  // Reads Apace's own record of a refund whose webhook contradicted what we knew, and of one whose
  // `processed` is overdue, and applies stored notifications again (docs/design.md §2.5).
  {
    name: 'sweeper',
    secrets: ['apace'],
    callsOut: ['apace'],
    table: 'readWrite',
    dispatchQueue: 'send',
    memoryMb: 256,
    timeoutSeconds: 30,
    schedule: 'rate(1 minute)',
  },
  // A run stops after AP21_POLL_MAX_SECONDS (50 s), before the next one starts. Two runs that
  // overlap anyway are safe (ingestion is idempotent, the watermark moves by a conditional write),
  // so no reserved concurrency, which a new account's concurrency quota of 10 cannot give.
  {
    name: 'ap21-poller',
    secrets: ['ap21'],
    callsOut: ['ap21'],
    table: 'readWrite',
    dispatchQueue: 'send',
    memoryMb: 512,
    timeoutSeconds: 120,
    schedule: 'rate(1 minute)',
  },
  // Reads the pushed return from Ap21 before answering, so it calls out (static egress IPs).
  {
    name: 'ap21-returns',
    secrets: ['ap21'],
    callsOut: ['ap21'],
    table: 'readWrite',
    dispatchQueue: 'send',
    memoryMb: 512,
    timeoutSeconds: 20,
    sourceAllowlist: { variable: 'AP21_PUSH_ALLOWED_IPS', path: '/ap21/returns' },
  },
];
