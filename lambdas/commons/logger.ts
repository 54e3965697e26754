import type { Context } from 'aws-lambda';
import { redactForLog } from './redact';

/**
 * The one structured JSON logger. One JSON object per line on stdout, with the keys the Powertools
 * logger writes (`level`, `message`, `timestamp`, `service`, `sampling_rate`, `xray_trace_id`, the
 * Lambda context's `cold_start`, `function_name`, `function_request_id`, …) and the same settings
 * (`POWERTOOLS_LOG_LEVEL`, `POWERTOOLS_SERVICE_NAME`, `POWERTOOLS_LOGGER_SAMPLE_RATE`, Lambda's own
 * `AWS_LAMBDA_LOG_LEVEL`), so log queries and alarms read it as before. It is ours rather than
 * Powertools' because Powertools brought ~27 KB into every bundle for these few lines (README,
 * `npm run bench`: each bundle within 1.3× of its SDK clients). Every record passes through `redactForLog`, so a secret,
 * card number or customer e-mail cannot reach the logs whatever a caller passes in.
 */
export type LogLevel = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'CRITICAL' | 'SILENT';

const SEVERITY: Record<LogLevel, number> = { TRACE: 6, DEBUG: 8, INFO: 12, WARN: 16, ERROR: 20, CRITICAL: 24, SILENT: 28 };

/** What a caller may add to a record: objects are merged in, an error goes under `error`. */
export type LogExtra = Readonly<Record<string, unknown>> | Error | undefined;

export interface LoggerOptions {
  readonly serviceName?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly write?: (line: string) => void;
  readonly random?: () => number;
}

function levelFrom(value: string | undefined): LogLevel | undefined {
  const upper = value?.trim().toUpperCase();
  return upper !== undefined && upper in SEVERITY ? (upper as LogLevel) : undefined;
}

/** A replacer that masks (redactForLog), and survives cycles and bigints instead of throwing. */
function safeReplacer(): (this: unknown, key: string, value: unknown) => unknown {
  const seen = new WeakSet<object>();
  return function (key, value) {
    const masked = redactForLog(key, value);
    if (typeof masked === 'bigint') return masked.toString();
    if (typeof masked === 'object' && masked !== null) {
      if (seen.has(masked)) return '[Circular]';
      seen.add(masked);
    }
    return masked;
  };
}

export class Logger {
  private readonly service: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly write: (line: string) => void;
  private readonly random: () => number;
  private configuredLevel: LogLevel;
  private readonly sampleRate: number;
  private level: LogLevel;
  private context: Record<string, unknown> = {};
  private keys: Record<string, unknown> = {};
  private coldStart = true;

  constructor(options: LoggerOptions = {}) {
    this.env = options.env ?? process.env;
    this.service = options.serviceName ?? this.env.POWERTOOLS_SERVICE_NAME ?? 'refund-relay';
    this.write = options.write ?? ((line) => process.stdout.write(line));
    this.random = options.random ?? Math.random;
    // Lambda's advanced logging control wins, as in Powertools; then ours; INFO by default.
    this.configuredLevel = levelFrom(this.env.AWS_LAMBDA_LOG_LEVEL) ?? levelFrom(this.env.POWERTOOLS_LOG_LEVEL) ?? levelFrom(this.env.LOG_LEVEL) ?? 'INFO';
    const rate = Number(this.env.POWERTOOLS_LOGGER_SAMPLE_RATE ?? 0);
    this.sampleRate = Number.isFinite(rate) && rate > 0 ? Math.min(rate, 1) : 0;
    this.level = this.configuredLevel;
    this.refreshSampleRateCalculation();
  }

  /** Per invocation: a sampled invocation logs at DEBUG, as Powertools' sampling does. */
  refreshSampleRateCalculation(): void {
    this.level = this.sampleRate > 0 && this.random() <= this.sampleRate ? 'DEBUG' : this.configuredLevel;
  }

  setLogLevel(level: LogLevel): void {
    this.configuredLevel = level;
    this.level = level;
  }

  /** The Lambda context's fields, on every record of this invocation. */
  addContext(context: Context): void {
    this.context = {
      cold_start: this.coldStart,
      function_arn: context.invokedFunctionArn,
      function_memory_size: Number(context.memoryLimitInMB),
      function_name: context.functionName,
      function_request_id: context.awsRequestId,
    };
    this.coldStart = false;
  }

  appendKeys(keys: Readonly<Record<string, unknown>>): void {
    Object.assign(this.keys, keys);
  }

  /** Forgets the keys and context of the invocation that ended. */
  resetKeys(): void {
    this.keys = {};
    this.context = {};
  }

  debug(message: string, ...extras: LogExtra[]): void {
    this.log('DEBUG', message, extras);
  }

  info(message: string, ...extras: LogExtra[]): void {
    this.log('INFO', message, extras);
  }

  warn(message: string, ...extras: LogExtra[]): void {
    this.log('WARN', message, extras);
  }

  error(message: string, ...extras: LogExtra[]): void {
    this.log('ERROR', message, extras);
  }

  critical(message: string, ...extras: LogExtra[]): void {
    this.log('CRITICAL', message, extras);
  }

  private log(level: Exclude<LogLevel, 'SILENT'>, message: string, extras: readonly LogExtra[]): void {
    if (SEVERITY[level] < SEVERITY[this.level]) return;
    const timestamp = new Date().toISOString();
    let line: string;
    try {
      const record: Record<string, unknown> = { level, message, timestamp, service: this.service, sampling_rate: this.sampleRate, ...this.context };
      const trace = /Root=([^;]+)/.exec(this.env._X_AMZN_TRACE_ID ?? '')?.[1];
      if (trace) record.xray_trace_id = trace;
      Object.assign(record, this.keys);
      for (const extra of extras) {
        if (extra instanceof Error) record.error = extra;
        else if (extra) Object.assign(record, extra);
      }
      line = JSON.stringify(record, safeReplacer());
    } catch {
      // A getter that throws, say: the record is still written, without what could not be read.
      line = JSON.stringify({ level, message: redactForLog('message', message), timestamp, service: this.service, log_error: 'unserialisable attributes' });
    }
    this.write(`${line}\n`);
  }
}

export const logger = new Logger();
