import { ArnFormat, SecretValue, Stack, Validations, type RemovalPolicy } from 'aws-cdk-lib';
import { PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Secret, type ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { SECRET_NAMES, type SecretName } from '../lambdas/providers/registry';

/** The runtime's default `SECRETS_PREFIX` (lambdas/commons/config.ts): one name scheme for both. */
export const secretsPrefix = (stage: string): string => `refund-relay/${stage}/`;

export interface ProviderSecretsProps {
  readonly stage: string;
  /**
   * `create`: the stack creates each secret holding `{}` until an engineer stores the values, and
   * deletes it with the stack. `import`: the secrets exist before the stack and outlive it.
   */
  readonly source: 'create' | 'import';
  /** The customer-managed key imported secrets are encrypted with: readers may decrypt through Secrets Manager. */
  readonly keyArn?: string;
  readonly removalPolicy: RemovalPolicy;
}

/** One Secrets Manager secret per provider (JSON, keys listed in the README). */
export class ProviderSecrets extends Construct {
  private readonly secrets: Readonly<Record<SecretName, ISecret>>;
  private readonly stage: string;
  private readonly keyArn: string | undefined;

  constructor(scope: Construct, id: string, props: ProviderSecretsProps) {
    super(scope, id);
    this.stage = props.stage;
    this.keyArn = props.keyArn;
    const entries = SECRET_NAMES.map((name) => [name, this.secretFor(name, props)] as const);
    this.secrets = Object.fromEntries(entries) as Record<SecretName, ISecret>;
  }

  /**
   * Read access to exactly these secrets, and for imported secrets under a customer-managed key,
   * kms:Decrypt on that key only when Secrets Manager asks on the reader's behalf. (aws-cdk's own
   * grant adds nothing for an imported key through a service, so the statement is written here.)
   */
  grantRead(grantee: IGrantable, names: readonly SecretName[]): void {
    for (const name of names) this.secrets[name].grantRead(grantee);
    if (this.keyArn && names.length > 0) {
      grantee.grantPrincipal.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: [this.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` } },
        }),
      );
    }
  }

  /** Every secret of the stage, for a policy that cannot list them one by one (the VPC endpoint's). */
  arnPattern(): string {
    return this.arnOf(`${secretsPrefix(this.stage)}*`);
  }

  private arnOf(resourceName: string): string {
    return Stack.of(this).formatArn({ service: 'secretsmanager', resource: 'secret', resourceName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
  }

  private secretFor(name: SecretName, props: ProviderSecretsProps): ISecret {
    const secretName = `${secretsPrefix(props.stage)}${name}`;
    if (props.source === 'import') return Secret.fromSecretAttributes(this, name, { secretPartialArn: this.arnOf(secretName) });
    const secret = new Secret(this, name, {
      secretName,
      description: `refund-relay ${props.stage}: ${name} credentials (JSON; keys in the README)`,
      // A JSON object without keys: the runtime then names the missing keys instead of failing on a random string.
      secretStringValue: SecretValue.unsafePlainText('{}'),
      removalPolicy: props.removalPolicy,
    });
    Validations.of(secret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'The provider issues these credentials (API keys, merchant passwords, IPN keys); Secrets Manager cannot rotate them. ' +
        'They are rotated by hand when the provider issues new ones, and the runtime re-reads a secret after a failed check (SecretReader.refresh).',
    });
    return secret;
  }
}
