import { resolve } from 'node:path';
import { SIMULATORS } from '../simulators/registry';

/**
 * The local runtime's environment (docs/design.md §5): the same variable names as the Lambdas' environment
 * in AWS. Anything the engineer already exported wins.
 */
export interface LocalSettings {
  readonly port: number;
  readonly dynamoPort: number;
  readonly simulatorPort: number;
  readonly dataDir: string;
  /** How often the in-process sweeper looks for due work. */
  readonly sweepIntervalMs: number;
  /** How often the in-process Ap21 poller reads changed orders. */
  readonly pollIntervalMs: number;
}

export function localSettings(env: NodeJS.ProcessEnv = process.env): LocalSettings {
  return {
    port: Number(env.PORT ?? 3000),
    dynamoPort: Number(env.DYNAMODB_PORT ?? 4567),
    simulatorPort: Number(env.SIMULATOR_PORT ?? 4010),
    sweepIntervalMs: Number(env.SWEEP_INTERVAL_MS ?? 2000),
    pollIntervalMs: Number(env.AP21_POLL_INTERVAL_MS ?? 5000),
    dataDir: resolve(env.LOCAL_DATA_DIR ?? '.local'),
  };
}

export function applyLocalEnvironment(settings: LocalSettings, env: NodeJS.ProcessEnv = process.env): void {
  const defaults: Record<string, string> = {
    STAGE: 'local',
    TABLE_NAME: 'refund-relay-local',
    DYNAMODB_ENDPOINT: `http://127.0.0.1:${settings.dynamoPort}`,
    SECRETS_SOURCE: 'file',
    LOCAL_SECRETS_FILE: resolve(settings.dataDir, 'secrets.json'),
    LOCAL_OFFER_EVENTS_FILE: resolve(settings.dataDir, 'offer-events.jsonl'),
    PUBLIC_BASE_URL: `http://127.0.0.1:${settings.port}`,
    AWS_REGION: 'ap-southeast-2',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    POWERTOOLS_SERVICE_NAME: 'refund-relay',
    // Provider base URLs: the simulators `npm start` runs, unless the engineer points elsewhere.
    ...simulatorUrls(settings),
    // Locally the dispatcher retries within seconds, not minutes.
    DISPATCH_BASE_DELAY_MS: '500',
    DISPATCH_MAX_DELAY_MS: '10000',
    DISPATCH_LEASE_MS: '30000',
    DISPATCH_SYNC_DELAY_MS: '5000',
    // Locally every caller is on loopback: Refundid's calls and PayPro's IPNs come from here.
    REFUNDID_ALLOWED_IPS: '127.0.0.1',
    PAYPRO_IPN_SOURCE_IPS: '127.0.0.1',
    AP21_PUSH_ALLOWED_IPS: '127.0.0.1,::1',
    // Ap21 keeps a card's last four digits in the payment's Reference here (`************4242`), so
    // such a card's returns can be offered through Apace; a Reference of any other shape cannot.
    AP21_CARD_LAST_FOUR_FIELD: 'Reference',
    // Which reversal provider refunds which Ap21 payment (in AWS this is the retailer's mapping).
    AP21_PAYMENT_PROVIDERS: 'MerchantId:Refundid=refundid,CardType:Refundid=refundid,CardType:VISA=addon_payments,CardType:PAYPRO=paypro,CardType:OPTTY=optty',
  };
  for (const [name, value] of Object.entries(defaults)) env[name] ??= value;
}

export function simulatorUrl(settings: LocalSettings): string {
  return `http://127.0.0.1:${settings.simulatorPort}`;
}

/** Each simulator's base URLs on the local host (simulators/registry.ts), and its other local settings. */
function simulatorUrls(settings: LocalSettings): Record<string, string> {
  const base = simulatorUrl(settings);
  const env: Record<string, string> = {};
  for (const entry of Object.values(SIMULATORS)) {
    for (const [variable, prefix] of Object.entries(entry.urls ?? {})) env[variable] = `${base}/${prefix}`;
    Object.assign(env, entry.env);
  }
  return env;
}
