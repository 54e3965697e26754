import { remainingMs } from '../commons/deadline';

/**
 * The one way refund-relay calls a provider: global fetch (keep-alive), a hard timeout, a bounded
 * response body, and transport failures turned into ProviderCallError. Callers classify HTTP
 * statuses themselves because each provider's error bodies mean different things.
 */
export interface OutboundRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly timeoutMs: number;
}

export interface OutboundResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

const MAX_RESPONSE_BYTES = 2 * 1024 * 1024;

/**
 * No usable answer came back. `ambiguous` means the provider may have acted on the request (a
 * timeout or reset after sending), so only a retry with the same idempotency reference is safe.
 */
export class ProviderCallError extends Error {
  override readonly name = 'ProviderCallError';
  constructor(
    readonly provider: string,
    readonly kind: 'timeout' | 'network' | 'too_large',
    readonly ambiguous: boolean,
    message: string,
  ) {
    super(message);
  }
}

/** Statuses worth retrying later: the provider is busy, throttling or failing for now. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

async function readBounded(response: Response, provider: string): Promise<string> {
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > MAX_RESPONSE_BYTES) throw new ProviderCallError(provider, 'too_large', true, `${provider} answered more than ${MAX_RESPONSE_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Time kept after a provider call for recording its outcome before the invocation's deadline. */
const RECORD_OUTCOME_MS = 1_000;

/**
 * Calls a provider, waiting at most `timeoutMs`, and never past the invocation's deadline
 * (commons/deadline.ts) less the time to record the outcome: a call that cannot start in time is
 * not sent at all (not ambiguous), and one cut short by the deadline is a timeout like any other.
 */
export async function callProvider(provider: string, request: OutboundRequest): Promise<OutboundResponse> {
  const left = remainingMs() - RECORD_OUTCOME_MS;
  if (left <= 0) throw new ProviderCallError(provider, 'timeout', false, `no time left in this invocation to call ${provider}; not sent`);
  const cappedByDeadline = left < request.timeoutMs;
  const timeoutMs = cappedByDeadline ? Math.floor(left) : request.timeoutMs;
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const response = await fetch(request.url, {
      method: request.method,
      ...(request.headers && { headers: request.headers }),
      ...(request.body !== undefined && { body: request.body }),
      signal,
      redirect: 'manual',
    });
    return { status: response.status, headers: response.headers, text: await readBounded(response, provider) };
  } catch (error) {
    if (error instanceof ProviderCallError) throw error;
    const name = (error as Error)?.name;
    if (name === 'TimeoutError' || name === 'AbortError' || signal.aborted) {
      const why = cappedByDeadline ? `before the invocation's deadline (${timeoutMs} ms)` : `within ${timeoutMs} ms`;
      throw new ProviderCallError(provider, 'timeout', true, `${provider} did not answer ${why}`);
    }
    const cause = (error as { cause?: { code?: string } })?.cause?.code ?? name;
    // Refused or unresolvable connections never reached the provider; anything else might have.
    const reached = !['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN'].includes(String(cause));
    throw new ProviderCallError(provider, 'network', reached, `${provider} call failed: ${cause}`);
  }
}
