import { Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { RefundRelayStack } from './refund-relay-stack';
import { stageConfig } from './stage-validation';

/**
 * The app behind `cdk synth|deploy -c stage=<stage>`: the one stack of that stage, checked by
 * cdk-nag's AwsSolutions pack on every synth, so an unacknowledged finding stops a deploy.
 */
export function defineApp(app: App): RefundRelayStack {
  const config = stageConfig(app.node.tryGetContext('stage'));
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return new RefundRelayStack(app, { config });
}
