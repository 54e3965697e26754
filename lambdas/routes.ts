/**
 * The inbound routes of docs/design.md §3: the contract providers call. The local server and the CDK
 * stack both read this list, so a route exists in both or in neither.
 */
export interface RouteDefinition {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** Module under lambdas/functions exporting `handler`. */
  readonly fn: string;
  readonly caller: string;
}

export const ROUTES: readonly RouteDefinition[] = [
  { method: 'GET', path: '/apace/orders/{orderId}/refunds/{refundId}/verification', fn: 'apace-verification', caller: 'Apace' },
  { method: 'POST', path: '/apace/orders/{orderId}/refunds/{refundId}/notification', fn: 'apace-notification', caller: 'Apace' },
  { method: 'GET', path: '/health', fn: 'health', caller: 'anyone' },
  { method: 'GET', path: '/refundid/order', fn: 'refundid-order', caller: 'Refundid' },
  { method: 'POST', path: '/refundid/refund', fn: 'refundid-refund', caller: 'Refundid' },
  { method: 'POST', path: '/providers/paypro/ipn', fn: 'paypro-ipn', caller: 'PayPro' },
  { method: 'POST', path: '/providers/optty/notifications', fn: 'optty-notification', caller: 'Optty' },
  { method: 'POST', path: '/providers/addon-payments/status', fn: 'addon-payments-status', caller: 'EPG' },
  { method: 'POST', path: '/ap21/returns', fn: 'ap21-returns', caller: 'The Ap21-side integration' },
];
