import type { RemovalPolicy } from 'aws-cdk-lib';
import { DataIdentifier, DataProtectionPolicy, LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

/**
 * A log group that masks card numbers and e-mail addresses as CloudWatch Logs receives them: a
 * second layer behind the logger's own masking (lambdas/commons/redact.ts), for whatever slips
 * past it — a provider's error text, a request's body in an API Gateway error. Reading the
 * unmasked text takes the logs:Unmask permission, which no role here has.
 */
export function protectedLogGroup(
  scope: Construct,
  id: string,
  props: { retention: RetentionDays; removalPolicy: RemovalPolicy; logGroupName?: string },
): LogGroup {
  return new LogGroup(scope, id, {
    ...props,
    dataProtectionPolicy: new DataProtectionPolicy({
      name: 'refund-relay-card-numbers-and-emails',
      description: 'Masks card numbers and e-mail addresses in refund-relay logs',
      identifiers: [DataIdentifier.CREDITCARDNUMBER, DataIdentifier.EMAILADDRESS],
    }),
  });
}
