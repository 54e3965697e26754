import { refundidRefundId } from '../../../lambdas/providers/refundid/statuses';

describe('Refundid refund ids', () => {
  it('names the refund after the merchant RMA reference when there is one, else after Refundid’s id', () => {
    expect(refundidRefundId({ refundid_id: 'rid-1', merchant_rma_ref: 'RMA-7' })).toBe('rfd-RMA-7');
    expect(refundidRefundId({ refundid_id: 'rid-1', merchant_rma_ref: null })).toBe('rfd-rid-1');
    expect(refundidRefundId({ refundid_id: 'rid-1' })).toBe('rfd-rid-1');
  });
});
