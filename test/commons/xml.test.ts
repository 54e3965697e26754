import { canonicalXml, childElements, childText, parseXml, toXml, XmlError } from '../../lambdas/commons/xml';

describe('strict XML', () => {
  it('reads the EPG refund response shape', () => {
    const root = parseXml(
      '<?xml version="1.0" encoding="UTF-8"?>\n<response operation-size="1"><operations><operation sorted-order="1"><amount>30.0</amount><message>Success &apos;Refund&apos; operation</message><status>SUCCESS</status></operation></operations><status>SUCCESS</status></response>',
    );
    expect(root.attributes['operation-size']).toBe('1');
    const operation = childElements(root.children[0]!, 'operation')[0]!;
    expect(childText(operation, 'message')).toBe("Success 'Refund' operation");
    expect(childText(root, 'status')).toBe('SUCCESS');
  });

  it('keeps CDATA and numeric character references, and ignores comments', () => {
    const root = parseXml('<a><!-- note --><b><![CDATA[x < y & z]]></b><c>&#233;&#x263A;</c><d/></a>');
    expect(childText(root, 'b')).toBe('x < y & z');
    expect(childText(root, 'c')).toBe('é☺');
    expect(childText(root, 'd')).toBe('');
  });

  it.each([
    ['a DOCTYPE with entity expansion', '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><a>&lol2;</a>'],
    ['an external entity', '<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><a>&xxe;</a>'],
    ['an undeclared entity', '<a>&lol;</a>'],
    ['a bare ampersand', '<a>fish & chips</a>'],
    ['a processing instruction', '<a><?php echo 1 ?></a>'],
    ['mismatched tags', '<a><b></a></b>'],
    ['an unclosed element', '<a><b></b>'],
    ['two roots', '<a/><b/>'],
    ['text outside the root', 'hello<a/>'],
    ['a duplicate attribute', '<a x="1" x="2"/>'],
    ['a NUL character reference', '<a>&#0;</a>'],
    ['empty input', ''],
    ['JSON', '{"a":1}'],
  ])('refuses %s', (_, source) => {
    expect(() => parseXml(source)).toThrow(XmlError);
  });

  it('refuses nesting deeper than the limit and documents larger than the byte limit, counting UTF-8 bytes', () => {
    expect(() => parseXml('<a>'.repeat(40) + '</a>'.repeat(40))).toThrow(/deeper/);
    expect(() => parseXml(`<a>${'é'.repeat(60)}</a>`, { maxDepth: 8, maxBytes: 100 })).toThrow(/larger than 100 bytes/);
    expect(parseXml(`<a>${'e'.repeat(60)}</a>`, { maxDepth: 8, maxBytes: 100 }).text).toHaveLength(60);
  });

  it('reads a real-sized Ap21 page (tens of thousands of elements) by default, and counts elements only when asked to', () => {
    const page = `<Orders>${`<Order>${'<OrderDetail><Id>1</Id><SkuId>2</SkuId><Quantity>1</Quantity><Value>9.90</Value></OrderDetail>'.repeat(500)}</Order>`.repeat(10)}</Orders>`;
    expect(parseXml(page).children).toHaveLength(10);
    expect(() => parseXml(page, { maxDepth: 32, maxBytes: 4 * 1024 * 1024, maxElements: 20_000 })).toThrow(/more than 20000 elements/);
  });

  it('quotes at most a short start of a name it refuses, however long the name', () => {
    const name = `x${'y'.repeat(100_000)}`;
    for (const source of [`<${name} a="1"`, `<a></${name}>`, `<a ${name}="1" ${name}="2"/>`, `<${name}>`]) {
      let message = '';
      try {
        parseXml(source);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).not.toBe('');
      expect(message.length).toBeLessThan(200);
    }
  });

  it('writes an element back in one canonical form, leaving out the children it is told to', () => {
    const one = parseXml('<Order  a="1"><RowNumber>3</RowNumber><Id> 7 </Id><Empty></Empty><T>x &amp; y</T></Order>');
    const two = parseXml('<Order a="1"><RowNumber>9</RowNumber><Id>7</Id><Empty/><T>x &amp; y</T></Order>');
    expect(canonicalXml(one, ['RowNumber'])).toBe('<Order a="1"><Id>7</Id><Empty/><T>x &amp; y</T></Order>');
    expect(canonicalXml(two, ['RowNumber'])).toBe(canonicalXml(one, ['RowNumber']));
  });

  it('writes escaped XML that reads back the same', () => {
    const xml = toXml('ReturnOrder', {
      OrderNumber: 'R1 <&>',
      OrderDetails: {
        OrderDetail: [
          { SkuId: 1784, Quantity: -1 },
          { SkuId: 1785, Quantity: -2 },
        ],
      },
      Missing: undefined,
    });
    expect(xml).toBe(
      '<ReturnOrder><OrderNumber>R1 &lt;&amp;&gt;</OrderNumber><OrderDetails><OrderDetail><SkuId>1784</SkuId><Quantity>-1</Quantity></OrderDetail><OrderDetail><SkuId>1785</SkuId><Quantity>-2</Quantity></OrderDetail></OrderDetails></ReturnOrder>',
    );
    const root = parseXml(xml);
    expect(childText(root, 'OrderNumber')).toBe('R1 <&>');
    expect(childElements(root.children[1]!, 'OrderDetail')).toHaveLength(2);
  });
});
