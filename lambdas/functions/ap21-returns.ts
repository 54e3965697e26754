import { UnsupportedMediaTypeError } from '../commons/http-errors';
import { httpHandler, textBody } from '../commons/http';
import { MEDIA_TYPES } from '../commons/media-types';
import { lazy } from '../commons/lazy';
import { ap21Inbound } from '../providers/ap21/inbound';
import { MAX_PUSH_BYTES, parseAp21Push } from '../services/ap21-push';
import { createAp21Client, createAp21PushInbox, createReturnIntake } from './ap21-runtime';
import { dispatchDoorbell } from './doorbell';
import { inboundCheck } from './inbound-check';
import { runtime } from './runtime';

const rt = runtime();
const pusher = inboundCheck(rt, ap21Inbound);
/**
 * Three Ap21 reads (the order, the return, the exchange order it names: docs/design.md §2.8) must fit
 * well inside API Gateway's 29 s; a push Ap21 is slow to answer stays pending for the poller.
 */
const PUSH_AP21_TIMEOUT_MS = 4_000;
const pushInbox = lazy(() => {
  const client = createAp21Client(rt, process.env, PUSH_AP21_TIMEOUT_MS);
  return createAp21PushInbox(rt, client, createReturnIntake(rt, process.env, dispatchDoorbell(rt), client));
});

/**
 * POST /ap21/returns (XML `<ReturnOrder>`, see services/ap21-push.ts) → 202 once the push is stored.
 * Source address first (AP21_PUSH_ALLOWED_IPS; empty refuses everyone), then the push key (both in
 * providers/ap21/inbound.ts), then the body; nothing is written for a refused request.
 */
export const handler = httpHandler({ name: 'ap21.returns', maxBodyBytes: MAX_PUSH_BYTES }, async (request) => {
  await pusher.verify(request);
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(request.headers['content-type'] ?? '')?.[1];
  if (charset !== undefined && !/^utf-?8$/i.test(charset)) throw new UnsupportedMediaTypeError(`${MEDIA_TYPES.ap21Push.join(' or ')} in UTF-8`);
  const raw = textBody(request, MEDIA_TYPES.ap21Push);
  const notice = parseAp21Push(raw);
  const { stored, status } = await pushInbox().receive(notice, raw);
  return { status: 202, body: { received: true, duplicate: !stored, return_id: notice.returnId, status } };
});
