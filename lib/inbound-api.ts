import { RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import {
  AccessLogField,
  AccessLogFormat,
  EndpointType,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  ResponseType,
  RestApi,
  SecurityPolicy,
} from 'aws-cdk-lib/aws-apigateway';
import { Certificate } from 'aws-cdk-lib/aws-certificatemanager';
import { AnyPrincipal, Effect, PolicyDocument, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { LogGroup } from 'aws-cdk-lib/aws-logs';
import { ARecord, HostedZone, RecordTarget } from 'aws-cdk-lib/aws-route53';
import { ApiGateway } from 'aws-cdk-lib/aws-route53-targets';
import { Construct } from 'constructs';
import type { RouteDefinition } from '../lambdas/routes';
import { FunctionRegistryError } from './functions';
import { protectedLogGroup } from './log-protection';
import type { StageConfig } from './stage-config';

export interface InboundApiProps {
  readonly config: StageConfig;
  readonly routes: readonly RouteDefinition[];
  readonly functions: ReadonlyMap<string, IFunction>;
}

/** Any stage and method of a route path; `{orderId}` becomes any single segment. */
export const executeApiResource = (path: string): string => `execute-api:/*/*${path.replace(/\{\w+\}/g, '*')}`;

/**
 * The REST API of docs/design.md §3: every route of `lambdas/routes.ts` to its function, as the local
 * server serves them.
 *
 * - Every body reaches the handler base64-encoded (`*\/*` is binary), so signatures are checked
 *   over the exact bytes sent; the local server does the same.
 * - Size: API Gateway refuses bodies over 10 MB; each handler refuses more than its `maxBodyBytes`
 *   (64 KiB unless it says otherwise) with 413.
 * - Source IPs: where the stage lists an allowlist for a path, the resource policy denies every
 *   other address on it. Handlers check the caller too; this keeps strangers from reaching them.
 */
export class InboundApi extends Construct {
  readonly api: RestApi;
  /** The base of callback URLs: the custom domain, or this API's stage URL when the stage has none. */
  readonly publicBaseUrl: string;
  /** One JSON line per request (ACCESS_LOG_FORMAT), including those the resource policy refused. */
  readonly accessLogs: LogGroup;
  /** The alias record of the custom domain, when the stage names its hosted zone. */
  readonly aliasRecord: ARecord | undefined;

  constructor(scope: Construct, id: string, props: InboundApiProps) {
    super(scope, id);
    const { config } = props;
    const logs = { retention: config.logRetention, removalPolicy: config.removalPolicy };
    const accessLogs = protectedLogGroup(this, 'AccessLogs', logs);
    this.accessLogs = accessLogs;
    this.api = new RestApi(this, 'Api', {
      restApiName: `refund-relay-${config.stage}`,
      description: 'refund-relay inbound callbacks and webhooks (docs/design.md §3)',
      endpointConfiguration: { types: [EndpointType.REGIONAL] },
      binaryMediaTypes: ['*/*'],
      policy: resourcePolicy(config.ipAllowlists),
      // API Gateway writes logs through one role per account and region; keeping it when this
      // stack goes away keeps other APIs in the account logging.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: config.stage,
        throttlingRateLimit: config.apiThrottle.rateLimit,
        throttlingBurstLimit: config.apiThrottle.burstLimit,
        accessLogDestination: new LogGroupLogDestination(accessLogs),
        accessLogFormat: ACCESS_LOG_FORMAT,
        loggingLevel: MethodLoggingLevel.ERROR,
        // Request and response bodies carry signatures, card digits and e-mail addresses.
        dataTraceEnabled: false,
        tracingEnabled: true,
      },
      ...(config.customDomain && {
        domainName: {
          domainName: config.customDomain.domainName,
          certificate: Certificate.fromCertificateArn(this, 'Certificate', config.customDomain.certificateArn),
          endpointType: EndpointType.REGIONAL,
          securityPolicy: SecurityPolicy.TLS_1_2,
        },
      }),
    });
    for (const route of props.routes) this.addRoute(route, props.functions);
    this.addGatewayResponses();

    // API Gateway creates its execution log group on first use, outside any stack and kept
    // forever; created here first, it has the stage's retention and goes with the stack.
    const executionLogs = protectedLogGroup(this, 'ExecutionLogs', {
      ...logs,
      logGroupName: `API-Gateway-Execution-Logs_${this.api.restApiId}/${config.stage}`,
    });
    this.api.deploymentStage.node.addDependency(executionLogs);

    const zone = config.customDomain?.hostedZone;
    this.aliasRecord =
      config.customDomain && zone
        ? new ARecord(this, 'AliasRecord', {
            zone: HostedZone.fromHostedZoneAttributes(this, 'Zone', { hostedZoneId: zone.id, zoneName: zone.name }),
            recordName: config.customDomain.domainName,
            target: RecordTarget.fromAlias(new ApiGateway(this.api)),
            comment: `refund-relay ${config.stage}: callback URLs handed to Apace use this name`,
          })
        : undefined;

    // Built from the API id, not `api.url`: that names the stage, whose deployment depends on the
    // API's functions, so a function holding it in its environment would be a dependency cycle.
    const { region, urlSuffix } = Stack.of(this);
    this.publicBaseUrl = config.customDomain
      ? `https://${config.customDomain.domainName}`
      : `https://${this.api.restApiId}.execute-api.${region}.${urlSuffix}/${config.stage}`;
    this.acknowledgeFindings();
  }

  private addRoute(route: RouteDefinition, functions: ReadonlyMap<string, IFunction>): void {
    const fn = functions.get(route.fn);
    if (!fn) throw new FunctionRegistryError(`route ${route.method} ${route.path} needs function ${route.fn}, which is not in lib/function-registry.ts`);
    const method = this.api.root.resourceForPath(route.path).addMethod(route.method, new LambdaIntegration(fn, { allowTestInvoke: false }));
    const authorization =
      route.caller === 'anyone'
        ? 'A public liveness probe: it answers {"ok":true} and reads nothing.'
        : `${route.caller} cannot sign with IAM or Cognito; the handler authenticates each call as docs/design.md §3 specifies (URL tokens, HMAC signatures, bearer tokens, source IPs), locally and in AWS alike.`;
    Validations.of(method).acknowledge(
      { id: 'AwsSolutions-APIG4', reason: authorization },
      { id: 'AwsSolutions-COG4', reason: `Callers are servers or probes, not Cognito users. ${authorization}` },
    );
  }

  /**
   * Answers API Gateway gives itself, before any handler runs, in the handlers' error shape (the
   * OpenAPI document lists them): a source address an allowlist refuses (403), the stage's
   * throttle (429), and a path or method with no route (404, as the local server answers). The
   * caller's `x-correlation-id` is echoed when it sent one.
   */
  private addGatewayResponses(): void {
    const answers: [string, ResponseType, string, string, string][] = [
      ['SourceRefused', ResponseType.ACCESS_DENIED, '403', 'forbidden_source', 'this source address may not call this path'],
      ['Throttled', ResponseType.THROTTLED, '429', 'throttled', 'too many requests; retry later'],
      ['NoRoute', ResponseType.MISSING_AUTHENTICATION_TOKEN, '404', 'route_not_found', 'no route for this method and path'],
    ];
    for (const [id, type, statusCode, code, message] of answers) {
      this.api.addGatewayResponse(id, {
        type,
        statusCode,
        responseHeaders: { 'content-type': "'application/json'", 'x-correlation-id': 'method.request.header.x-correlation-id' },
        templates: { 'application/json': JSON.stringify({ error: { code, message } }) },
      });
    }
  }

  private acknowledgeFindings(): void {
    Validations.of(this.api).acknowledge({
      id: 'AwsSolutions-APIG2',
      reason:
        'Handlers validate every request (zod schemas over the raw bytes) and answer with our error shape; API Gateway validation would answer differently in AWS than locally.',
    });
    Validations.of(this.api.deploymentStage).acknowledge({
      id: 'AwsSolutions-APIG3',
      reason:
        'Callers are a handful of provider servers, each authenticated per request, restricted by source IP where the provider publishes its addresses, and throttled by the stage. A WAF can be associated later without code changes.',
    });
    const cloudWatchRole = this.api.node.tryFindChild('CloudWatchRole');
    if (cloudWatchRole) {
      Validations.of(cloudWatchRole).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        reason:
          "API Gateway's account-wide logging role: it creates and writes the execution log groups it names itself, which is what this AWS service-role policy covers.",
      });
    }
  }
}

/** Open to everyone except on allowlisted paths, where every other source address is denied. */
function resourcePolicy(ipAllowlists: StageConfig['ipAllowlists']): PolicyDocument {
  const invoke = { principals: [new AnyPrincipal()], actions: ['execute-api:Invoke'] };
  return new PolicyDocument({
    statements: [
      new PolicyStatement({ ...invoke, effect: Effect.ALLOW, resources: [executeApiResource('/*')] }),
      ...Object.entries(ipAllowlists).map(
        ([path, addresses]) =>
          new PolicyStatement({
            ...invoke,
            effect: Effect.DENY,
            resources: [executeApiResource(path)],
            conditions: { NotIpAddress: { 'aws:SourceIp': [...addresses] } },
          }),
      ),
    ],
  });
}

// Paths and status, never query strings: Apace's callback URLs carry their auth_token there.
const ACCESS_LOG_FORMAT = AccessLogFormat.custom(
  JSON.stringify({
    requestId: AccessLogField.contextRequestId(),
    stage: AccessLogField.contextStage(),
    sourceIp: AccessLogField.contextIdentitySourceIp(),
    requestTime: AccessLogField.contextRequestTime(),
    method: AccessLogField.contextHttpMethod(),
    resourcePath: AccessLogField.contextResourcePath(),
    status: AccessLogField.contextStatus(),
    protocol: AccessLogField.contextProtocol(),
    responseLength: AccessLogField.contextResponseLength(),
    responseLatency: AccessLogField.contextResponseLatency(),
    integrationLatency: AccessLogField.contextIntegrationLatency(),
    error: AccessLogField.contextErrorMessage(),
    integrationError: AccessLogField.contextIntegrationErrorMessage(),
  }),
);
