import type { Function as LambdaFn } from 'aws-cdk-lib/aws-lambda';
import { STAGES } from '../../lib/stage-config';
import { stageConfigProblems } from '../../lib/stage-validation';
import { actionsOf, logicalId, onlyOfType, resourcesOfType, roleStatements, synthesizeStage } from './support';

const putEventsHolders = (resources: ReturnType<typeof synthesizeStage>['resources'], roleIds: string[]) =>
  roleIds.filter((roleId) => roleStatements(resources, roleId).some((statement) => actionsOf(statement).includes('events:PutEvents')));

describe('Apace offer delivery in the stack', () => {
  it('creates no offer bus and grants no PutEvents when the stage delivers offers by e-mail', () => {
    const { resources } = synthesizeStage(STAGES.dev);
    expect(STAGES.dev.providerSettings.apace?.APACE_OFFER_DELIVERY).toBe('email');
    expect(resourcesOfType(resources, 'AWS::Events::EventBus')).toEqual([]);
    expect(
      putEventsHolders(
        resources,
        resourcesOfType(resources, 'AWS::IAM::Role').map(([id]) => id),
      ),
    ).toEqual([]);
  });

  it('with event delivery, gives the dispatcher alone the bus name and events:PutEvents on that bus only', () => {
    const config = {
      ...STAGES.dev,
      providerSettings: { ...STAGES.dev.providerSettings, apace: { ...STAGES.dev.providerSettings.apace, APACE_OFFER_DELIVERY: 'event' } },
    };
    expect(stageConfigProblems(config)).toEqual([]);
    const { stack, resources } = synthesizeStage(config);
    const [busId, bus] = onlyOfType(resources, 'AWS::Events::EventBus');
    expect(bus.Properties?.Name).toBe('refund-relay-dev-offers');
    const dispatcher = stack.functions.byName.get('dispatcher') as LambdaFn;
    const dispatcherRole = logicalId(dispatcher.role as never);
    const roles = resourcesOfType(resources, 'AWS::IAM::Role').map(([id]) => id);
    expect(putEventsHolders(resources, roles)).toEqual([dispatcherRole]);
    const grant = roleStatements(resources, dispatcherRole).find((statement) => actionsOf(statement).includes('events:PutEvents'))!;
    expect(actionsOf(grant)).toEqual(['events:PutEvents']);
    expect(grant.Resource).toEqual({ 'Fn::GetAtt': [busId, 'Arn'] });
    const environment = (resources[logicalId(dispatcher)]!.Properties as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables;
    expect(environment.APACE_OFFER_EVENT_BUS).toEqual({ Ref: busId });
    expect(environment.APACE_OFFER_DELIVERY).toBe('event');
  });

  it('refuses a stage whose delivery mode or link templates the dispatcher would refuse at start', () => {
    const apace = (settings: Record<string, string>) => ({ ...STAGES.dev, providerSettings: { ...STAGES.dev.providerSettings, apace: settings } });
    expect(stageConfigProblems(apace({ APACE_OFFER_DELIVERY: 'sms' }))).toEqual(['providerSettings.apace.APACE_OFFER_DELIVERY "sms" must be email or event']);
    expect(stageConfigProblems(apace({ APACE_ORDER_URL_TEMPLATE: 'https://shop.example.com/{order}' }))).toEqual([
      'providerSettings.apace.APACE_ORDER_URL_TEMPLATE unknown placeholder(s) {order}; allowed: {orderNumber}',
    ]);
    expect(stageConfigProblems(apace({ APACE_OFFER_EVENT_BUS: 'mine' }))).toHaveLength(1);
  });
});
