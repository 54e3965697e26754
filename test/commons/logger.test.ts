import type { Context } from 'aws-lambda';
import { Logger } from '../../lambdas/commons/logger';

function capture(env: NodeJS.ProcessEnv, random = () => 1) {
  const lines: Record<string, unknown>[] = [];
  const logger = new Logger({ env, random, write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

const context = { functionName: 'dispatcher', awsRequestId: 'req-1', invokedFunctionArn: 'arn:aws:lambda:x', memoryLimitInMB: '256' } as Context;

describe('logger', () => {
  it('writes one JSON record per line with the Powertools keys, at the configured level', () => {
    const { logger, lines } = capture({ POWERTOOLS_LOG_LEVEL: 'warn', POWERTOOLS_SERVICE_NAME: 'svc', _X_AMZN_TRACE_ID: 'Root=1-abc;Parent=2;Sampled=1' });
    logger.info('not written');
    logger.warn('written', { order_id: 'o1' });
    logger.error('failed', new Error('boom'));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 'WARN', message: 'written', service: 'svc', order_id: 'o1', xray_trace_id: '1-abc', sampling_rate: 0 });
    expect(Date.parse(lines[0]!.timestamp as string)).not.toBeNaN();
    expect(lines[1]).toMatchObject({ level: 'ERROR', error: { name: 'Error', message: 'boom' } });
    expect(JSON.stringify(lines[1])).not.toContain('stack');
  });

  it("Lambda's own log level wins, SILENT writes nothing, an unknown level means INFO", () => {
    const lambda = capture({ AWS_LAMBDA_LOG_LEVEL: 'ERROR', POWERTOOLS_LOG_LEVEL: 'DEBUG' });
    lambda.logger.warn('no');
    expect(lambda.lines).toHaveLength(0);
    const silent = capture({ POWERTOOLS_LOG_LEVEL: 'SILENT' });
    silent.logger.critical('no');
    expect(silent.lines).toHaveLength(0);
    const unknown = capture({ POWERTOOLS_LOG_LEVEL: 'LOUD' });
    unknown.logger.debug('no');
    unknown.logger.info('yes');
    expect(unknown.lines.map((l) => l.message)).toEqual(['yes']);
  });

  it('adds the invocation context and keys, cold start once, and forgets them after the invocation', () => {
    const { logger, lines } = capture({});
    logger.addContext(context);
    logger.appendKeys({ refund_id: 'r1' });
    logger.info('first');
    logger.resetKeys();
    logger.addContext(context);
    logger.info('second');
    logger.resetKeys();
    logger.info('outside');
    expect(lines[0]).toMatchObject({ cold_start: true, function_name: 'dispatcher', function_request_id: 'req-1', function_memory_size: 256, refund_id: 'r1' });
    expect(lines[1]).toMatchObject({ cold_start: false });
    expect(lines[1]).not.toHaveProperty('refund_id');
    expect(lines[2]).not.toHaveProperty('function_name');
  });

  it('samples an invocation to DEBUG at POWERTOOLS_LOGGER_SAMPLE_RATE', () => {
    let roll = 0.05;
    const { logger, lines } = capture({ POWERTOOLS_LOGGER_SAMPLE_RATE: '0.1' }, () => roll);
    logger.debug('sampled');
    roll = 0.5;
    logger.refreshSampleRateCalculation();
    logger.debug('not sampled');
    expect(lines.map((l) => l.message)).toEqual(['sampled']);
    expect(lines[0]).toMatchObject({ sampling_rate: 0.1 });
  });

  it('writes a record whatever the attributes hold: cycles, bigints, throwing getters', () => {
    const { logger, lines } = capture({});
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    logger.info('cycle', { cyclic, big: 10n });
    logger.info('getter', {
      get bad(): string {
        throw new Error('no');
      },
    });
    expect(lines[0]).toMatchObject({ cyclic: { a: 1, self: '[Circular]' }, big: '10' });
    expect(lines[1]).toMatchObject({ message: 'getter', log_error: 'unserialisable attributes' });
  });
});
