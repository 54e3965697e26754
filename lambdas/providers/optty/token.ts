import type { SecretReader } from '../../commons/secrets';
import { callProvider, isRetryableStatus, ProviderCallError } from '../outbound';
import type { OpttyConfig } from './config';
import { tokenResponseSchema, type OpttySecret } from './schemas';

/** No token could be had. `retryable` is false when Optty refused our client credentials. */
export class OpttyAuthError extends Error {
  override readonly name = 'OpttyAuthError';
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

type TokenAnswer = { readonly kind: 'issued'; readonly token: string; readonly refreshAt: number } | { readonly kind: 'refused'; readonly status: number };

const CREDENTIALS_REFUSED = new Set([400, 401, 403]);

/**
 * Optty's client-credentials token, cached per container until `refreshMargin` before it expires.
 * Callers that find no usable token share one in-flight request (single flight), so a burst of
 * refunds after a cold start or an expiry asks the auth server once.
 */
export class OpttyTokenSource {
  private cached: { readonly token: string; readonly refreshAt: number } | undefined;
  private inFlight: Promise<string> | undefined;

  constructor(
    private readonly secrets: SecretReader<OpttySecret>,
    private readonly config: Pick<OpttyConfig, 'authUrl' | 'timeoutMs' | 'refreshMarginMs'>,
    private readonly now: () => number = Date.now,
  ) {}

  token(): Promise<string> {
    if (this.cached && this.now() < this.cached.refreshAt) return Promise.resolve(this.cached.token);
    this.inFlight ??= this.fetchToken().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Forgets `rejected` after Optty answered 401 to it; a token already replaced is left alone. */
  invalidate(rejected: string): void {
    if (this.cached?.token === rejected) this.cached = undefined;
  }

  private async fetchToken(): Promise<string> {
    const secret = await this.secrets.get();
    let answer = await this.requestToken(secret);
    if (answer.kind === 'refused') {
      // The client secret may have been rotated since the container cached it.
      const fresh = await this.secrets.refresh();
      if (fresh && (fresh.clientId !== secret.clientId || fresh.clientSecret !== secret.clientSecret)) answer = await this.requestToken(fresh);
    }
    if (answer.kind === 'refused') throw new OpttyAuthError(`Optty refused our client credentials (HTTP ${answer.status})`, false);
    // A token that is already inside the margin (a very short TTL) still serves the callers waiting for it.
    this.cached = { token: answer.token, refreshAt: answer.refreshAt };
    return answer.token;
  }

  private async requestToken(secret: OpttySecret): Promise<TokenAnswer> {
    const requestedAt = this.now();
    let response;
    try {
      response = await callProvider('optty', {
        method: 'POST',
        url: `${this.config.authUrl}/token`,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({
          client_id: secret.clientId,
          client_secret: secret.clientSecret,
          grant_type: 'client_credentials',
          scope: 'api-user',
        }).toString(),
        timeoutMs: this.config.timeoutMs,
      });
    } catch (error) {
      if (error instanceof ProviderCallError) throw new OpttyAuthError(`Optty token request failed: ${error.message}`, true);
      throw error;
    }
    if (CREDENTIALS_REFUSED.has(response.status)) return { kind: 'refused', status: response.status };
    if (isRetryableStatus(response.status)) throw new OpttyAuthError(`Optty token endpoint answered HTTP ${response.status}`, true);
    let body: unknown;
    try {
      body = JSON.parse(response.text);
    } catch {
      body = undefined;
    }
    const parsed = tokenResponseSchema.safeParse(body);
    if (response.status < 200 || response.status >= 300 || !parsed.success) {
      throw new OpttyAuthError(`Optty token endpoint answered HTTP ${response.status} without a token; check OPTTY_AUTH_URL`, false);
    }
    // Counted from before the request: the token may have been issued at any moment during it.
    return { kind: 'issued', token: parsed.data.access_token, refreshAt: requestedAt + parsed.data.expires_in * 1000 - this.config.refreshMarginMs };
  }
}
