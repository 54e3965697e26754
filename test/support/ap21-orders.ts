import { ap21Origin, orderNumberKey } from '../../lambdas/domain/ap21-origin';
import { openOrder, type NewPayment, type Order } from '../../lambdas/domain/order';
import { Ap21Simulator, type SimOrder, type SimOrderSeed } from '../../simulators/ap21/simulator';
import { startSimulatorHost, type SimulatorHost } from '../../simulators/kit';
import type { OrderStore } from '../../lambdas/store/order-store';
import type { TestStack } from './stack';

export interface Ap21ForStack {
  readonly sim: Ap21Simulator;
  readonly host: SimulatorHost;
  /** The environment the order fetch reads Ap21 with. */
  readonly env: Readonly<Record<string, string>>;
}

/** An Ap21 simulator that accepts the stack's `ap21` secret, on its own loopback port. */
export async function startAp21ForStack(stack: TestStack): Promise<Ap21ForStack> {
  const { username, password } = stack.secrets.ap21 as { username: string; password: string };
  const sim = new Ap21Simulator({ basic: { username, password } });
  const host = await startSimulatorHost({ ap21: sim });
  return { sim, host, env: { AP21_API_URL: host.baseUrl('ap21'), AP21_COUNTRY_CODE: 'AU', AP21_MAX_CALLS_PER_SECOND: '50', AP21_TIMEOUT_MS: '2000' } };
}

/**
 * An order placed in Ap21 and opened in our ledger the way the poller opens it: ledger lines are
 * Ap21 `OrderDetail/Id`s, the origin names the Ap21 ids and order number (lambdas/domain/ap21-origin).
 */
export async function openAp21Order(
  store: OrderStore,
  sim: Ap21Simulator,
  seed: SimOrderSeed,
  payment: Omit<NewPayment, 'paymentId' | 'capturedMinor'> = { provider: 'addon_payments' },
): Promise<{ ap21: SimOrder; order: Order }> {
  const ap21 = sim.addOrder(seed);
  const order = openOrder(
    {
      orderId: `ap21-${ap21.orderId}`,
      currency: 'AUD',
      lines: ap21.lines.map((line) => ({
        lineId: line.lineId,
        quantity: line.quantity,
        valueMinor: line.quantity * line.priceMinor,
        sku: line.skuId,
        ...(line.productName !== undefined && { title: line.productName }),
      })),
      payments: ap21.payments.map((paid) => ({
        ...payment,
        paymentId: paid.paymentId,
        capturedMinor: paid.amountMinor,
        ...(paid.stan !== undefined && payment.transactionId === undefined && { transactionId: paid.stan }),
      })),
      ...(ap21.email !== undefined && { customer: { email: ap21.email } }),
      origin: ap21Origin({ personId: ap21.personId, orderId: ap21.orderId, orderNumber: ap21.orderNumber }),
      lookupKey: orderNumberKey(ap21.orderNumber),
    },
    new Date().toISOString(),
  );
  await store.putOrder(order);
  return { ap21, order };
}
