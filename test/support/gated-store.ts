import type { OrderStore } from '../../lambdas/store/order-store';

/**
 * The store, except that the first write of `event` through it waits for `before` to run: forces
 * one interleaving of two writers (e.g. a read noting the receipt between the dispatcher's
 * decision and its write), so a race test does not depend on timing.
 */
export function gatedStore(store: OrderStore, event: string, before: () => Promise<unknown>): OrderStore {
  let opened = false;
  return new Proxy(store, {
    get(target, name, receiver) {
      if (name !== 'applyEvent') return Reflect.get(target, name, receiver) as unknown;
      return async (...args: Parameters<OrderStore['applyEvent']>) => {
        if (args[2] === event && !opened) {
          opened = true;
          await before();
        }
        return target.applyEvent(...args);
      };
    },
  });
}

/**
 * The store, except that its first `createRefund` waits for `before` to run: the caller's read,
 * then another writer, then its write (e.g. a Refundid push and the poller booking one payout).
 */
export function gatedCreateStore(store: OrderStore, before: () => Promise<unknown>): OrderStore {
  let opened = false;
  return new Proxy(store, {
    get(target, name, receiver) {
      if (name !== 'createRefund') return Reflect.get(target, name, receiver) as unknown;
      return async (...args: Parameters<OrderStore['createRefund']>) => {
        if (!opened) {
          opened = true;
          await before();
        }
        return target.createRefund(...args);
      };
    },
  });
}
