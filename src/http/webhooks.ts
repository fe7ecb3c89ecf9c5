import express, { type NextFunction, type Request, type Response, Router } from 'express';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { AppError, ErrorCode } from '../errors.js';
import { type TicketWebhooks, WEBHOOK_BODY_LIMIT_BYTES } from '../tickets/webhooks.js';

export interface WebhookRouteOptions {
  readonly webhooks: TicketWebhooks;
  /** Failed authentications per minute per client address before it is refused outright. */
  readonly failuresPerMinute?: number;
}

/**
 * `POST /webhooks/:provider/:id` for provider status webhooks. Basic auth is checked on the
 * headers before the body is read; Jira's signature is checked over the raw bytes before they
 * are parsed. The answer is 202 as soon as the status reads are queued (providers time out
 * slow receivers and retry).
 */
export function webhookRoutes(options: WebhookRouteOptions): Router {
  const router = Router();
  const failures = new RateLimiterMemory({ points: options.failuresPerMinute ?? 30, duration: 60 });
  const raw = express.raw({ type: () => true, limit: WEBHOOK_BODY_LIMIT_BYTES });

  router.post(
    '/webhooks/:provider/:id',
    async (req: Request, res: Response, next: NextFunction) => {
      const address = req.socket.remoteAddress ?? 'unknown';
      const state = await failures.get(address);
      if (state && state.remainingPoints <= 0) {
        const seconds = Math.max(1, Math.ceil(state.msBeforeNext / 1000));
        res.setHeader('Retry-After', String(seconds));
        throw new AppError(
          ErrorCode.RATE_LIMITED,
          `Too many failed webhook authentications from this address. Retry after ${seconds} s.`,
        );
      }
      try {
        res.locals.webhook = await options.webhooks.authenticate(
          String(req.params.provider),
          String(req.params.id),
          req.get('authorization'),
        );
      } catch (error) {
        await failures.consume(address).catch(() => {});
        res.setHeader('WWW-Authenticate', 'Basic realm="cloudpi-webhooks"');
        throw error;
      }
      next();
    },
    raw,
    async (req: Request, res: Response) => {
      const { endpoint, secret, support } = res.locals.webhook as Awaited<
        ReturnType<TicketWebhooks['authenticate']>
      >;
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      try {
        options.webhooks.verifyBody(support, secret, body, req.get('x-hub-signature'));
      } catch (error) {
        await failures.consume(req.socket.remoteAddress ?? 'unknown').catch(() => {});
        throw error;
      }
      let payload: unknown;
      try {
        payload = JSON.parse(body.toString('utf8'));
      } catch {
        throw new AppError(ErrorCode.VALIDATION, 'The webhook body is not valid JSON.');
      }
      const receipt = await options.webhooks.receive(endpoint, support, payload);
      res.status(202).json(receipt);
    },
  );
  return router;
}
