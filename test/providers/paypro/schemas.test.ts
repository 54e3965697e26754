import { payProSecretSchema } from '../../../lambdas/providers/paypro/schemas';
import { generateLocalSecrets } from '../../../local/secrets-file';

describe('PayPro secret', () => {
  it('is what the local secrets file generates', () => {
    expect(payProSecretSchema.safeParse(generateLocalSecrets().paypro).success).toBe(true);
  });
});
