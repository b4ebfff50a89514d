// HTTP errors of the server: every failure becomes a status code and a body
// {"error": {"code", "message"}}. Library errors are mapped by class (TypeError / RangeError: the
// request's fault, 400) and by the one message pattern that needs its own status (pixel limit, 413).

/** An error with the status code, machine-readable code and headers of its HTTP response. */
export class HttpError extends Error {
  override readonly name = 'HttpError';

  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

/** Why a request's work was cancelled (the abort reason of its signal). */
export class RequestTimeout extends Error {
  override readonly name = 'RequestTimeout';
}
export class ClientGone extends Error {
  override readonly name = 'ClientGone';
}

/** A work queue at its bound: 429 with Retry-After (seconds). */
export class QueueFullError extends HttpError {
  constructor(queue: string, retryAfterSeconds: number) {
    super(429, 'queue_full', `The ${queue} queue is full; retry after ${retryAfterSeconds} s`, {
      'retry-after': String(retryAfterSeconds),
    });
  }
}

interface FastifyLikeError {
  code?: unknown;
  statusCode?: unknown;
  validation?: Array<{ instancePath?: string; message?: string; params?: Record<string, unknown> }>;
  validationContext?: string;
  message?: unknown;
}

const FASTIFY_CODES: Record<string, [number, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'body_too_large'],
  FST_REQ_FILE_TOO_LARGE: [413, 'body_too_large'],
  // (too many parts is a malformed request, not a large one: the body may be a few bytes)
  FST_FILES_LIMIT: [400, 'invalid_multipart'],
  FST_PARTS_LIMIT: [400, 'invalid_multipart'],
  FST_FIELDS_LIMIT: [400, 'invalid_multipart'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type'],
  FST_INVALID_MULTIPART_CONTENT_TYPE: [415, 'unsupported_media_type'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'invalid_json'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'invalid_json'],
};

/**
 * The HTTP form of any error thrown while handling a request.
 * - HttpError: as it is.
 * - Fastify / multipart errors: body too large 413, media type 415, JSON syntax and schema
 *   validation 400 (the message names the field: `body/points/0 must ...`).
 * - Library errors: pixel limit 413; TypeError / RangeError (the library's argument template,
 *   naming the parameter) and undecodable images 400.
 * - A malformed multipart body (busboy's errors): 400.
 * - Anything else: 500.
 */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  const e = (typeof error === 'object' && error !== null ? error : {}) as FastifyLikeError;
  const message = typeof e.message === 'string' ? e.message : String(error);
  if (Array.isArray(e.validation)) return new HttpError(400, 'invalid_request', validationMessage(e));
  if (typeof e.code === 'string' && e.code in FASTIFY_CODES) {
    const [status, code] = FASTIFY_CODES[e.code];
    return new HttpError(status, code, message);
  }
  if (/limitInputPixels/.test(message)) return new HttpError(413, 'image_too_large', message);
  if (error instanceof TypeError || error instanceof RangeError) {
    // The library names prompt fields `prompt.points[0]`; in a request they are `points[0]`.
    return new HttpError(400, 'invalid_argument', message.replace(/ for prompt\./, ' for '));
  }
  if (/^Cannot decode image/.test(message)) return new HttpError(400, 'invalid_image', message);
  // The multipart parser's (busboy's) errors for a malformed body carry no code or status.
  if (/^Multipart: |^Unexpected end of (form|multipart data)|^Malformed part header|^Part terminated early/.test(message)) {
    return new HttpError(400, 'invalid_multipart', `Malformed multipart body: ${message}`);
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new HttpError(e.statusCode, 'bad_request', message);
  }
  return new HttpError(500, 'internal_error', message);
}

/** Ajv's first error as `<field> <problem>`, the field as a path into the body (`points[0][2]`). */
function validationMessage(e: FastifyLikeError): string {
  const first = e.validation?.[0];
  if (first === undefined) return String(e.message);
  const segments = (first.instancePath ?? '').split('/').filter((s) => s !== '');
  const extra = first.params?.additionalProperty ?? first.params?.missingProperty;
  if (typeof extra === 'string') segments.push(extra);
  const field = segments.reduce((path, s) => (/^\d+$/.test(s) ? `${path}[${s}]` : path === '' ? s : `${path}.${s}`), '');
  const what = first.message ?? 'is invalid';
  const subject = field === '' ? (e.validationContext ?? 'body') : field;
  if (first.params?.additionalProperty !== undefined) return `Unknown field ${subject} in the request ${e.validationContext ?? 'body'}`;
  if (first.params?.missingProperty !== undefined) return `Missing field ${subject} in the request ${e.validationContext ?? 'body'}`;
  return `Invalid field ${subject}: ${what}`;
}
