/**
 * Transport errors, which carry their own HTTP answer: what the HTTP layer refuses before any
 * service runs (body size, media type, query, path, source address, inbound credentials). Services
 * throw domain errors (domain/errors.ts) or application errors (application-errors.ts) instead;
 * `http.errorResponse` maps all three, and nothing else builds error bodies.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequestError extends HttpError {
  constructor(message: string, code = 'bad_request') {
    super(400, code, message);
  }
}

export class UnauthorizedError extends HttpError {
  constructor(message = 'authentication failed', code = 'unauthorized') {
    super(401, code, message);
  }
}

export class ForbiddenError extends HttpError {
  constructor(message: string, code = 'forbidden') {
    super(403, code, message);
  }
}

export class PayloadTooLargeError extends HttpError {
  constructor(limitBytes: number) {
    super(413, 'payload_too_large', `request body is larger than ${limitBytes} bytes`);
  }
}

export class UnsupportedMediaTypeError extends HttpError {
  constructor(expected: string) {
    super(415, 'unsupported_media_type', `content-type must be ${expected}`);
  }
}

export class ServiceUnavailableError extends HttpError {
  constructor(message: string, code = 'temporarily_unavailable') {
    super(503, code, message);
  }
}
