import { RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import {
  CfnEIP,
  FlowLogDestination,
  FlowLogTrafficType,
  GatewayVpcEndpointAwsService,
  InterfaceVpcEndpointAwsService,
  IpAddresses,
  NatProvider,
  Peer,
  Port,
  SecurityGroup,
  SubnetType,
  Vpc,
  type IInterfaceVpcEndpointService,
} from 'aws-cdk-lib/aws-ec2';
import { AnyPrincipal, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import type { InterfaceEndpointService, StageConfig } from './stage-config';

export interface StaticEgressProps {
  readonly egress: StageConfig['egress'];
  readonly logRetention: RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  /** What the functions in the VPC may do through the endpoints, and nothing else. */
  readonly endpointAccess: {
    /** The table and its index, and the item actions any function may take on them. */
    readonly dynamoDb: { readonly resources: readonly string[]; readonly actions: readonly string[] };
    readonly secretsArnPattern: string;
    readonly dispatchQueueArn: string;
  };
}

const INTERFACE_ENDPOINTS: Readonly<Record<InterfaceEndpointService, IInterfaceVpcEndpointService>> = {
  secretsmanager: InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
  sqs: InterfaceVpcEndpointAwsService.SQS,
};

/**
 * The one way out to providers and Ap21: private subnets whose traffic leaves through NAT gateways
 * on fixed Elastic IPs, the addresses Ap21 and the providers allowlist (docs/design.md §6).
 * DynamoDB is reached through a gateway endpoint (free); Secrets Manager and SQS through interface
 * endpoints where the stage lists them, otherwise through the NAT gateways. Every endpoint's
 * policy allows only what the functions do, on this stage's resources, from this account.
 */
export class StaticEgress extends Construct {
  readonly vpc: Vpc;
  /** For functions that call out: HTTPS out, nothing in. */
  readonly outboundSecurityGroup: SecurityGroup;
  /** The egress IPs to hand to Ap21 and the providers: tokens, resolved by AWS at deploy time. */
  readonly egressIps: readonly string[];
  readonly allocationIds: readonly string[];

  constructor(scope: Construct, id: string, props: StaticEgressProps) {
    super(scope, id);
    const { egress } = props;
    if (egress.elasticIpAllocationIds) {
      this.allocationIds = [...egress.elasticIpAllocationIds];
      this.egressIps = this.allocationIds.map((allocationId, index) => this.addressOf(allocationId, index + 1, props));
    } else {
      const allocated = this.allocateRetainedElasticIps(egress.natGateways);
      this.allocationIds = allocated.map((eip) => eip.attrAllocationId);
      this.egressIps = allocated.map((eip) => eip.attrPublicIp);
    }

    this.vpc = new Vpc(this, 'Vpc', {
      ipAddresses: IpAddresses.cidr('10.40.0.0/16'),
      maxAzs: egress.availabilityZones,
      natGateways: egress.natGateways,
      natGatewayProvider: NatProvider.gateway({ eipAllocationIds: [...this.allocationIds] }),
      subnetConfiguration: [
        { name: 'Public', subnetType: SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'Private', subnetType: SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
      ],
    });

    const flowLogGroup = new LogGroup(this, 'FlowLogs', { retention: props.logRetention, removalPolicy: props.removalPolicy });
    this.vpc.addFlowLog('FlowLog', { destination: FlowLogDestination.toCloudWatchLogs(flowLogGroup), trafficType: FlowLogTrafficType.ALL });

    this.outboundSecurityGroup = new SecurityGroup(this, 'Outbound', {
      vpc: this.vpc,
      description: 'Lambdas that call providers and Ap21: HTTPS out through the NAT gateways, nothing in',
      allowAllOutbound: false,
    });
    this.outboundSecurityGroup.addEgressRule(Peer.anyIpv4(), Port.tcp(443), 'HTTPS to providers, Ap21 and the VPC endpoints');
    this.addEndpoints(props);
  }

  private addEndpoints({ egress, endpointAccess }: StaticEgressProps): void {
    const { account } = Stack.of(this);
    // Endpoint policies cannot name the functions' roles before they exist; this account's
    // principals on this stage's resources is as narrow as a shared endpoint gets.
    const fromThisAccount = { principals: [new AnyPrincipal()], conditions: { StringEquals: { 'aws:PrincipalAccount': account } } };
    const dynamoDb = this.vpc.addGatewayEndpoint('DynamoDb', { service: GatewayVpcEndpointAwsService.DYNAMODB });
    dynamoDb.addToPolicy(
      new PolicyStatement({ ...fromThisAccount, actions: [...endpointAccess.dynamoDb.actions], resources: [...endpointAccess.dynamoDb.resources] }),
    );
    const allowed: Record<InterfaceEndpointService, PolicyStatement> = {
      secretsmanager: new PolicyStatement({
        ...fromThisAccount,
        actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        resources: [endpointAccess.secretsArnPattern],
      }),
      sqs: new PolicyStatement({ ...fromThisAccount, actions: ['sqs:SendMessage'], resources: [endpointAccess.dispatchQueueArn] }),
    };
    for (const service of egress.interfaceEndpoints) {
      const endpoint = this.vpc.addInterfaceEndpoint(service === 'sqs' ? 'Sqs' : 'SecretsManager', {
        service: INTERFACE_ENDPOINTS[service],
        privateDnsEnabled: true,
        open: false,
      });
      endpoint.addToPolicy(allowed[service]);
      endpoint.connections.allowDefaultPortFrom(this.outboundSecurityGroup, `${service} from the functions that call out`);
    }
  }

  /**
   * The address of a pinned allocation, read from EC2 when the stack deploys: a typo in a
   * hand-typed address would hand Ap21 and the providers the wrong one. CloudFormation cannot read
   * an allocation it does not own, so a call at deploy time does (DescribeAddresses).
   */
  private addressOf(allocationId: string, index: number, props: StaticEgressProps): string {
    const call = {
      service: 'EC2',
      action: 'describeAddresses',
      parameters: { AllocationIds: [allocationId] },
      physicalResourceId: PhysicalResourceId.of(allocationId),
      outputPaths: ['Addresses.0.PublicIp'],
    };
    const lookup = new AwsCustomResource(this, `ElasticIp${index}Address`, {
      onUpdate: call,
      policy: AwsCustomResourcePolicy.fromStatements([new PolicyStatement({ actions: ['ec2:DescribeAddresses'], resources: ['*'] })]),
      installLatestAwsSdk: false,
      logGroup: this.lookupLogGroup(props),
    });
    Validations.of(lookup).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ec2:DescribeAddresses supports no resource-level permissions; the lookup reads one allocation it is given and nothing else.',
    });
    this.acknowledgeLookupFunction();
    return lookup.getResponseField('Addresses.0.PublicIp');
  }

  private lookupLogGroup(props: StaticEgressProps): LogGroup {
    const existing = this.node.tryFindChild('ElasticIpLookupLogs') as LogGroup | undefined;
    return existing ?? new LogGroup(this, 'ElasticIpLookupLogs', { retention: props.logRetention, removalPolicy: props.removalPolicy });
  }

  /** The custom resources' one Lambda (a singleton at stack level, written by aws-cdk). */
  private acknowledgeLookupFunction(): void {
    const fn = Stack.of(this).node.tryFindChild(AWS_CUSTOM_RESOURCE_FUNCTION_ID);
    if (!fn) return;
    Validations.of(fn).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: "aws-cdk's AwsCustomResource function: the basic execution role lets it write its own logs; it has no other managed policy.",
    });
  }

  /**
   * Elastic IPs that outlive the stack: providers allowlist these addresses, so deleting the stack
   * must not release them. Their ids go into the stage config to keep them across a rebuild.
   */
  private allocateRetainedElasticIps(count: number): CfnEIP[] {
    return Array.from({ length: count }, (_, index) => {
      const eip = new CfnEIP(this, `ElasticIp${index + 1}`, { domain: 'vpc' });
      eip.applyRemovalPolicy(RemovalPolicy.RETAIN);
      return eip;
    });
  }
}

/** The construct id aws-cdk gives the singleton function behind every AwsCustomResource of a stack. */
const AWS_CUSTOM_RESOURCE_FUNCTION_ID = 'AWS679f53fac002430cb0da5b7982bd2287';
