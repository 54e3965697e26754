import fc from 'fast-check';
import { parseXml } from '../../../lambdas/commons/xml';
import { readOrder, readReturn } from '../../../lambdas/providers/ap21/schemas';
import { Ap21Simulator } from '../../../simulators/ap21/simulator';
import { orderDocument } from '../../../simulators/ap21/documents';
import { parseAp21Push } from '../../../lambdas/services/ap21-push';

/**
 * Ap21 adds elements from version to version, and installations carry their own: no document may
 * fail, or read differently, because of an element refund-relay does not read, wherever it sits
 * (docs/design.md §2.5). Checked on the documents the simulator serves as the guide shows them.
 */
const sim = new Ap21Simulator({ basic: { username: 'u', password: 'p' }, timeZone: 'Australia/Melbourne' });
const order = sim.addOrder({
  lines: [
    { skuId: '21503', quantity: 2, priceMinor: 5990, discountMinor: 500 },
    { skuId: '880', quantity: 1, priceMinor: 4500 },
  ],
});
const ret = sim.addRefundidReturn(order.orderId, {
  lines: [
    { skuId: '21503', quantity: -1 },
    { skuId: '880', quantity: -1 },
  ],
});
const context = { currency: 'AUD', timeZone: 'Australia/Melbourne' };
const returnXml = sim.returnDocument(ret.returnId, 4);
const orderXml = orderDocument(order, 1, sim.person(order.personId), { ...context, version: 4 });

const namesIn = (xml: string) => new Set([...xml.matchAll(/<\/?([A-Za-z][\w:.-]*)/g)].map((match) => match[1]!));
const known = new Set([...namesIn(returnXml), ...namesIn(orderXml), 'OrigOrderId']);

/** Places between two tags inside the root where a sibling element may stand (not inside a leaf). */
function slots(xml: string): number[] {
  const places: number[] = [];
  const rootEnd = xml.lastIndexOf('</');
  for (let i = xml.indexOf('>') + 1; i < rootEnd; i++) {
    if (xml[i] !== '<' || xml[i - 1] !== '>') continue;
    const before = xml.slice(xml.lastIndexOf('<', i - 1), i);
    const after = xml.slice(i, xml.indexOf('>', i) + 1);
    const openLeaf = !before.startsWith('</') && !before.endsWith('/>') && after.startsWith('</');
    if (!openLeaf) places.push(i);
  }
  return places;
}

const unknownName = fc.stringMatching(/^[A-Z][A-Za-z0-9]{0,15}$/).filter((name) => !known.has(name));
// eslint-disable-next-line no-control-regex -- characters XML 1.0 cannot carry are left out of generated text
const safeText = fc.string({ maxLength: 20 }).map((text) => text.replace(/[<&>\u0000-\u0008\u000b\u000c\u000e-\u001f\ud800-\udfff\ufffe\uffff]/g, ''));
const attribute = fc.tuple(fc.stringMatching(/^[a-z]{1,6}$/), fc.stringMatching(/^[A-Za-z0-9 ]{0,8}$/)).map(([name, value]) => ` ${name}="${value}"`);
const { element } = fc.letrec<{ element: string }>((tie) => ({
  element: fc
    .tuple(
      unknownName,
      fc.option(attribute, { nil: '' }),
      fc.oneof(
        { depthSize: 'small', maxDepth: 3 },
        safeText,
        fc.array(tie('element'), { maxLength: 3 }).map((children) => children.join('')),
      ),
      fc.boolean(),
    )
    .map(([name, attrs, inner, selfClosing]) => (selfClosing && !inner ? `<${name}${attrs} />` : `<${name}${attrs}>${inner}</${name}>`)),
}));

/** `xml` with up to five unknown elements put at generated places. */
function withUnknown(xml: string) {
  const places = slots(xml);
  return fc
    .array(fc.tuple(fc.nat({ max: places.length - 1 }), element), { minLength: 1, maxLength: 5 })
    .map((insertions) =>
      [...insertions].sort(([a], [b]) => b - a).reduce((text, [slot, inserted]) => text.slice(0, places[slot]) + inserted + text.slice(places[slot]), xml),
    );
}

const runs = { numRuns: 300, seed: 2110 };

describe('Unknown Ap21 elements, anywhere', () => {
  it('never fail a pushed <ReturnOrder> nor change what is read from it', () => {
    const expected = parseAp21Push(returnXml);
    expect(expected).toMatchObject({ returnId: ret.returnId, origOrderNumber: order.orderNumber });
    fc.assert(
      fc.property(withUnknown(returnXml), (xml) => expect(parseAp21Push(xml)).toEqual(expected)),
      runs,
    );
  });

  it('never fail a return read from Ap21 nor change it', () => {
    const read = (xml: string) => readReturn(parseXml(xml), { ...context, paymentsVisible: true });
    const expected = read(returnXml);
    expect(expected.payments).toHaveLength(1);
    fc.assert(
      fc.property(withUnknown(returnXml), (xml) => expect(read(xml)).toEqual(expected)),
      runs,
    );
  });

  it('never fail an order read from Ap21 nor change it', () => {
    const read = (xml: string) => readOrder(parseXml(xml), context);
    const expected = read(orderXml);
    expect(expected.lines).toHaveLength(2);
    fc.assert(
      fc.property(withUnknown(orderXml), (xml) => expect(read(xml)).toEqual(expected)),
      runs,
    );
  });
});
