import type { StoredIsolation } from '../../lambdas/store/order-store';
import type { CommandResult } from './commands';
import { oneLine, table } from './format';
import { OpsError, type OpsTarget } from './target';

/** How long ago, readably: `3d 4h`, `12m`. */
function age(sinceIso: string, now: Date): string {
  const seconds = Math.max(0, Math.round((now.getTime() - Date.parse(sinceIso)) / 1000));
  const [days, hours, minutes] = [Math.floor(seconds / 86_400), Math.floor((seconds % 86_400) / 3600), Math.floor((seconds % 3600) / 60)];
  if (days > 0) return `${days}d ${hours}h`;
  if (hours > 0) return `${hours}h ${minutes}m`;
  return minutes > 0 ? `${minutes}m` : `${seconds}s`;
}

/** The Ap21 orders and returns the poller set aside, for `manual-review` (docs/design.md §2.5). */
export async function ap21Isolations(target: OpsTarget, now: Date): Promise<{ readonly text: string[]; readonly json: unknown[] }> {
  const isolations = await target.store.listIsolations('ap21');
  const json = isolations.map((isolation) => ({
    kind: 'ap21_isolation',
    subject: isolation.subject,
    ap21OrderId: isolation.attributes.ap21OrderId ?? null,
    orderNumber: isolation.attributes.orderNumber ?? null,
    since: isolation.since,
    ageSeconds: Math.max(0, Math.round((now.getTime() - Date.parse(isolation.since)) / 1000)),
    reason: isolation.reason,
  }));
  if (isolations.length === 0) return { text: [], json };
  const rows = table([
    ['since', 'age', 'set aside', 'ap21 order', 'order number', 'reason'],
    ...isolations.map((isolation) => [
      isolation.since,
      age(isolation.since, now),
      isolation.subject,
      isolation.attributes.ap21OrderId ?? '-',
      isolation.attributes.orderNumber ?? '-',
      oneLine(isolation.reason),
    ]),
  ]);
  const header = `${isolations.length} Ap21 order(s) or return(s) set aside by the poller in ${target.name} (each is tried again when it changes in Ap21; now: npm run ops -- retry-ap21 <ap21 order>)`;
  return { text: ['', header, ...rows.map((row) => `  ${row}`)], json };
}

/** The person each set-aside order belongs to, by Ap21 order id. */
function retryableOrders(isolations: readonly StoredIsolation[]): Map<string, string | undefined> {
  const orders = new Map<string, string | undefined>();
  for (const { attributes } of isolations) {
    if (attributes.ap21OrderId !== undefined) orders.set(attributes.ap21OrderId, attributes.personId ?? orders.get(attributes.ap21OrderId));
  }
  return orders;
}

/**
 * `retry-ap21 <ap21OrderId>` (or `--all`): reads a set-aside order from Ap21 now and ingests its
 * returns as the poller would, releasing what goes through; what still fails stays, with its reason.
 */
export async function retryAp21(target: OpsTarget, which: { readonly orderId?: string; readonly all: boolean }): Promise<CommandResult> {
  const isolations = await target.store.listIsolations('ap21');
  const orders = retryableOrders(isolations);
  const chosen = which.all ? [...orders.keys()] : [which.orderId ?? ''];
  if (!which.all && !orders.has(chosen[0]!)) {
    throw new OpsError(`Ap21 order ${JSON.stringify(which.orderId)} has nothing set aside in ${target.name}; see: npm run ops -- manual-review`);
  }
  const poller = target.ap21Poller();
  const lines: string[] = [];
  const results: unknown[] = [];
  for (const orderId of chosen) {
    const personId = orders.get(orderId);
    if (personId === undefined) {
      lines.push(`Ap21 order ${orderId}: its person id could not be read; correct the order in Ap21 (any change lists it again)`);
      results.push({ ap21OrderId: orderId, retried: false });
      continue;
    }
    const result = await poller.retryOrder(personId, orderId);
    const still = result.stillIsolated.map((isolation) => `${isolation.subject}: ${oneLine(isolation.reason, 200)}`);
    const read = 'unread' in result.order ? `could not be read: ${oneLine(result.order.unread, 200)}` : `read ${result.order.orderNumber}`;
    const outcomes = Object.entries(result.outcomes).map(([kind, count]) => `${kind} ${count}`);
    lines.push(
      `Ap21 order ${orderId}: ${read}; ${outcomes.length ? outcomes.join(', ') : 'no returns ingested'}; released ${result.released}; ${still.length ? `still set aside:` : 'nothing left set aside'}`,
      ...still.map((entry) => `  ${entry}`),
    );
    results.push({ ap21OrderId: orderId, retried: true, ...result });
  }
  if (chosen.length === 0) lines.push(`nothing set aside in ${target.name}`);
  return { text: lines.join('\n'), json: results, exitCode: results.some((entry) => (entry as { stillIsolated?: unknown[] }).stillIsolated?.length) ? 2 : 0 };
}
