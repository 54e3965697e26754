import { FUNCTIONS } from './function-registry';
import type { StageConfig } from './stage-config';

/**
 * What a stage costs per month before any traffic, at AWS list prices for ap-southeast-2 (on-demand,
 * no free tier), as of November 2026. Traffic adds Lambda, DynamoDB on-demand, API Gateway, SQS,
 * CloudWatch Logs ingestion and data-protection scanning, X-Ray traces and NAT data processing: at
 * a retailer's refund volume, a few dollars. Printed by the preflight and quoted in the README.
 */
export const LIST_PRICES = {
  natGatewayHour: 0.059,
  publicIpv4Hour: 0.005,
  interfaceEndpointZoneHour: 0.013,
  secretMonth: 0.4,
  kmsKeyMonth: 1,
  alarmMonth: 0.1,
  dashboardMonth: 3,
} as const;

const HOURS_PER_MONTH = 730;

export interface CostLine {
  readonly item: string;
  readonly count: number;
  readonly monthlyUsd: number;
}

export interface CostEstimate {
  readonly lines: readonly CostLine[];
  readonly totalUsd: number;
}

const usd = (amount: number) => Math.round(amount * 100) / 100;

/** The standing cost of a stage's configuration: what running it empty costs. */
export function monthlyCost(config: StageConfig): CostEstimate {
  const { natGateways, availabilityZones, interfaceEndpoints } = config.egress;
  const allowlisted = Object.keys(config.ipAllowlists).length > 0 ? 1 : 0;
  // Dead letters, one per function, 5xx rate, manual review, isolated Ap21 orders, poller lag,
  // inbox records waiting, Apace payouts unconfirmed, Apace offers undelivered, returns not
  // received, refunds paid twice, reversals in flight settled elsewhere, allowlisted 4xx.
  const alarms = 1 + FUNCTIONS.length + 10 + allowlisted;
  // The wait table's (docs/design.md §2.5): outbox overdue, Ap21 isolations still open, Refundid outcomes overdue.
  const waitAlarms = 3;
  const candidates: CostLine[] = [
    { item: 'NAT gateways', count: natGateways, monthlyUsd: natGateways * LIST_PRICES.natGatewayHour * HOURS_PER_MONTH },
    { item: 'public IPv4 addresses (the egress IPs)', count: natGateways, monthlyUsd: natGateways * LIST_PRICES.publicIpv4Hour * HOURS_PER_MONTH },
    {
      item: `interface endpoints (${interfaceEndpoints.join(', ') || 'none'}) × ${availabilityZones} zones`,
      count: interfaceEndpoints.length * availabilityZones,
      monthlyUsd: interfaceEndpoints.length * availabilityZones * LIST_PRICES.interfaceEndpointZoneHour * HOURS_PER_MONTH,
    },
    { item: 'Secrets Manager secrets', count: 6, monthlyUsd: 6 * LIST_PRICES.secretMonth },
    {
      item: 'KMS key (table)',
      count: config.tableEncryption === 'customer-managed' ? 1 : 0,
      monthlyUsd: config.tableEncryption === 'customer-managed' ? LIST_PRICES.kmsKeyMonth : 0,
    },
    { item: 'CloudWatch alarms', count: alarms + waitAlarms, monthlyUsd: (alarms + waitAlarms) * LIST_PRICES.alarmMonth },
    { item: 'CloudWatch dashboard', count: 1, monthlyUsd: LIST_PRICES.dashboardMonth },
  ];
  const lines = candidates.filter((line) => line.count > 0).map((line) => ({ ...line, monthlyUsd: usd(line.monthlyUsd) }));
  return { lines, totalUsd: usd(lines.reduce((sum, line) => sum + line.monthlyUsd, 0)) };
}
