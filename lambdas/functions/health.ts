import { httpHandler } from '../commons/http';

/** GET /health → {ok: true}. Touches nothing, so it says the API is up, not that DynamoDB is. */
export const handler = httpHandler({ name: 'health', maxBodyBytes: 0 }, async () => ({ status: 200, body: { ok: true } }));
