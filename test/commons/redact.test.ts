import { Logger } from '../../lambdas/commons/logger';
import { MAX_LOG_TEXT, maskText, redactForLog } from '../../lambdas/commons/redact';

describe('log masking', () => {
  it('masks Luhn-valid card numbers to their last four digits, with or without separators', () => {
    expect(maskText('card 4111111111111111 declined')).toBe('card ****1111 declined');
    expect(maskText('card 4111 1111 1111 1111 / 5500-0000-0000-0004')).toBe('card ****1111 / ****0004');
    // Order numbers and transaction ids that are not card numbers stay readable.
    expect(maskText('order 1234567890123 stan 986516')).toBe('order 1234567890123 stan 986516');
  });

  it('masks customer e-mails, keeping the first character and the domain', () => {
    expect(maskText('refund for jane.doe+shop@example.com.au done')).toBe('refund for j***@example.com.au done');
    expect(maskText('to a@b.co, c@example.com-x and d@e.co.uk.')).toBe('to a***@b.co, c***@example.com-x and d***@e.co.uk.');
    // What is no address stays as it is; an address after another "@" is still found.
    expect(maskText('@example.com, foo@bar, a@b.c')).toBe('@example.com, foo@bar, a@b.c');
    expect(maskText('x@y@example.com')).toBe('x@y***@example.com');
    // A local part longer than RFC 5321's 64 characters is masked from its last 64.
    expect(maskText(`${'a'.repeat(70)}b@example.com`)).toBe(`${'a'.repeat(7)}a***@example.com`);
  });

  it('cuts long strings in log records, masking past the cut, so no cut leaves half a card number readable', () => {
    // Cut before masking, the log would keep the card's first seven digits.
    const long = `${'x'.repeat(MAX_LOG_TEXT - 8)} 4111111111111111 ${'y'.repeat(100)}`;
    const logged = redactForLog('detail', long) as string;
    expect(logged).toBe(`${'x'.repeat(MAX_LOG_TEXT - 8)} ****111…[+110 chars]`);
    expect(redactForLog('detail', 'short')).toBe('short');
  });

  it('redacts values of secret-looking keys and reduces errors to name and message', () => {
    expect(redactForLog('apiSecret', 'abc')).toBe('[redacted]');
    expect(redactForLog('auth_token', 'k1.123.abc')).toBe('[redacted]');
    expect(redactForLog('x-request-signature-sha-256', 'ff')).toBe('[redacted]');
    expect(redactForLog('Authorization', 'Bearer x')).toBe('[redacted]');
    expect(redactForLog('card_last_four', '7001')).toBe('7001');
    const error = new Error('boom for a@b.co');
    expect(redactForLog('error', error)).toEqual({ name: 'Error', message: 'boom for a***@b.co' });
  });

  it('applies to every record the logger writes', () => {
    const lines: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    const original = process.env.POWERTOOLS_LOG_LEVEL;
    process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
    try {
      const logger = new Logger({ serviceName: 't' });
      logger.info('paid 4111111111111111 for jane@example.com', { customer: { email: 'jane@example.com' }, apiSecretKey: 's3cr3t', nested: { password: 'p' } });
      logger.error('failed', new Error('with 5500000000000004 inside'));
    } finally {
      spy.mockRestore();
      process.env.POWERTOOLS_LOG_LEVEL = original;
    }
    const text = lines.join('');
    expect(text).toContain('****1111');
    expect(text).toContain('j***@example.com');
    expect(text).not.toMatch(/4111111111111111|5500000000000004|jane@|s3cr3t|"p"|"stack"/);
  });
});
