import { apaceSecretSchema, type ApaceSecret } from '../../lambdas/providers/apace/schemas';
import { apaceUrls, apaceWebhook, offeredRefund, postWebhook } from '../support/fixtures';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(() => stack.close());

describe('secret rotation while the container keeps its cached secrets', () => {
  it('accepts callback URLs signed with a newly added key, and keeps accepting the previous key', async () => {
    const apace = stack.secrets.apace as ApaceSecret;
    const { orderId, refundId } = await offeredRefund(stack.runtime.store, 'rot-1');
    const oldUrl = apaceUrls(stack.url, apace, orderId, refundId).verificationUrl;
    expect((await fetch(oldUrl)).status).toBe(200);

    const rotated: ApaceSecret = { ...apace, callbackKeys: { ...apace.callbackKeys, k2: 'second-key-'.padEnd(44, 'q') }, callbackKeyId: 'k2' };
    await stack.writeSecrets({ ...stack.secrets, apace: rotated });
    const newUrl = apaceUrls(stack.url, rotated, orderId, refundId).verificationUrl;
    expect(newUrl).toContain('auth_token=k2.');
    expect((await fetch(newUrl)).status).toBe(200);
    expect((await fetch(oldUrl)).status).toBe(200);
  });

  it('verifies webhooks signed with a rotated Apace API secret after one refresh (rate-limited per container)', async () => {
    const { orderId, refundId } = await offeredRefund(stack.runtime.store, 'rot-2');
    const current = JSON.parse(JSON.stringify(stack.secrets)) as typeof stack.secrets;
    const apace = {
      ...(current.apace as ApaceSecret),
      callbackKeys: { ...(current.apace as ApaceSecret).callbackKeys, k2: 'second-key-'.padEnd(44, 'q') },
      callbackKeyId: 'k2',
    };
    const { notificationUrl } = apaceUrls(stack.url, apace, orderId, refundId);
    await stack.writeSecrets({ ...current, apace: { ...apace, apiSecret: 'rotated-api-secret' } });
    // The previous test refreshed less than 30 s ago, so this container may not refresh yet: 401.
    const early = await postWebhook(notificationUrl, apaceWebhook(orderId, 'pending'), 'rotated-api-secret');
    expect(early.status).toBe(401);
    const reader = stack.runtime.secret('apace', apaceSecretSchema);
    expect((await reader.refresh(Date.now() + 31_000))?.apiSecret).toBe('rotated-api-secret');
    const later = await postWebhook(notificationUrl, apaceWebhook(orderId, 'pending'), 'rotated-api-secret');
    expect(later.status).toBe(200);
  });
});
