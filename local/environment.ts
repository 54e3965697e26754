import { resolve } from 'node:path';

/**
 * The local runtime's environment (DESIGN §5): the same variable names as the Lambdas' environment
 * in AWS. Anything the engineer already exported wins.
 */
export interface LocalSettings {
  readonly port: number;
  readonly dynamoPort: number;
  readonly dataDir: string;
}

export function localSettings(env: NodeJS.ProcessEnv = process.env): LocalSettings {
  return {
    port: Number(env.PORT ?? 3000),
    dynamoPort: Number(env.DYNAMODB_PORT ?? 4567),
    dataDir: resolve(env.LOCAL_DATA_DIR ?? '.local'),
  };
}

export function applyLocalEnvironment(settings: LocalSettings, env: NodeJS.ProcessEnv = process.env): void {
  const defaults: Record<string, string> = {
    STAGE: 'local',
    TABLE_NAME: 'refund-relay-local',
    DYNAMODB_ENDPOINT: `http://127.0.0.1:${settings.dynamoPort}`,
    SECRETS_SOURCE: 'file',
    LOCAL_SECRETS_FILE: resolve(settings.dataDir, 'secrets.json'),
    PUBLIC_BASE_URL: `http://127.0.0.1:${settings.port}`,
    AWS_REGION: 'ap-southeast-2',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    POWERTOOLS_SERVICE_NAME: 'refund-relay',
  };
  for (const [name, value] of Object.entries(defaults)) env[name] ??= value;
}
