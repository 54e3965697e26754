import { verificationAnswer } from '../../../lambdas/providers/apace/schemas';

describe("Apace's verification answer", () => {
  it.each([
    ['allowed', { allow_refund: true }],
    ['issued_elsewhere', { allow_refund: false, refund_issued: true }],
    ['refused', { allow_refund: false }],
  ] as const)('words the decision %s as Apace reads it', (decision, answer) => {
    expect(verificationAnswer(decision)).toEqual(answer);
  });
});
