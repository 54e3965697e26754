import { forBrowser, maskRaw, stepsOf } from '../../tools/console/views';

describe('what the console sends to the browser', () => {
  it('masks a raw XML message: card numbers, e-mails and secret-looking elements', () => {
    const raw = '<ReturnOrder><Email>jane.doe@example.com</Email><Password>hunter2</Password><Reference>4111 1111 1111 1111</Reference></ReturnOrder>';
    const shown = maskRaw(raw);
    expect(shown).toBe('<ReturnOrder><Email>j***@example.com</Email><Password>[redacted]</Password><Reference>****1111</Reference></ReturnOrder>');
  });

  it('masks a raw JSON message by key and by value, and a query-string token', () => {
    expect(JSON.parse(maskRaw('{"auth_token":"abc","email":"sam@example.com","note":"ok"}'))).toEqual({
      auth_token: '[redacted]',
      email: 's***@example.com',
      note: 'ok',
    });
    expect(maskRaw('GET /verification?auth_token=abc123&x=1')).toBe('GET /verification?auth_token=[redacted]&x=1');
  });

  it("never renders the customer's Apace claim link", () => {
    expect(JSON.parse(JSON.stringify({ refs: { apaceRefundId: 'r-1', apaceLink: 'https://apace.example/claim/secret' } }, forBrowser))).toEqual({
      refs: { apaceRefundId: 'r-1', apaceLink: '[redacted]' },
    });
  });
});

describe('the sequence across lanes', () => {
  const event = { at: '2026-12-03T10:00:00.000Z', refundId: 'r1', change: '', note: '' };

  it('draws our calls to the provider, its answers, and the money reaching the customer', () => {
    expect(stepsOf({ ...event, actor: 'dispatcher', what: 'reversal_submitted' })).toMatchObject([{ from: 'relay', to: 'provider' }]);
    expect(stepsOf({ ...event, actor: 'dispatcher', what: 'reversal_succeeded', from: 'reversal_submitted', to: 'paid' })).toMatchObject([
      { from: 'provider', to: 'relay' },
      { from: 'provider', to: 'customer', label: 'money to the customer' },
    ]);
  });

  it('draws what Ap21 and the providers send us, with where the raw message is', () => {
    expect(stepsOf({ ...event, actor: 'ap21', what: 'refund_created', inbox: 'INBOX#ap21#k' })).toMatchObject([
      { from: 'ap21', to: 'relay', inbox: 'INBOX#ap21#k' },
    ]);
    expect(stepsOf({ ...event, actor: 'apace', what: 'apace_paid', from: 'offered', to: 'paid' })).toMatchObject([
      { from: 'provider', to: 'relay' },
      { from: 'provider', to: 'customer' },
    ]);
    expect(stepsOf({ ...event, actor: 'operator', what: 'redrive_reversal' })).toMatchObject([{ from: 'relay', to: 'relay' }]);
  });
});
