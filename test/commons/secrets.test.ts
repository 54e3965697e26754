import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { mockClient } from 'aws-sdk-client-mock';
import { SecretReader, SecretsManagerSource, SecretUnavailableError } from '../../lambdas/commons/secrets';
import { apaceSecretSchema } from '../../lambdas/providers/apace/schemas';

// Secrets Manager has no local engine: this is the one AWS client the tests mock.
const secretsManager = mockClient(SecretsManagerClient);
const secret = (apiSecret: string) => JSON.stringify({ publicId: 'p', apiSecret, callbackKeys: { k1: 'k'.repeat(32) }, callbackKeyId: 'k1' });

function reader(maxAgeSeconds = 300) {
  const provider = new SecretsProvider({ awsSdkV3Client: new SecretsManagerClient({ region: 'ap-southeast-2' }) });
  return new SecretReader(new SecretsManagerSource(provider, 'refund-relay/test/', maxAgeSeconds), 'apace', apaceSecretSchema);
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
});
