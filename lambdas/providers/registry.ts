/**
 * Every party refund-relay talks to, one line each (docs/design.md §4.1, "Adding a provider"). Everything
 * else that names providers is derived from this list: the payment providers of an order's ledger,
 * the card-reversal connectors and their preference, the channels that can wait for a receipt, the
 * secret names, the actors of the audit trail, the base-URL variables a stack hands each function.
 *
 * Pure data on purpose: the domain reads it, so it imports nothing. What a provider *does* (its
 * settings, connector and inbound check) is its folder's `provider.ts`, listed in `./modules.ts`.
 *
 * One name per provider: its `id` (snake_case, stored in DynamoDB and in stage configuration). Its
 * folder under `lambdas/providers/` is the same name in kebab-case and its secret the same name in
 * camelCase (`providerFolder`, `secretNameOf`): `addon_payments` → `addon-payments/`, secret
 * `addonPayments`.
 */
export interface ProviderIdentity {
  readonly id: string;
  /** What operators read (the console, the ops CLI). */
  readonly label: string;
  /**
   * What refund-relay does with it: `reversal` reverses card payments through its API; `offer`
   * makes instant refund offers (Apace); `portal` is a returns portal that pays the customer itself
   * (Refundid); `erp` is the source of orders and returns (Ap21).
   */
  readonly role: 'reversal' | 'offer' | 'portal' | 'erp';
  /** The base-URL variables (docs/design.md §5) a function calling it needs. */
  readonly urlVariables: readonly string[];
  /**
   * For a provider that takes an order's payments: which payment a refund is taken from first when
   * an order was paid several ways (lower first; `other` payments rank 1). Absent: takes no payments.
   */
  readonly paymentPreference?: number;
}

export const PROVIDERS = [
  { id: 'apace', label: 'Apace', role: 'offer', urlVariables: ['APACE_API_URL'] },
  { id: 'addon_payments', label: 'Addon Payments (EPG)', role: 'reversal', urlVariables: ['ADDON_PAYMENTS_API_URL'], paymentPreference: 0 },
  { id: 'paypro', label: 'PayPro Global', role: 'reversal', urlVariables: ['PAYPRO_API_URL'], paymentPreference: 0 },
  { id: 'optty', label: 'Optty', role: 'reversal', urlVariables: ['OPTTY_API_URL', 'OPTTY_AUTH_URL'], paymentPreference: 0 },
  { id: 'ap21', label: 'Apparel21', role: 'erp', urlVariables: ['AP21_API_URL'] },
  { id: 'refundid', label: 'Refundid', role: 'portal', urlVariables: ['REFUNDID_API_URL'], paymentPreference: 2 },
] as const satisfies readonly ProviderIdentity[];

type Entry = (typeof PROVIDERS)[number];
export type ProviderId = Entry['id'];
/** A provider whose card payments refund-relay reverses through its API. */
export type ReversalProvider = Extract<Entry, { role: 'reversal' }>['id'];
/** Who took an order's payment: a provider that takes payments, or `other` (refunded by an operator). */
export type PaymentProvider = Extract<Entry, { paymentPreference: number }>['id'] | 'other';

const ids = <T extends ProviderId>(keep: (entry: Entry) => boolean) => PROVIDERS.filter(keep).map((entry) => entry.id as T);

export const PROVIDER_IDS: readonly ProviderId[] = ids(() => true);
export const REVERSAL_PROVIDERS: readonly ReversalProvider[] = ids<ReversalProvider>((entry) => entry.role === 'reversal');
export const PAYMENT_PROVIDERS: readonly PaymentProvider[] = [...ids<Exclude<PaymentProvider, 'other'>>((entry) => 'paymentPreference' in entry), 'other'];

/** Rank of a payment's provider when a refund can come from several payments (lower first). */
export function paymentPreference(provider: PaymentProvider): number {
  if (provider === 'other') return 1;
  const entry: ProviderIdentity | undefined = PROVIDERS.find((candidate) => candidate.id === provider);
  return entry?.paymentPreference ?? 1;
}

export const isReversalProvider = (name: string): name is ReversalProvider => (REVERSAL_PROVIDERS as readonly string[]).includes(name);
export const isPaymentProvider = (name: string): name is PaymentProvider => (PAYMENT_PROVIDERS as readonly string[]).includes(name);

export function providerLabel(id: string): string {
  return PROVIDERS.find((entry) => entry.id === id)?.label ?? id;
}

/** Snake to camel case: the provider's secret name (`addon_payments` → `addonPayments`). */
type Camel<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<Camel<Tail>>}` : S;
export type SecretName = Camel<ProviderId>;

export function secretNameOf<Id extends ProviderId>(id: Id): Camel<Id> {
  return id.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase()) as Camel<Id>;
}

/** Every provider's secret, each a JSON object (README, "Secrets"). */
export const SECRET_NAMES: readonly SecretName[] = PROVIDER_IDS.map(secretNameOf);

/** The provider's folder under lambdas/providers/ (and simulators/): its id in kebab-case. */
export function providerFolder(id: ProviderId): string {
  return id.replace(/_/g, '-');
}
