import { SecretValue, Validations, type RemovalPolicy } from 'aws-cdk-lib';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import { Secret, type ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { SECRET_NAMES, type SecretName } from '../lambdas/commons/secrets';

/** The runtime's default `SECRETS_PREFIX` (lambdas/commons/config.ts): one name scheme for both. */
export const secretsPrefix = (stage: string): string => `refund-relay/${stage}/`;

export interface ProviderSecretsProps {
  readonly stage: string;
  /** `create`: the stack creates each secret holding `{}` until an engineer stores the values. */
  readonly source: 'create' | 'import';
  readonly removalPolicy: RemovalPolicy;
}

/** One Secrets Manager secret per provider (JSON, keys listed in the README). */
export class ProviderSecrets extends Construct {
  private readonly secrets: Readonly<Record<SecretName, ISecret>>;

  constructor(scope: Construct, id: string, props: ProviderSecretsProps) {
    super(scope, id);
    const entries = SECRET_NAMES.map((name) => [name, this.secretFor(name, props)] as const);
    this.secrets = Object.fromEntries(entries) as Record<SecretName, ISecret>;
  }

  /** Read access to exactly these secrets. */
  grantRead(grantee: IGrantable, names: readonly SecretName[]): void {
    for (const name of names) this.secrets[name].grantRead(grantee);
  }

  private secretFor(name: SecretName, props: ProviderSecretsProps): ISecret {
    const secretName = `${secretsPrefix(props.stage)}${name}`;
    if (props.source === 'import') return Secret.fromSecretNameV2(this, name, secretName);
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
