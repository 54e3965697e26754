/**
 * The inbound routes of DESIGN §3: the contract providers call. The local server and the CDK
 * stack both read this list, so a route exists in both or in neither.
 */
export interface RouteDefinition {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** Module under lambdas/functions exporting `handler`. */
  readonly fn: string;
  readonly caller: string;
  /**
   * The variable the handler reads its source-address allowlist from. In AWS the stack fills it
   * from the stage's `ipAllowlists` entry for this path (empty when there is none: refuse all).
   */
  readonly sourceIpAllowlist?: string;
}

export const ROUTES: readonly RouteDefinition[] = [
  { method: 'GET', path: '/apace/orders/{orderId}/refunds/{refundId}/verification', fn: 'apace-verification', caller: 'Apace' },
  { method: 'POST', path: '/apace/orders/{orderId}/refunds/{refundId}/notification', fn: 'apace-notification', caller: 'Apace' },
  { method: 'GET', path: '/health', fn: 'health', caller: 'anyone' },
  { method: 'POST', path: '/ap21/returns', fn: 'ap21-returns', caller: 'The Ap21-side integration', sourceIpAllowlist: 'AP21_PUSH_ALLOWED_IPS' },
];
