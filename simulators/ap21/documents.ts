import { toXml, type XmlValue } from '../../lambdas/commons/xml';
import { formatDecimal } from '../../lambdas/domain/money';
import { toAp21DateTime } from '../../lambdas/providers/ap21/schemas';
import { lineValue, linesTotal, type SimLine, type SimLineSeed, type SimOrder, type SimPayment, type SimPerson, type SimReturn } from './model';

/**
 * The documents the Ap21 simulator serves, element for element as the Retail API guide 2025.1
 * shows them (docs/providers.md §3): an order of the changed-orders list (pp.126–130), a return
 * (pp.150–151) and a person (pp.78–80), with every documented element a GET answers, the empty
 * ones included, and the payload-version rules of each. Real Ap21 sends all of this; refund-relay
 * reads a few fields, so the tests must see the rest to prove it is ignored.
 */

export interface DocumentContext {
  readonly currency: string;
  readonly timeZone: string;
  /** Payload version from the request's `Accept: version_n` (none → 1). */
  readonly version: number;
}

const WAREHOUSE_ID = '4141';
const RETURN_WAREHOUSE_ID = '9441';
const TAX_PERCENT = '10';

function money(minor: number, context: DocumentContext): string {
  return formatDecimal({ minor, currency: context.currency });
}

function wallClock(epochMs: number, context: DocumentContext): string {
  return toAp21DateTime(new Date(epochMs).toISOString(), context.timeZone);
}

/** `<name a="…">inner</name>`; attribute values are the simulator's own, so only quotes and markup are dropped. */
export function withAttributes(name: string, attributes: Record<string, string | number>, inner: string): string {
  const written = Object.entries(attributes).map(([key, value]) => ` ${key}="${String(value).replace(/[<>&"]/g, '')}"`);
  return `<${name}${written.join('')}>${inner}</${name}>`;
}

/** The tax inside a tax-inclusive amount at TAX_PERCENT, rounded to minor units. */
const taxOf = (minor: number) => Math.round((minor * Number(TAX_PERCENT)) / (100 + Number(TAX_PERCENT)));

/** Stable product facts derived from the SKU when a seed leaves them out. */
function productOf(line: SimLineSeed) {
  const sku = Number(line.skuId);
  return {
    productId: String(3000 + (sku % 997)),
    colourId: String(4000 + (sku % 89)),
    productCode: line.productCode ?? `P${line.skuId}`.slice(0, 10),
    productName: line.productName ?? `PRODUCT ${line.skuId}`,
    colourCode: line.colourCode ?? 'BLK',
    colourName: line.colourName ?? 'BLACK',
    sizeCode: line.sizeCode ?? 'M',
    barcode: String(9300000000000 + sku),
  };
}

const phones = (home = '') => ({ Home: home, Mobile: '', Work: '' });

function address(person: { firstname: string; surname: string } | undefined, withContact: boolean): Record<string, XmlValue> {
  return {
    ...(withContact && { ContactName: person ? `${person.firstname} ${person.surname}` : '' }),
    AddressLine1: '37 Swan Street',
    AddressLine2: '',
    City: 'RICHMOND',
    State: 'VIC',
    Postcode: '3121',
    Country: 'AUSTRALIA',
  };
}

function paymentsXml(payments: readonly SimPayment[], paidAt: number, context: DocumentContext): string {
  if (payments.length === 0) return '<Payments />';
  return toXml('Payments', {
    PaymentDetail: payments.map((payment, i) => ({
      Id: payment.paymentId,
      Sequence: i,
      Origin: payment.origin ?? '',
      CardType: payment.cardType ?? '',
      Stan: payment.stan ?? '',
      AuthCode: payment.amountMinor > 0 ? String(100000 + Number(payment.paymentId)).slice(-6) : '',
      AccountType: '',
      Settlement: wallClock(paidAt, context).slice(0, 10).replace(/-/g, ''),
      Reference: payment.reference ?? '',
      MerchantId: payment.merchantId ?? '',
      AccountId: payment.accountId ?? '',
      Amount: money(payment.amountMinor, context),
      Message: `payment_statusCURRENTbank_reference${payment.stan ?? ''}response_textApproved or completed successfullyresponse_code00`,
      VoucherGateway: context.version >= 2 ? '' : undefined,
    })),
  });
}

function discountsXml(line: SimLineSeed, context: DocumentContext): XmlValue {
  if (!line.discountMinor) return undefined;
  return {
    Discount: {
      DiscountTypeId: 2,
      Value: money(line.discountMinor, context),
      PromoId: 1010,
      WebDiscount: 'Shop and save',
      WebPromotion: 'SHOPNSAVE',
      WebCampaign: '',
      WebCoupon: '',
    },
  };
}

function currencyXml(context: DocumentContext, code = context.currency): string {
  return context.version >= 2 ? toXml('Currency', { Code: code, Format: `#,##0.00 '${code}'` }) : '';
}

const LONG_NAME = 'EXTRA LONG PRODUCT NAME '.repeat(13).slice(0, 300);

function orderLineXml(line: SimLine, sequence: number, order: SimOrder, context: DocumentContext): string {
  const product = productOf(line);
  const corruption = sequence === 1 ? order.corruption : undefined;
  const value = money(lineValue(line), context);
  const fields: Record<string, XmlValue> = {
    Id: line.lineId,
    Sequence: sequence,
    ProductId: product.productId,
    ColourId: product.colourId,
    SkuId: line.skuId,
    ProductCode: product.productCode,
    ProductName: corruption === 'long_product_name' ? LONG_NAME : product.productName,
    ColourCode: product.colourCode,
    ColourName: product.colourName,
    SizeCode: product.sizeCode,
    Barcode: product.barcode,
    Quantity: line.quantity,
    Customisation: '',
    Price: corruption === 'price_precision' ? `${money(line.priceMinor, context)}5` : money(line.priceMinor, context),
    Discount: money(line.discountMinor ?? 0, context),
    Value: corruption === 'empty_value' ? '' : corruption === 'value_precision' ? `${value}5` : value,
    TaxPercent: TAX_PERCENT,
    Discounts: discountsXml(line, context),
    GiftWrap: 'false',
    GiftWrapMessage: '',
    Carrier: '',
    CarrierUrl: '',
    ConNote: '',
    ServiceType: { Id: 162, Code: 'Road' },
    SenderName: '',
    ReceiverName: '',
    WarehouseId: WAREHOUSE_ID,
    Status: order.lineStatuses?.[line.lineId] ?? line.status ?? 'Processing',
    NonReturnable: line.nonReturnable ? 'true' : 'false',
    ...(corruption === 'unknown_elements' && { FutureLineElement: { Nested: 'not in any guide' } }),
  };
  return toXml('OrderDetail', fields);
}

/** `<Order>` as the changed-orders list and the single-order GET answer it. */
export function orderDocument(order: SimOrder, rowNumber: number, person: SimPerson | undefined, context: DocumentContext): string {
  const totalDue = linesTotal(order.lines);
  const totalDiscount = order.lines.reduce((sum, line) => sum + (line.discountMinor ?? 0), 0);
  const contacts = { Email: order.email ?? person?.email ?? '', Phones: phones('0399526532') };
  const head = {
    Id: order.orderId,
    RowNumber: rowNumber,
    OrderNumber: order.orderNumber,
    PartnerOrderId: '',
    NeedReview: 'false',
    ReviewNotes: '',
    PersonId: order.personId,
    WarehouseId: WAREHOUSE_ID,
    OrderDateTime: wallClock(order.orderedAt, context),
    TotalQuantity: order.lines.reduce((sum, line) => sum + line.quantity, 0),
    TotalTax: money(taxOf(totalDue), context),
    TotalDiscount: money(totalDiscount, context),
    TotalDue: money(totalDue, context),
    TotalPayment: money(
      order.payments.reduce((sum, payment) => sum + payment.amountMinor, 0),
      context,
    ),
    PickupStoreId: '',
    DespatchType: 'DespatchFromWarehouse',
    ExpectedDeliveryDate: '',
    UnattendedDeliveryOption: 'AuthorityToLeave',
    Carrier: { Id: 1156, Code: 'AUS' },
    ServiceType: { Id: 162, Code: 'Road' },
    SLA: { Id: 16784, Code: 'SameDay' },
  };
  // Escaped by toXml, except in the broken case, which is the point of it.
  const instructions =
    order.corruption === 'broken_xml'
      ? '<DeliveryInstructions>Leave with Smith & Sons</DeliveryInstructions>'
      : toXml('DeliveryInstructions', 'Please leave on front porch.');
  const details = withAttributes(
    'OrderDetails',
    { Type: 'Array', TotalRows: order.lines.length },
    order.lines.map((line, i) => orderLineXml(line, i + 1, order, context)).join(''),
  );
  return [
    '<Order>',
    Object.entries(head)
      .map(([name, value]) => toXml(name, value))
      .join(''),
    instructions,
    toXml('Addresses', { Billing: address(person, false), Delivery: { ...address(person, true), CompanyName: '' } }),
    toXml('Contacts', contacts),
    toXml('DeliveryContacts', contacts),
    details,
    toXml('SelectedFreightOption', { Id: '', Name: '', Value: '0', TaxPercent: '' }),
    paymentsXml(order.payments, order.orderedAt, context),
    toXml('PointsPartner', { Id: '', Name: '', MembershipNumber: '' }),
    order.corruption === 'unknown_currency' ? currencyXml({ ...context, version: Math.max(context.version, 2) }, 'QQQ') : currencyXml(context),
    order.corruption === 'unknown_elements' ? toXml('FutureOrderElement', { Nested: { Deeper: 'not in any guide' } }) : '',
    order.origOrderNumber !== undefined ? toXml('OrigOrderNum', order.origOrderNumber) : '',
    '</Order>',
  ].join('');
}

/** `<ReturnOrder>` as `GET …/Returns/{rid}` answers it (guide pp.150–151). */
export function returnDocument(ret: SimReturn, context: DocumentContext): string {
  const totalDue = linesTotal(ret.lines);
  const empty = { Email: '', Phones: phones() };
  const details = ret.lines.map((line, i) => {
    const product = productOf(line);
    return toXml('OrderDetail', {
      Id: line.lineId,
      Sequence: i + 1,
      ProductId: product.productId,
      ColourId: product.colourId,
      SkuId: line.skuId,
      ProductCode: product.productCode,
      ProductName: product.productName,
      ColourCode: product.colourCode,
      ColourName: product.colourName,
      SizeCode: product.sizeCode,
      Quantity: line.quantity,
      Price: money(line.priceMinor, context),
      Discount: money(-(line.discountMinor ?? 0), context),
      Value: money(lineValue(line), context),
      TaxPercent: TAX_PERCENT,
      QuantityTaken: 0,
      QuantityPacked: 0,
      ReturnReasonId: line.returnReasonId,
      ReturnReasonNotes: line.returnReasonNotes ?? '',
      GiftWrap: 'false',
      GiftWrapMessage: '',
      SenderName: '',
      ReceiverName: '',
      Carrier: line.carrier ?? '',
      CarrierUrl: '',
      ConNote: line.conNote ?? '',
      Status: 'Processing',
    });
  });
  const inner = [
    Object.entries({
      Id: ret.returnId,
      RowNumber: 0,
      OrderNumber: ret.orderNumber,
      PersonId: ret.personId,
      WarehouseId: RETURN_WAREHOUSE_ID,
      OrderDateTime: wallClock(ret.createdAt, context),
      TotalQuantity: ret.lines.reduce((sum, line) => sum + line.quantity, 0),
      TotalTax: money(taxOf(totalDue), context),
      TotalDiscount: '0',
      TotalDue: money(totalDue, context),
      TotalPayment: money(
        ret.payments.reduce((sum, payment) => sum + payment.amountMinor, 0),
        context,
      ),
      PickupStoreId: '',
      DeliveryInstructions: ret.lines.find((line) => line.carrier)?.carrier ?? '',
      DespatchType: 'DespatchFromWarehouse',
      Status: ret.status ?? 'Processing',
    })
      .map(([name, value]) => toXml(name, value))
      .join(''),
    '<Addresses />',
    toXml('Contacts', empty),
    toXml('DeliveryContacts', empty),
    withAttributes('OrderDetails', { Type: 'Array', TotalRows: ret.lines.length }, details.join('')),
    '<SelectedFreightOption><Id /><Name /><Value>0</Value><TaxPercent xsi:nil="true" /></SelectedFreightOption>',
    context.version >= 4 ? paymentsXml(ret.payments, ret.createdAt, context) : '<Payments />',
    currencyXml(context),
    toXml('PricesIncludeTax', 'false'),
    toXml('PointsPartner', { Id: '', Name: '', MembershipNumber: '' }),
    context.version >= 2 ? toXml('OrigOrderNum', ret.origOrderNumber) + toXml('ReturnAuthorisationNumber', ret.returnAuthorisationNumber) : '',
  ].join('');
  const namespaces = { 'xmlns:xsd': 'http://www.w3.org/2001/XMLSchema', 'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance' };
  return withAttributes('ReturnOrder', namespaces, inner);
}

/** Ap21's person time stamp: `D/MM/CCYY h:mm:ss tt` in its wall clock (guide p.70). */
function personTimeStamp(epochMs: number, context: DocumentContext): string {
  const [date = '', time = ''] = wallClock(epochMs, context).split('T');
  const [year, month, day] = date.split('-');
  const [hour = 0, minute, second] = time.split(':').map((part, i) => (i === 0 ? Number(part) : part));
  const twelve = Number(hour) % 12 === 0 ? 12 : Number(hour) % 12;
  return `${Number(day)}/${month}/${year} ${twelve}:${minute}:${second} ${Number(hour) < 12 ? 'AM' : 'PM'}`;
}

/** `<Person>` as `GET /Persons/{id}` answers it (guide pp.78–80). */
export function personDocument(person: SimPerson, context: DocumentContext): string {
  const inner = [
    Object.entries({
      Id: person.personId,
      Code: `${person.surname.slice(0, 4)}${person.firstname.slice(0, 2)}${person.personId.slice(-2)}`.toUpperCase(),
      Title: '',
      Initials: `${person.firstname[0] ?? ''}${person.surname[0] ?? ''}`,
      Firstname: person.firstname,
      Surname: person.surname,
      Sex: '',
      DateOfBirth: '',
      StartDate: new Date(person.updatedAt).toISOString().slice(0, 10),
      JobTitle: '',
      Privacy: 'False',
      UpdateTimeStamp: personTimeStamp(person.updatedAt, context),
    })
      .map(([name, value]) => toXml(name, value))
      .join(''),
    withAttributes('References', { Type: 'Array' }, toXml('Reference', [{ ReferenceTypeId: 373, Id: '' }])),
    toXml('IsAgent', 'false'),
    toXml('Addresses', { Billing: address(person, true) }),
    toXml('Contacts', { Email: person.email ?? '', Phones: phones('0384159300') }),
    currencyXml(context),
    withAttributes('Loyalties', { Type: 'Array' }, ''),
    toXml('RewardsAccounts', { Account: { Id: 1, ProgramId: 1, ProgramName: 'Rewards Program', TierId: 1, TierName: 'Bronze' } }),
  ].join('');
  const namespaces = { 'xmlns:xsd': 'http://www.w3.org/2001/XMLSchema', 'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance' };
  return withAttributes('Person', namespaces, inner);
}
