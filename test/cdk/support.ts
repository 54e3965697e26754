import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { RouteDefinition } from '../../lambdas/routes';
import type { FunctionDefinition } from '../../lib/function-registry';
import { RefundRelayStack } from '../../lib/refund-relay-stack';
import type { StageConfig } from '../../lib/stage-config';

/** The committed context lookups, as `cdk synth` reads them: no AWS call is ever needed. */
export const COMMITTED_CONTEXT = JSON.parse(readFileSync(join(__dirname, '..', '..', 'cdk.context.json'), 'utf8')) as Record<string, unknown>;
/** cdk.json's context: the feature flags every synth runs with. */
export const CDK_JSON_CONTEXT = (JSON.parse(readFileSync(join(__dirname, '..', '..', 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;

export interface SynthesizedStage {
  readonly stack: RefundRelayStack;
  readonly template: Template;
  readonly resources: Record<string, CfnResource>;
  /** Context lookups the synthesis could not answer offline (`cdk synth` would call AWS for them). */
  readonly missingContext: string[];
}

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly DependsOn?: string | string[];
  readonly DeletionPolicy?: string;
  readonly UpdateReplacePolicy?: string;
}

/**
 * One stage's stack for assertions. Built-in CloudFormation validation and esbuild bundling are
 * off here to keep the files fast; `synth.test.ts` runs one stage with both on. Template.fromStack
 * refuses a template whose resources form a dependency cycle, so every stack built here has none.
 */
export function synthesizeStage(
  config: StageConfig,
  overrides: { functions?: readonly FunctionDefinition[]; routes?: readonly RouteDefinition[] } = {},
): SynthesizedStage {
  const app = new App({ context: { ...CDK_JSON_CONTEXT, ...COMMITTED_CONTEXT, 'aws:cdk:bundling-stacks': [] }, builtinCloudFormationValidation: false });
  const stack = new RefundRelayStack(app, { config, ...overrides });
  const template = Template.fromStack(stack);
  const missingContext = (app.synth().manifest.missing ?? []).map((lookup) => lookup.key);
  return { stack, template, resources: template.toJSON().Resources as Record<string, CfnResource>, missingContext };
}

/** The logical id of a construct's CloudFormation resource, e.g. a function's or a role's. */
export function logicalId(construct: { node: { defaultChild?: unknown } }): string {
  const resource = construct.node.defaultChild as CfnElement;
  return Stack.of(resource).getLogicalId(resource);
}

export function resourcesOfType(resources: Record<string, CfnResource>, type: string): [string, CfnResource][] {
  return Object.entries(resources).filter(([, resource]) => resource.Type === type);
}

/** The one resource of a type (its logical id and body); throws when there are none or several. */
export function onlyOfType(resources: Record<string, CfnResource>, type: string): [string, CfnResource] {
  const found = resourcesOfType(resources, type);
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  return found[0]!;
}

/** Logical ids a value refers to through Ref or Fn::GetAtt, at any depth. */
export function referencedIds(value: unknown): Set<string> {
  const ids = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== 'object') return;
    for (const [key, child] of Object.entries(node)) {
      if (key === 'Ref' && typeof child === 'string') ids.add(child);
      else if (key === 'Fn::GetAtt' && Array.isArray(child)) ids.add(String(child[0]));
      else visit(child);
    }
  };
  visit(value);
  return ids;
}

export interface Statement {
  readonly Effect: string;
  readonly Action: string | string[];
  readonly Resource: unknown;
  readonly Condition?: Record<string, Record<string, string | string[]>>;
}

/** Every statement of every inline policy attached to the role. */
export function roleStatements(resources: Record<string, CfnResource>, roleId: string): Statement[] {
  return resourcesOfType(resources, 'AWS::IAM::Policy')
    .filter(([, policy]) => referencedIds(policy.Properties?.Roles).has(roleId))
    .flatMap(([, policy]) => (policy.Properties?.PolicyDocument as { Statement: Statement[] }).Statement);
}

export const actionsOf = (statement: Statement): string[] => [statement.Action].flat();

/** The full path of each API Gateway method, e.g. `GET /apace/orders/{orderId}/…`, to its properties. */
export function apiMethods(resources: Record<string, CfnResource>): Map<string, Record<string, unknown>> {
  const pathOf = (resourceRef: unknown): string => {
    const [id] = referencedIds(resourceRef);
    const resource = id === undefined ? undefined : resources[id];
    if (resource?.Type !== 'AWS::ApiGateway::Resource') return '';
    return `${pathOf(resource.Properties?.ParentId)}/${String(resource.Properties?.PathPart)}`;
  };
  return new Map(
    resourcesOfType(resources, 'AWS::ApiGateway::Method').map(([, method]) => [
      `${String(method.Properties?.HttpMethod)} ${pathOf(method.Properties?.ResourceId) || '/'}`,
      method.Properties ?? {},
    ]),
  );
}
