import { RemovalPolicy } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { PROVIDERS, type ProviderId } from '../lambdas/providers/registry';
import type { ExchangePolicy } from '../lambdas/domain/exchanges';

/**
 * Everything that differs between stages, in one typed file (docs/design.md §6). The account ids,
 * Elastic IP allocations, e-mail addresses, Ap21 host and push addresses, domain, hosted zone and
 * certificate below are PLACEHOLDERS, kept so that `cdk synth` works on a fresh clone: an engineer
 * replaces them with their own before the first deploy, and `npm run preflight -- --stage <s>`
 * lists every one still here, with its line (README, "Deploying a stage").
 */
export const STAGE_NAMES = ['dev', 'staging', 'prod'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

/** The base-URL variables of docs/design.md §5 (each provider's in lambdas/providers/registry.ts); connectors append their documented paths (no trailing slash). */
export type ProviderUrlVariable = (typeof PROVIDERS)[number]['urlVariables'][number];
export const PROVIDER_URL_VARIABLES: readonly ProviderUrlVariable[] = PROVIDERS.flatMap((provider) => provider.urlVariables);

/** The base URLs a function needs for each provider it calls. */
export const PROVIDER_URLS_BY_PROVIDER: Readonly<Record<ProviderId, readonly ProviderUrlVariable[]>> = Object.fromEntries(
  PROVIDERS.map((provider) => [provider.id, provider.urlVariables]),
) as unknown as Record<ProviderId, readonly ProviderUrlVariable[]>;

/** The AWS services the functions in the VPC call, which can be reached through interface endpoints. */
export const INTERFACE_ENDPOINT_SERVICES = ['secretsmanager', 'sqs'] as const;
export type InterfaceEndpointService = (typeof INTERFACE_ENDPOINT_SERVICES)[number];

export interface StageConfig {
  readonly stage: StageName;
  readonly account: string;
  readonly region: string;
  readonly providerUrls: Readonly<Record<ProviderUrlVariable, string>>;
  /**
   * Non-secret provider settings, as environment variables of the functions that call that
   * provider or hold its secret, e.g. Ap21's country code and time zone, or the currency of the
   * Apace vendor account (`APACE_CURRENCY`: Apace pays only in it; other refunds go to card reversal).
   */
  readonly providerSettings: Readonly<Partial<Record<ProviderId, Readonly<Record<string, string>>>>>;
  /**
   * Source addresses or CIDRs allowed to call an inbound path (a path of `lambdas/routes.ts`, path
   * parameters included). The API's resource policy denies every other address on that path; a
   * path not listed is open to all and its handler authenticates the caller. A path may be listed
   * before its route exists, so the route is protected from its first deploy.
   */
  readonly ipAllowlists: Readonly<Record<string, readonly string[]>>;
  readonly egress: {
    /** Availability zones the VPC's functions run in (one private and one public subnet each). */
    readonly availabilityZones: number;
    /**
     * NAT gateways, so egress IPs: one per availability zone keeps outbound calls working when a
     * zone fails; fewer (at least one) is cheaper, and the zones without one route through it.
     */
    readonly natGateways: number;
    /**
     * Pre-allocated Elastic IPs (`eipalloc-…`), one per NAT gateway, so the egress IPs Ap21 and the
     * providers allowlist survive a rebuild. Their addresses are read from AWS at deploy time
     * (output `EgressIps`), never typed here. Absent: the stack allocates them and retains them
     * when the stack is deleted (move their ids here to keep them across a rebuild).
     */
    readonly elasticIpAllocationIds?: readonly string[];
    /**
     * AWS services reached through interface endpoints inside the VPC. A service not listed is
     * called through the NAT gateways (over TLS, but across the internet and at NAT data prices);
     * each listed service costs one endpoint per availability zone (README, "What a stage costs").
     */
    readonly interfaceEndpoints: readonly InterfaceEndpointService[];
  };
  /**
   * `apace_first`: offer an Apace instant refund and fall back to card reversal (docs/design.md §2.2);
   * `reversal_only`: reverse on the card straight away. For the dispatcher, which lands later:
   * no runtime variable carries it yet.
   */
  readonly routingPolicy: 'apace_first' | 'reversal_only';
  /**
   * What an exchange refunds (`EXCHANGE_POLICY`, docs/design.md §2.8), the same for Ap21 returns
   * and Refundid RMAs, so every function gets it: `no_money` (an exchange moves no money),
   * `refund_difference` (also the value a return has beyond its exchange order), `refund` (the
   * rule off: every return refunded in money).
   */
  readonly exchangePolicy: ExchangePolicy;
  readonly alarmEmail: string;
  /** What happens to the table, created secrets, keys and logs when the stack is deleted. */
  readonly removalPolicy: RemovalPolicy.RETAIN | RemovalPolicy.DESTROY;
  readonly tableDeletionProtection: boolean;
  readonly tableEncryption: 'aws-managed' | 'customer-managed';
  /**
   * `create`: the stack creates each provider secret holding `{}` and deletes it with the stack
   * (only with removalPolicy DESTROY: a retained secret would keep its name and make the next
   * deploy after `cdk destroy` fail). `import`: they exist before the first deploy and outlive
   * the stack (`npm run preflight` names the ones missing).
   */
  readonly providerSecrets: 'create' | 'import';
  /** The customer-managed KMS key the imported secrets are encrypted with, when not the default `aws/secretsmanager`. */
  readonly providerSecretsKeyArn?: string;
  /**
   * The custom domain in front of the API. Callback URLs handed to Apace must outlive the API, so
   * a stage without one hands out execute-api URLs that a rebuild breaks. With `hostedZone` (a
   * Route 53 public zone the domain is in) the stack creates the alias record; without it, the
   * stack output `CustomDomainTarget` and the preflight say which record to create.
   */
  readonly customDomain?: {
    readonly domainName: string;
    readonly certificateArn: string;
    readonly hostedZone?: { readonly id: string; readonly name: string };
  };
  readonly apiThrottle: { readonly rateLimit: number; readonly burstLimit: number };
  readonly logRetention: RetentionDays;
  readonly logLevel: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  readonly apaceClaimWindowSeconds: number;
  readonly alarmThresholds: {
    /** Share of inbound calls answered 5xx in 5 minutes… */
    readonly api5xxPercent: number;
    /** …once at least this many were: one error in a quiet hour is not an incident. */
    readonly api5xxMinimumCount: number;
    readonly pollerLagSeconds: number;
    /** 4xx answers in 5 minutes on the allowlisted paths (a provider moved, or a placeholder allowlist). */
    readonly allowlistedRoute4xx: number;
  };
}

/** PayPro's documented IPN senders (docs/providers.md §5), the same for test and live orders. */
const PAYPRO_IPN_SENDERS = ['198.199.123.239', '157.230.8.40', '2604:a880:400:d0::1843:7001', '2604:a880:400:d1::b6c:c001'];
const REFUNDID_PRODUCTION = ['34.87.219.187'];
const REFUNDID_SANDBOX = ['34.116.107.90'];
/** PLACEHOLDER (TEST-NET-3): each retailer names the addresses its Ap21 integration pushes from. */
const AP21_PUSH_PLACEHOLDER = ['203.0.113.21'];

/**
 * PLACEHOLDER: each retailer's own Ap21 installation. AP21_PAYMENT_PROVIDERS (which gateway refunds
 * which payment) must list the retailer's SPayGate entries before refunds can go out by card
 * reversal; until then only Refundid payments are recognised and other refunds wait for an operator.
 * AP21_POLL_RETURNS_READ: `on_sign` reads an order's returns only where the changed-orders list
 * shows a sign of one (docs/design.md §2.4); an installation whose list shows no returns needs
 * `always` — check with the retailer before going live.
 * When money moves (docs/design.md §2.9): AP21_PAY_ON_RECEIPT lists the channels paid only once
 * Ap21 shows the return received (empty: every channel pays when the return is seen, the default);
 * AP21_RECEIVED_RETURN_STATUSES are the return statuses that mean received (UNCONFIRMED names,
 * docs/providers.md §3 — check with the retailer); AP21_RECEIPT_WAIT_DAYS bounds the wait.
 */
const AP21_SETTINGS = {
  AP21_COUNTRY_CODE: 'AU',
  AP21_TIME_ZONE: 'Australia/Melbourne',
  AP21_CURRENCY: 'AUD',
  AP21_POLL_RETURNS_READ: 'on_sign',
  AP21_PAY_ON_RECEIPT: '',
  AP21_RECEIVED_RETURN_STATUSES: 'Return Received,Completed',
  AP21_RECEIPT_WAIT_DAYS: '30',
};

/**
 * The stage's Apace vendor account pays in AUD (`refund_amount` is a bare decimal, docs/providers.md
 * §1); `APACE_PROCESSED_WITHIN_SECONDS`: when a refund paid at `pending` is followed up with Apace.
 * `APACE_OFFER_DELIVERY`: how an offer reaches the customer, `email` (Apace's Send Refund Offer
 * Email) or `event` (an EventBridge bus the retailer's messaging subscribes to, docs/design.md §2.6).
 * PLACEHOLDER: each retailer adds `APACE_ORDER_URL_TEMPLATE`, `APACE_REDIRECT_URL_TEMPLATE` and
 * `APACE_ITEM_URL_TEMPLATE` for its shop (`{orderNumber}`, `{sku}`).
 */
const APACE_SETTINGS = { APACE_CURRENCY: 'AUD', APACE_PROCESSED_WITHIN_SECONDS: '3600', APACE_OFFER_DELIVERY: 'email' };

const allowlists = (refundid: readonly string[], ap21: readonly string[]): StageConfig['ipAllowlists'] => ({
  '/refundid/order': refundid,
  '/refundid/refund': refundid,
  '/providers/paypro/ipn': PAYPRO_IPN_SENDERS,
  '/ap21/returns': ap21,
});

/**
 * Hosts as providers.md documents them (scheme + host; Ap21 adds its fixed /RetailAPI prefix).
 * UNCONFIRMED there, so check before use: Apace's production host and Refundid's sandbox API
 * host. PLACEHOLDER: the Ap21 host, which is each retailer's own. PayPro has no sandbox host;
 * test orders go to the live store.
 */
const SANDBOX_URLS: StageConfig['providerUrls'] = {
  APACE_API_URL: 'https://sandbox.api.apacepayments.com',
  AP21_API_URL: 'https://retailapi-test.example.com/RetailAPI',
  ADDON_PAYMENTS_API_URL: 'https://checkout-stg.addonpayments.com',
  PAYPRO_API_URL: 'https://store.payproglobal.com/api',
  OPTTY_API_URL: 'https://api.qa.optty.com',
  OPTTY_AUTH_URL: 'https://auth.qa.optty.com',
  REFUNDID_API_URL: 'https://api.sandbox.refundid.com',
};

const PRODUCTION_URLS: StageConfig['providerUrls'] = {
  APACE_API_URL: 'https://api.apacepayments.com',
  AP21_API_URL: 'https://retailapi.example.com/RetailAPI',
  ADDON_PAYMENTS_API_URL: 'https://checkout.addonpayments.com',
  PAYPRO_API_URL: 'https://store.payproglobal.com/api',
  OPTTY_API_URL: 'https://api.optty.com',
  OPTTY_AUTH_URL: 'https://auth.optty.com',
  REFUNDID_API_URL: 'https://api.refundid.com',
};

export const STAGES: Readonly<Record<StageName, StageConfig>> = {
  dev: {
    stage: 'dev',
    account: '111111111111',
    region: 'ap-southeast-2',
    providerUrls: SANDBOX_URLS,
    providerSettings: { ap21: AP21_SETTINGS, apace: APACE_SETTINGS },
    ipAllowlists: allowlists(REFUNDID_SANDBOX, AP21_PUSH_PLACEHOLDER),
    // The cheapest shape: one zone, one NAT gateway, AWS services through the NAT.
    egress: { availabilityZones: 1, natGateways: 1, interfaceEndpoints: [] },
    routingPolicy: 'apace_first',
    exchangePolicy: 'no_money',
    alarmEmail: 'refund-relay-dev-alarms@example.com',
    removalPolicy: RemovalPolicy.DESTROY,
    tableDeletionProtection: false,
    tableEncryption: 'aws-managed',
    providerSecrets: 'create',
    apiThrottle: { rateLimit: 20, burstLimit: 40 },
    logRetention: RetentionDays.TWO_WEEKS,
    logLevel: 'DEBUG',
    apaceClaimWindowSeconds: 900,
    alarmThresholds: { api5xxPercent: 5, api5xxMinimumCount: 5, pollerLagSeconds: 900, allowlistedRoute4xx: 5 },
  },
  staging: {
    stage: 'staging',
    account: '222222222222',
    region: 'ap-southeast-2',
    providerUrls: SANDBOX_URLS,
    providerSettings: { ap21: AP21_SETTINGS, apace: APACE_SETTINGS },
    ipAllowlists: allowlists(REFUNDID_SANDBOX, AP21_PUSH_PLACEHOLDER),
    // Functions in two zones like prod, but one NAT gateway (one egress IP) and AWS services through
    // it; give it prod's egress to rehearse prod's network (README, "What a stage costs").
    egress: { availabilityZones: 2, natGateways: 1, interfaceEndpoints: [] },
    routingPolicy: 'apace_first',
    exchangePolicy: 'no_money',
    alarmEmail: 'refund-relay-staging-alarms@example.com',
    removalPolicy: RemovalPolicy.RETAIN,
    tableDeletionProtection: false,
    tableEncryption: 'aws-managed',
    // Sandbox credentials outlive the stack: a `cdk destroy` and a redeploy keep them.
    providerSecrets: 'import',
    apiThrottle: { rateLimit: 50, burstLimit: 100 },
    logRetention: RetentionDays.ONE_MONTH,
    logLevel: 'INFO',
    apaceClaimWindowSeconds: 900,
    alarmThresholds: { api5xxPercent: 5, api5xxMinimumCount: 5, pollerLagSeconds: 900, allowlistedRoute4xx: 5 },
  },
  prod: {
    stage: 'prod',
    account: '333333333333',
    region: 'ap-southeast-2',
    providerUrls: PRODUCTION_URLS,
    providerSettings: { ap21: AP21_SETTINGS, apace: APACE_SETTINGS },
    ipAllowlists: allowlists(REFUNDID_PRODUCTION, AP21_PUSH_PLACEHOLDER),
    egress: {
      availabilityZones: 2,
      natGateways: 2,
      elasticIpAllocationIds: ['eipalloc-00000000000000001', 'eipalloc-00000000000000002'],
      // Secret values stay inside AWS's network. The dispatch doorbell (an order id) goes through
      // the NAT gateways; add 'sqs' to keep it inside too (README, "What a stage costs").
      interfaceEndpoints: ['secretsmanager'],
    },
    routingPolicy: 'apace_first',
    exchangePolicy: 'no_money',
    alarmEmail: 'refund-relay-prod-alarms@example.com',
    removalPolicy: RemovalPolicy.RETAIN,
    tableDeletionProtection: true,
    tableEncryption: 'customer-managed',
    providerSecrets: 'import',
    customDomain: {
      domainName: 'refunds.example.com',
      certificateArn: 'arn:aws:acm:ap-southeast-2:333333333333:certificate/00000000-0000-0000-0000-000000000000',
      hostedZone: { id: 'Z0000000000000000000', name: 'example.com' },
    },
    apiThrottle: { rateLimit: 100, burstLimit: 200 },
    logRetention: RetentionDays.ONE_YEAR,
    logLevel: 'INFO',
    apaceClaimWindowSeconds: 900,
    alarmThresholds: { api5xxPercent: 1, api5xxMinimumCount: 3, pollerLagSeconds: 600, allowlistedRoute4xx: 5 },
  },
};
