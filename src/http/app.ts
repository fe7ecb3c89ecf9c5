import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import express, {
  type Express,
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
  Router,
} from 'express';
import { AppError, asAppError, ErrorCode } from '../errors.js';
import type { SsoService } from '../identity/sso.js';
import type { IntegrationService } from '../integrations/service.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { EmailNotifier } from '../notify/email.js';
import { PROJECT_ROOT } from '../paths.js';
import {
  INGEST_BODY_LIMIT_BYTES,
  ingestStatus,
  type RecommendationIngest,
} from '../recommendations/ingest.js';
import type { Repositories } from '../storage/repositories/index.js';
import { tenantRef } from '../storage/repositories/tenants.js';
import type { TicketService } from '../tickets/service.js';
import type { TicketWebhooks } from '../tickets/webhooks.js';
import { apiKeyAuth } from './api-auth.js';
import { emailRoutes } from './email-routes.js';
import { openApiDocument } from './openapi.js';
import { ssoRoutes } from './sso-routes.js';
import { webhookRoutes } from './webhooks.js';

export type ReadinessCheck = () => Promise<Record<string, 'ok' | string>>;

export interface HttpAppOptions {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly repositories: Repositories;
  /** The recommendations ingest core behind /api/v1/recommendations. */
  readonly recommendations: RecommendationIngest;
  readonly readiness: ReadinessCheck;
  readonly isDraining: () => boolean;
  readonly apiRateLimitPerMinute: number;
  readonly metricsToken?: string | undefined;
  /** Provider status webhooks (`/webhooks/:provider/:id`). */
  readonly webhooks?: TicketWebhooks;
  /** SSO sign-in pages (`/auth/sso/start`, `/auth/sso/callback`). */
  readonly sso?: SsoService;
  /** The links in emails (one-click Create ticket, List-Unsubscribe). */
  readonly email?: {
    readonly notifier: EmailNotifier;
    readonly tickets: TicketService;
    readonly integrations: IntegrationService;
    readonly linkKeys: readonly Buffer[];
  };
  /** Mounted before the JSON API: chat platform endpoints that need the raw body. */
  readonly mount?: (app: Express) => void;
  readonly jsonLimit?: string;
}

/**
 * The one Express app. Route order: chat platform endpoints (the load; they parse their own bodies
 * for signature checks), health and metrics (cheap, unauthenticated), then the JSON API.
 */
export function createHttpApp(options: HttpAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(frontDoor(options.metrics, options.logger));
  // Chat platforms first: they carry the load (Slack wants its acknowledgement within 3 s), and
  // parse their own bodies for their signature checks.
  options.mount?.(app);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) });
  });

  app.get('/readyz', async (_req, res) => {
    if (options.isDraining()) {
      res.status(503).json({ status: 'draining', checks: {} });
      return;
    }
    const checks = await options.readiness();
    const ready = Object.values(checks).every((v) => v === 'ok');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks });
  });

  app.get('/metrics', async (req, res) => {
    if (options.metricsToken && !bearerMatches(req.get('authorization'), options.metricsToken)) {
      throw new AppError(
        ErrorCode.UNAUTHENTICATED,
        'GET /metrics needs "Authorization: Bearer <CLOUDPI_METRICS_TOKEN>".',
      );
    }
    res.type(options.metrics.registry.contentType).send(await options.metrics.registry.metrics());
  });

  // The Teams manifest links these (developer.privacyUrl / termsOfUseUrl): plain pages saying
  // whose policy applies, since each organization runs its own instance.
  for (const [page, title] of [
    ['privacy', 'Privacy'],
    ['terms', 'Terms of use'],
  ] as const) {
    app.get(`/legal/${page}`, (_req, res) => {
      res
        .type('html')
        .send(
          `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>CloudPi ChatOps: ${title}</title></head><body><main><h1>${title}</h1><p>This CloudPi ChatOps service is run by your organization. It stores the integration settings your admins enter (secrets encrypted), the recommendations CloudPi sends, and the chat and ticket references needed to keep cards current. Your organization's own ${title.toLowerCase()} policy applies; ask your CloudPi administrator.</p></main></body></html>`,
        );
    });
  }

  if (options.webhooks) app.use(webhookRoutes({ webhooks: options.webhooks }));
  if (options.email)
    app.use(
      emailRoutes({
        email: options.email.notifier,
        tickets: options.email.tickets,
        integrations: options.email.integrations,
        repositories: options.repositories,
        linkKeys: options.email.linkKeys,
        logger: options.logger,
      }),
    );
  if (options.sso) {
    const sso = options.sso;
    app.use(
      ssoRoutes({ sso, logger: options.logger, secureCookies: () => sso.redirectUri().startsWith('https:') }),
    );
  }

  // The API description is public (it holds no tenant data), so it is served before the key check.
  const openApi = JSON.stringify(openApiDocument(packageVersion()));
  app.get('/api/v1/openapi.json', (_req, res) => {
    res.type('application/json').send(openApi);
  });

  const api = Router();
  // Authenticate on the headers before reading a body: anonymous callers cannot make us parse.
  api.use(
    apiKeyAuth({
      apiKeys: options.repositories.apiKeys,
      tenants: options.repositories.tenants,
      perMinute: options.apiRateLimitPerMinute,
    }),
  );
  // Before the general 1 MB parser: a batch of 500 recommendations needs a larger body.
  api.post('/recommendations', jsonBody(INGEST_BODY_LIMIT_BYTES), async (req, res) => {
    if (!req.is('application/json')) {
      throw new AppError(
        ErrorCode.VALIDATION,
        'Send the recommendations as JSON (Content-Type: application/json).',
      );
    }
    const report = await options.recommendations.ingestRecommendations(req.apiCaller!.tenant.id, req.body);
    const status = ingestStatus(report);
    res.status(status).json(
      status === 400
        ? {
            error: {
              code: ErrorCode.VALIDATION,
              message: 'No recommendation was stored: every item is invalid.',
            },
            ...report,
          }
        : report,
    );
  });
  api.use(jsonBody(options.jsonLimit ?? '1mb'));
  api.get('/recommendations/:id', async (req, res) => {
    res.json(await options.recommendations.find(req.apiCaller!.tenant.id, String(req.params.id)));
  });
  api.get('/tenant', (req, res) => {
    const { tenant } = req.apiCaller!;
    res.json({ id: tenant.id, ref: tenantRef(tenant), platform: tenant.platform, name: tenant.name });
  });
  app.use('/api/v1', api);

  app.use((req, _res, next) => {
    next(new AppError(ErrorCode.NOT_FOUND, `No route for ${req.method} ${req.path}.`));
  });
  app.use(errorHandler(options.logger));
  return app;
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? '0.0.0';
}

function bearerMatches(header: string | undefined, expected: string): boolean {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  if (!match) return false;
  const a = Buffer.from(match[1]!);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * What every request goes through, with one listener on the response's end:
 *  - The latency histogram, by route template (never the raw path, which would explode
 *    cardinality).
 *  - A handler that answers before reading the whole body (Bolt's 413 over its 4 MB limit leaves
 *    the request paused) would leave the rest of it on a keep-alive connection, and the next
 *    request on that connection would fail (ECONNRESET, or a 502 behind a proxy). The rest is read
 *    off and dropped once the answer is sent; Node's request timeout still bounds how long that
 *    may take.
 */
function frontDoor(metrics: Metrics, logger: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      if (!req.complete) req.resume();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      metrics.httpRequestDuration.observe(
        { method: req.method, route, status: String(res.statusCode) },
        seconds,
      );
      if (logger.isLevelEnabled('debug'))
        logger.debug(
          { method: req.method, route, status: res.statusCode, ms: Math.round(seconds * 1000) },
          'request',
        );
    });
    next();
  };
}

/** Every error becomes `{ "error": { "code", "message" } }` with the matching status. */
function errorHandler(logger: Logger) {
  return (error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const appError = fromBodyParser(error) ?? asAppError(error);
    if (appError.code === ErrorCode.INTERNAL) logger.error({ err: error }, 'unhandled error in request');
    if (res.headersSent) return;
    res.status(appError.httpStatus).json({
      error: {
        code: appError.code,
        message: appError.message,
        ...(appError.details ? { details: appError.details } : {}),
      },
    });
  };
}

function fromBodyParser(error: unknown): AppError | undefined {
  const type = (error as { type?: string } | null)?.type;
  if (type === 'entity.too.large') {
    const limit = (error as { limit?: number }).limit;
    return new AppError(
      ErrorCode.PAYLOAD_TOO_LARGE,
      `The request body is larger than the ${limit} byte limit.`,
    );
  }
  if (type === 'entity.parse.failed') {
    // Strict parsing refuses valid JSON that is neither an object nor an array (42, "x", null).
    const body = (error as { body?: unknown }).body;
    if (typeof body === 'string' && !/^\s*[[{]/.test(body) && parses(body)) {
      return new AppError(ErrorCode.VALIDATION, 'The request body must be a JSON object or array.');
    }
    return new AppError(ErrorCode.VALIDATION, 'The request body is not valid JSON.');
  }
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return new AppError(ErrorCode.VALIDATION, 'The request body encoding is not supported; send UTF-8 JSON.');
  }
  return undefined;
}

/**
 * express.json with its refusals turned into our errors where they happen: besides the kinds
 * fromBodyParser names, whatever else the body reader refuses is the caller's fault (a gzip body
 * that does not inflate, a body shorter than its Content-Length, an aborted upload): 400, not an
 * internal error.
 */
export function jsonBody(limit: number | string): RequestHandler {
  const parse = express.json({ limit, strict: true });
  return (req, res, next) => {
    parse(req, res, (error?: unknown) => {
      if (error === undefined) return next();
      const known = fromBodyParser(error);
      if (known) return next(known);
      const status = (error as { status?: unknown } | null)?.status;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        const reason = error instanceof Error ? error.message : String(error);
        return next(
          new AppError(
            ErrorCode.VALIDATION,
            `The request body could not be read (${reason}). Send UTF-8 JSON, uncompressed or with the Content-Encoding it has (gzip, deflate, br).`,
            { cause: error },
          ),
        );
      }
      next(error);
    });
  };
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
