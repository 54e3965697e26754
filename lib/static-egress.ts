import { RemovalPolicy } from 'aws-cdk-lib';
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
} from 'aws-cdk-lib/aws-ec2';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { ElasticIp } from './stage-config';

export interface StaticEgressProps {
  readonly availabilityZones: number;
  /** Pinned allocations; absent, the construct allocates its own and retains them. */
  readonly elasticIps?: readonly ElasticIp[];
  readonly logRetention: RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * The one way out to providers and Ap21: private subnets whose traffic leaves through NAT gateways
 * on fixed Elastic IPs, the addresses Ap21 and the providers allowlist (docs/design.md §6). DynamoDB and
 * Secrets Manager are reached through VPC endpoints, so only provider traffic crosses the NAT.
 */
export class StaticEgress extends Construct {
  readonly vpc: Vpc;
  /** For functions that call out: HTTPS out, nothing in. */
  readonly outboundSecurityGroup: SecurityGroup;
  /** The egress IPs to hand to Ap21 and the providers (tokens when the stack allocates them). */
  readonly egressIps: readonly string[];
  readonly allocationIds: readonly string[];

  constructor(scope: Construct, id: string, props: StaticEgressProps) {
    super(scope, id);
    const elasticIps = props.elasticIps ?? this.allocateRetainedElasticIps(props.availabilityZones);
    this.egressIps = elasticIps.map((ip) => ip.publicIp);
    this.allocationIds = elasticIps.map((ip) => ip.allocationId);

    this.vpc = new Vpc(this, 'Vpc', {
      ipAddresses: IpAddresses.cidr('10.40.0.0/16'),
      maxAzs: props.availabilityZones,
      natGateways: props.availabilityZones,
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

    this.vpc.addGatewayEndpoint('DynamoDb', { service: GatewayVpcEndpointAwsService.DYNAMODB });
    const secretsManager = this.vpc.addInterfaceEndpoint('SecretsManager', {
      service: InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
      privateDnsEnabled: true,
      open: false,
    });
    secretsManager.connections.allowDefaultPortFrom(this.outboundSecurityGroup, 'Secrets Manager from the functions that call out');
  }

  /**
   * Elastic IPs that outlive the stack: providers allowlist these addresses, so deleting the stack
   * must not release them. Their ids go into the stage config to keep them across a rebuild.
   */
  private allocateRetainedElasticIps(count: number): ElasticIp[] {
    return Array.from({ length: count }, (_, index) => {
      const eip = new CfnEIP(this, `ElasticIp${index + 1}`, { domain: 'vpc' });
      eip.applyRemovalPolicy(RemovalPolicy.RETAIN);
      return { allocationId: eip.attrAllocationId, publicIp: eip.attrPublicIp };
    });
  }
}
