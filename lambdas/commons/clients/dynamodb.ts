import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * One document client per container. An endpoint (the runtime's `DYNAMODB_ENDPOINT`) points it at
 * dynalite locally and in tests (with throwaway credentials); without one, in AWS, the default
 * chain and region apply.
 */
export function createDocumentClient(endpoint: string | undefined): DynamoDBDocumentClient {
  const client = new DynamoDBClient({
    maxAttempts: 3,
    ...(endpoint && {
      endpoint,
      region: process.env.AWS_REGION ?? 'ap-southeast-2',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    }),
  });
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}
