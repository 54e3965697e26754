import type { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { TABLE } from '../lambdas/store/table';

export interface StateTableProps {
  readonly encryption: 'aws-managed' | 'customer-managed';
  readonly deletionProtection: boolean;
  readonly removalPolicy: RemovalPolicy;
}

export type TableAccess = 'read' | 'readWrite';

const ITEM_ACTIONS: Record<TableAccess, string[]> = {
  read: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'],
  // No DeleteItem, BatchWriteItem (it deletes too) or Scan: state only moves forward, TTL removes
  // expired inbox records, and only the operator's own credentials scan (npm run ops).
  readWrite: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem'],
};

/** Every item action any function may take: what the VPC's DynamoDB endpoint lets through. */
export const TABLE_ITEM_ACTIONS: readonly string[] = [...new Set(Object.values(ITEM_ACTIONS).flat())];

// The key actions aws-cdk's own grantReadData/grantReadWriteData add, with the wildcards spelled out.
const KEY_ACTIONS: Record<TableAccess, string[]> = {
  read: ['kms:Decrypt', 'kms:DescribeKey'],
  readWrite: [
    'kms:Decrypt',
    'kms:DescribeKey',
    'kms:Encrypt',
    'kms:ReEncryptFrom',
    'kms:ReEncryptTo',
    'kms:GenerateDataKey',
    'kms:GenerateDataKeyWithoutPlaintext',
  ],
};

/**
 * The single table (docs/design.md §2.1) with the layout `lambdas/store/table.ts` defines for the store
 * adapter and the local runtime: on-demand, point-in-time recovery, TTL on inbox records, and the
 * sparse `due` index the dispatcher and sweeper read and the `lookup` index of orders by outside
 * name (both keys only, as locally).
 */
export class StateTable extends Construct {
  readonly table: Table;
  readonly dueIndexArn: string;
  readonly lookupIndexArn: string;
  private readonly key: Key | undefined;

  constructor(scope: Construct, id: string, props: StateTableProps) {
    super(scope, id);
    this.key =
      props.encryption === 'customer-managed'
        ? new Key(this, 'Key', { description: 'refund-relay state table', enableKeyRotation: true, removalPolicy: props.removalPolicy })
        : undefined;
    this.table = new Table(this, 'Table', {
      partitionKey: { name: TABLE.partitionKey, type: AttributeType.STRING },
      sortKey: { name: TABLE.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: TABLE.ttlAttribute,
      ...(this.key ? { encryption: TableEncryption.CUSTOMER_MANAGED, encryptionKey: this.key } : { encryption: TableEncryption.AWS_MANAGED }),
      deletionProtection: props.deletionProtection,
      removalPolicy: props.removalPolicy,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: TABLE.dueIndex.name,
      partitionKey: { name: TABLE.dueIndex.partitionKey, type: AttributeType.STRING },
      sortKey: { name: TABLE.dueIndex.sortKey, type: AttributeType.STRING },
      projectionType: ProjectionType.KEYS_ONLY,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: TABLE.lookupIndex.name,
      partitionKey: { name: TABLE.lookupIndex.partitionKey, type: AttributeType.STRING },
      projectionType: ProjectionType.KEYS_ONLY,
    });
    this.dueIndexArn = `${this.table.tableArn}/index/${TABLE.dueIndex.name}`;
    this.lookupIndexArn = `${this.table.tableArn}/index/${TABLE.lookupIndex.name}`;
  }

  /** Item-level access to this table and its index only, never `index/*` or other tables. */
  grantData(grantee: IGrantable, access: TableAccess): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({ actions: ITEM_ACTIONS[access], resources: [this.table.tableArn, this.dueIndexArn, this.lookupIndexArn] }),
    );
    if (this.key) grantee.grantPrincipal.addToPrincipalPolicy(new PolicyStatement({ actions: KEY_ACTIONS[access], resources: [this.key.keyArn] }));
  }
}
