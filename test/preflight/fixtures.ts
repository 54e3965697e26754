import { STAGES, type StageConfig } from '../../lib/stage-config';
import { committedSources } from '../../tools/preflight/preflight';
import type { ConfigSources } from '../../tools/preflight/placeholders';

/**
 * prod as a retailer fills it in: its own account, Ap21 host and push address, on-call address,
 * Elastic IP allocations, domain, certificate and hosted zone. No placeholder left.
 */
export const FILLED_PROD: StageConfig = {
  ...STAGES.prod,
  account: '482911735106',
  providerUrls: { ...STAGES.prod.providerUrls, AP21_API_URL: 'https://retailapi.acme-apparel.com.au/RetailAPI' },
  providerSettings: {
    ap21: {
      ...STAGES.prod.providerSettings.ap21,
      AP21_PAYMENT_PROVIDERS: 'CardType:VISA=addon_payments,CardType:MASTERCARD=addon_payments,Origin:PayPro=paypro',
    },
  },
  ipAllowlists: { ...STAGES.prod.ipAllowlists, '/ap21/returns': ['52.62.10.17', '13.54.201.0/28'] },
  egress: { ...STAGES.prod.egress, elasticIpAllocationIds: ['eipalloc-0a1b2c3d4e5f60718', 'eipalloc-0f9e8d7c6b5a40312'] },
  alarmEmail: 'refunds-oncall@acme-apparel.com.au',
  customDomain: {
    domainName: 'refunds.acme-apparel.com.au',
    certificateArn: 'arn:aws:acm:ap-southeast-2:482911735106:certificate/3f2b9c41-7d5e-4a8b-9c06-1e2f3a4b5c6d',
    hostedZone: { id: 'Z04567891ABCDEFGHIJKL', name: 'acme-apparel.com.au' },
  },
};

/** The committed sources, with the filled-in account's availability zones recorded (as a synth with credentials does). */
export function filledSources(): ConfigSources {
  const committed = committedSources();
  return {
    ...committed,
    context: {
      ...committed.context,
      [`availability-zones:account=${FILLED_PROD.account}:region=ap-southeast-2`]: ['ap-southeast-2a', 'ap-southeast-2b', 'ap-southeast-2c'],
    },
  };
}
