import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { SecretReader, SecretsManagerSource, SecretUnavailableError } from '../../lambdas/commons/secrets';
import { apaceSecretSchema } from '../../lambdas/providers/apace/schemas';

// Secrets Manager has no local engine: this is the one AWS client the tests mock.
const secretsManager = mockClient(SecretsManagerClient);
const secret = (apiSecret: string) => JSON.stringify({ publicId: 'p', apiSecret, callbackKeys: { k1: 'k'.repeat(32) }, callbackKeyId: 'k1' });

function reader(maxAgeSeconds = 300, now: () => number = Date.now) {
  const client = new SecretsManagerClient({ region: 'ap-southeast-2' });
  return new SecretReader(new SecretsManagerSource(client, 'refund-relay/test/', maxAgeSeconds, now), 'apace', apaceSecretSchema);
}

beforeEach(() => secretsManager.reset());

describe('secrets from Secrets Manager', () => {
  it('fetches a secret once per container and serves the warm path from cache (0 calls)', async () => {
    secretsManager.on(GetSecretValueCommand, { SecretId: 'refund-relay/test/apace' }).resolves({ SecretString: secret('s1') });
    const apace = reader();
    expect((await apace.get()).apiSecret).toBe('s1');
    const before = secretsManager.commandCalls(GetSecretValueCommand).length;
    for (let i = 0; i < 100; i++) await apace.get();
    expect(before).toBe(1);
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it('re-reads a rotated secret when a check fails, at most once per 30 s', async () => {
    secretsManager
      .on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: secret('old') })
      .resolves({ SecretString: secret('new') });
    const apace = reader();
    expect(await apace.verifyWithRotation((s) => s.apiSecret === 'new')).toBe(true);
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(2);
    // A flood of forged signatures cannot turn into a flood of Secrets Manager calls.
    for (let i = 0; i < 20; i++) expect(await apace.verifyWithRotation((s) => s.apiSecret === 'forged')).toBe(false);
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('names the malformed keys of a bad secret without echoing its values', async () => {
    secretsManager
      .on(GetSecretValueCommand)
      .resolves({ SecretString: JSON.stringify({ publicId: 'p', apiSecret: 'very-secret-value', callbackKeys: { k1: 'short' }, callbackKeyId: 'k1' }) });
    const error = await reader()
      .get()
      .catch((e: Error) => e);
    expect(error).toBeInstanceOf(SecretUnavailableError);
    expect((error as Error).message).toMatch(/callbackKeys\.k1/);
    expect((error as Error).message).not.toMatch(/very-secret-value|short/);
  });

  it('reads again once the max age has passed, and concurrent first reads share one call', async () => {
    secretsManager
      .on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: secret('s1') })
      .resolves({ SecretString: secret('s2') });
    let clock = 1_000_000;
    const apace = reader(300, () => clock);
    const first = await Promise.all(Array.from({ length: 10 }, () => apace.get()));
    expect(first.map((s) => s.apiSecret)).toEqual(Array(10).fill('s1'));
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    clock += 299_000;
    expect((await apace.get()).apiSecret).toBe('s1');
    clock += 2_000;
    expect((await apace.get()).apiSecret).toBe('s2');
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });

  it('does not cache a failed read, and never echoes a secret that is not JSON', async () => {
    secretsManager
      .on(GetSecretValueCommand)
      .rejectsOnce(new Error('ThrottlingException'))
      .resolvesOnce({ SecretString: 'not-json-super-secret' })
      .resolves({ SecretString: secret('s1') });
    const apace = reader();
    await expect(apace.get()).rejects.toThrow('ThrottlingException');
    const error = await apace.get().catch((e: Error) => e);
    expect(error).toBeInstanceOf(SecretUnavailableError);
    expect((error as Error).message).toBe('secret apace is not JSON');
    expect((await apace.get()).apiSecret).toBe('s1');
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(3);
  });

  it('reads a secret stored as binary', async () => {
    secretsManager.on(GetSecretValueCommand).resolves({ SecretBinary: new TextEncoder().encode(secret('b1')) });
    expect((await reader().get()).apiSecret).toBe('b1');
  });
});
