import { isRefundCallback, opttyNotificationSchema, opttySecretSchema } from '../../../lambdas/providers/optty/schemas';
import { generateLocalSecrets } from '../../../local/secrets-file';

describe('Optty notifications', () => {
  it('parse a REFUND_CALLBACK as a hint, keeping unknown fields', () => {
    const notification = opttyNotificationSchema.parse({
      event: 'REFUND_CALLBACK',
      status: 'SUCCESSFUL',
      transactionId: 'tx-1',
      refundReference: 'rf-1',
      extra: 1,
    });
    expect(isRefundCallback(notification)).toBe(true);
    expect(notification).toMatchObject({ extra: 1 });
    expect(isRefundCallback(opttyNotificationSchema.parse({ event: 'ORDER_STATUS_UPDATE', status: 'DECLINED' }))).toBe(false);
    expect(opttyNotificationSchema.safeParse({ status: 'SUCCESSFUL' }).success).toBe(false);
  });
});

describe('Optty secret', () => {
  it('is what the local secrets file generates', () => {
    expect(opttySecretSchema.safeParse(generateLocalSecrets().optty).success).toBe(true);
  });
});
