import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { ConfigurationError } from '../../../lambdas/commons/config';
import { clearString, encryptRebate, javaUrlEncode, type RebateFields } from '../../../lambdas/providers/addon-payments/crypto';
import { decryptRebate, DecryptionError, javaUrlDecode } from '../../../simulators/addon-payments/crypto';
import { money } from '../../../lambdas/domain/money';
import fixture from './fixtures/vectors.json';

/**
 * The vectors come from fixtures/generate-vectors.sh: Java's URLEncoder and javax.crypto (the
 * official SDK's primitives), cross-checked there with `openssl enc` and `sha256sum`.
 */
type Vector = (typeof fixture.vectors)[number] & { description?: string };
const vectors: Vector[] = fixture.vectors;

function fieldsOf(vector: Vector): RebateFields {
  return {
    amount: money(vector.amount.minor, vector.amount.currency),
    merchantId: vector.merchantId,
    paymentSolution: vector.paymentSolution,
    transactionId: vector.transactionId,
    merchantTransactionId: vector.merchantTransactionId,
    ...(vector.description !== undefined && { description: vector.description }),
  };
}

const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('EPG H2H request encryption', () => {
  it('covers the inputs the encoding rules are about', () => {
    const described = vectors.map((vector) => vector.description ?? '').join('');
    for (const char of [' ', '~', '!', "'", '(', ')', '/', 'é', 'ñ', '€', '=', '&', ';', ':', ',', '%', '+']) expect(described).toContain(char);
    expect(vectors.map((vector) => vector.amountDecimal)).toEqual(expect.arrayContaining(['0.01', '1234.56', '30']));
    expect(vectors.some((vector) => Buffer.byteLength(vector.clear) % 16 === 0)).toBe(true);
  });

  it.each(vectors.map((vector) => [vector.name, vector] as const))('matches the Java SDK primitives byte for byte: %s', (_, vector) => {
    const request = encryptRebate(fieldsOf(vector), vector.merchantPassword, Buffer.from(vector.ivHex, 'hex'));
    expect(request).toEqual({
      clear: vector.clear,
      encrypted: vector.encrypted,
      integrityCheck: vector.integrityCheck,
      iv: Buffer.from(vector.ivHex, 'hex').toString('base64'),
    });
    expect(decryptRebate(vector.encrypted, request.iv, vector.merchantPassword)).toBe(vector.clear);
  });

  it('writes amounts with four decimals from minor units, in the SDK field order, leaving absent fields out', () => {
    const base = { merchantId: '123456', paymentSolution: 'creditcards', transactionId: '1', merchantTransactionId: 'r' };
    expect(clearString({ ...base, amount: money(3000, 'EUR') })).toBe(
      'amount=30.0000&merchantId=123456&paymentSolution=creditcards&transactionId=1&merchantTransactionId=r',
    );
    expect(clearString({ ...base, amount: money(9_999_999_999, 'EUR'), description: 'x' })).toMatch(/^amount=99999999\.9900&.*&description=x$/);
  });

  it('decodes what it encodes, control characters and astral code points included', () => {
    const text = Array.from({ length: 256 }, (_, code) => String.fromCharCode(code)).join('') + '€😀';
    const encoded = javaUrlEncode(text);
    expect(encoded).toMatch(/^[A-Za-z0-9.*_+%-]+$/);
    expect(encoded).not.toMatch(/%[0-9A-F]?[a-f]/);
    expect(javaUrlDecode(encoded)).toBe(text);
  });

  it('refuses a merchant password that is not exactly 32 bytes', () => {
    const fields = fieldsOf(vectors[0]!);
    expect(() => encryptRebate(fields, 'short')).toThrow(ConfigurationError);
    // 32 characters, but é is two bytes in UTF-8: AES-256 needs 32 bytes.
    expect(() => encryptRebate(fields, 'é'.padEnd(32, 'x'))).toThrow(/32 bytes/);
  });

  it('refuses to decrypt under the wrong password or with a malformed IV', () => {
    const vector = vectors[1]!;
    const iv = Buffer.from(vector.ivHex, 'hex').toString('base64');
    expect(() => decryptRebate(vector.encrypted, iv, 'X'.repeat(32))).toThrow(DecryptionError);
    expect(() => decryptRebate(vector.encrypted, 'AAAA', vector.merchantPassword)).toThrow(DecryptionError);
  });

  (hasOpenssl ? it : it.skip)('produces ciphertext that openssl decrypts to the clear string (live openssl)', () => {
    const vector = vectors[3]!;
    const iv = randomBytes(16);
    const request = encryptRebate(fieldsOf(vector), vector.merchantPassword, iv);
    const key = Buffer.from(vector.merchantPassword, 'utf8').toString('hex');
    const clear = execFileSync('openssl', ['enc', '-d', '-aes-256-cbc', '-K', key, '-iv', iv.toString('hex'), '-nosalt'], {
      input: Buffer.from(request.encrypted, 'base64'),
    });
    expect(clear.toString('utf8')).toBe(vector.clear);
  });
});
