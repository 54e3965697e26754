import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Loopback fakes of the few AWS APIs the operator CLI calls with a stage, speaking each service's
 * wire protocol so the real SDK clients run unchanged (point them here with AWS_ENDPOINT_URL_<SERVICE>).
 */
export interface AwsFakes {
  readonly url: string;
  /** DescribeStacks answers for these stacks; any other name is "does not exist". */
  readonly stacks: Map<string, Record<string, string>>;
  /** Message bodies received by SQS SendMessageBatch, per queue URL. */
  readonly sqsMessages: { queueUrl: string; body: string }[];
  close(): Promise<void>;
}

const xmlEscape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function describeStacks(response: ServerResponse, stacks: AwsFakes['stacks'], form: URLSearchParams): void {
  const name = form.get('StackName') ?? '';
  const outputs = stacks.get(name);
  if (!outputs) {
    response.writeHead(400, { 'content-type': 'text/xml' });
    response.end(
      `<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id ${xmlEscape(name)} does not exist</Message></Error><RequestId>1</RequestId></ErrorResponse>`,
    );
    return;
  }
  const members = Object.entries(outputs)
    .map(([key, value]) => `<member><OutputKey>${xmlEscape(key)}</OutputKey><OutputValue>${xmlEscape(value)}</OutputValue></member>`)
    .join('');
  response.writeHead(200, { 'content-type': 'text/xml' });
  response.end(
    `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>` +
      `<StackName>${xmlEscape(name)}</StackName><StackId>arn:aws:cloudformation:ap-southeast-2:000000000000:stack/${xmlEscape(name)}/1</StackId>` +
      `<CreationTime>2026-01-01T00:00:00.000Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus><Outputs>${members}</Outputs>` +
      `</member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></DescribeStacksResponse>`,
  );
}

function sendMessageBatch(
  response: ServerResponse,
  messages: AwsFakes['sqsMessages'],
  body: { QueueUrl: string; Entries: { Id: string; MessageBody: string }[] },
): void {
  const successful = body.Entries.map((entry) => {
    messages.push({ queueUrl: body.QueueUrl, body: entry.MessageBody });
    return { Id: entry.Id, MessageId: `m-${messages.length}`, MD5OfMessageBody: createHash('md5').update(entry.MessageBody).digest('hex') };
  });
  response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
  response.end(JSON.stringify({ Successful: successful, Failed: [] }));
}

export async function startAwsFakes(): Promise<AwsFakes> {
  const stacks = new Map<string, Record<string, string>>();
  const sqsMessages: AwsFakes['sqsMessages'] = [];
  const server = createServer(async (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const target = String(request.headers['x-amz-target'] ?? '');
    if (target === 'AmazonSQS.SendMessageBatch') return sendMessageBatch(response, sqsMessages, JSON.parse(text));
    const form = new URLSearchParams(text);
    if (form.get('Action') === 'DescribeStacks') return describeStacks(response, stacks, form);
    response.writeHead(400, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ __type: 'UnknownOperationException', message: `fake does not serve ${target || form.get('Action')}` }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stacks,
    sqsMessages,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
