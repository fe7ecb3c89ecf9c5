/**
 * The links in emails. GET only shows a confirmation page (mail scanners and link previews open
 * links); the action is the page's POST. One-click Create ticket is idempotent like the chat
 * button (one ticket per recommendation and provider); List-Unsubscribe also takes RFC 8058's
 * one-click POST straight from the mail client.
 */
import express, { type Request, type Response, Router } from 'express';
import { isAppError } from '../errors.js';
import type { IntegrationService } from '../integrations/service.js';
import type { Logger } from '../logger.js';
import { type EmailNotifier, ONE_CLICK_PATH, UNSUBSCRIBE_PATH } from '../notify/email.js';
import { verifyAction, verifyUnsubscribe } from '../notify/signed-links.js';
import { isProviderKind } from '../recommendations/card.js';
import type { Repositories } from '../storage/repositories/index.js';
import type { TicketService } from '../tickets/service.js';
import { ssoPage } from './sso-routes.js';

export interface EmailRouteOptions {
  readonly email: EmailNotifier;
  readonly tickets: TicketService;
  readonly integrations: IntegrationService;
  readonly repositories: Repositories;
  readonly linkKeys: readonly Buffer[];
  readonly logger: Logger;
}

const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

/** A page with one button that POSTs the same link (the token travels in the query). */
function confirmPage(title: string, text: string, action: string, button: string): string {
  return ssoPage(title, text).replace(
    '</main>',
    `<form method="post" action="${escapeHtml(action)}"><button type="submit">${escapeHtml(button)}</button></form></main>`,
  );
}

export function emailRoutes(options: EmailRouteOptions): Router {
  const router = Router();
  const log = options.logger.child({ component: 'email-links' });
  const send = (res: Response, status: number, html: string) =>
    res
      .status(status)
      .set({ 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer', 'X-Frame-Options': 'DENY' })
      .type('html')
      .send(html);

  const actionOf = (req: Request) => {
    const token = String(req.query.t ?? '');
    for (const key of options.linkKeys) {
      const result = verifyAction(key, token);
      if (result.ok || result.reason === 'expired') return result;
    }
    return { ok: false as const, reason: 'bad-signature' as const };
  };
  const refused = (res: Response, reason: string) =>
    send(
      res,
      reason === 'expired' ? 410 : 400,
      ssoPage(
        reason === 'expired' ? 'This link has expired' : 'This link is not valid',
        reason === 'expired'
          ? 'Links in CloudPi emails work for seven days. Use the card in chat, or wait for the next email.'
          : 'It may have been changed or cut off. Open it again from the email, or use the card in chat.',
      ),
    );

  router.get(ONE_CLICK_PATH, async (req, res) => {
    const result = actionOf(req);
    if (!result.ok) return refused(res, result.reason);
    const { claims } = result;
    const rec = await options.repositories.recommendations.findById(claims.tenantId, claims.recommendationId);
    if (!rec || !isProviderKind(claims.provider)) return refused(res, 'malformed');
    const name = options.integrations.descriptor(claims.provider).displayName;
    send(
      res,
      200,
      confirmPage(`Create a ${name} ticket?`, rec.title, req.originalUrl, `Create ticket in ${name}`),
    );
  });

  router.post(ONE_CLICK_PATH, async (req, res) => {
    const result = actionOf(req);
    if (!result.ok) return refused(res, result.reason);
    const { claims } = result;
    if (!isProviderKind(claims.provider)) return refused(res, 'malformed');
    const name = options.integrations.descriptor(claims.provider).displayName;
    try {
      const { ticket } = await options.tickets.createForRecommendation(
        claims.tenantId,
        claims.recommendationId,
        claims.provider,
        'email',
      );
      send(
        res,
        200,
        ticket.key
          ? ssoPage(
              `The ${name} ticket exists`,
              `This recommendation already has ticket ${ticket.key}${ticket.url ? ` (${ticket.url})` : ''}.`,
            )
          : ssoPage(
              `Creating the ${name} ticket`,
              'CloudPi is creating it now; the card in chat shows its key and status when it is there.',
            ),
      );
    } catch (error) {
      if (!isAppError(error)) log.error({ err: error }, 'one-click ticket failed');
      send(
        res,
        409,
        ssoPage(
          'The ticket could not be created',
          isAppError(error) ? error.message : 'Something went wrong on our side.',
        ),
      );
    }
  });

  const unsubscribeClaims = (req: Request) => {
    const token = String(req.query.t ?? '');
    for (const key of options.linkKeys) {
      const result = verifyUnsubscribe(key, token);
      if (result.ok) return result.claims;
    }
    return undefined;
  };

  router.get(UNSUBSCRIBE_PATH, (req, res) => {
    const claims = unsubscribeClaims(req);
    if (!claims) return refused(res, 'malformed');
    send(
      res,
      200,
      confirmPage(
        'Stop these emails?',
        `${claims.recipient} will no longer get CloudPi recommendation emails from this subscription.`,
        req.originalUrl,
        'Unsubscribe',
      ),
    );
  });

  router.post(UNSUBSCRIBE_PATH, express.urlencoded({ extended: false, limit: '2kb' }), async (req, res) => {
    const claims = unsubscribeClaims(req);
    if (!claims) return refused(res, 'malformed');
    await options.email.unsubscribe(claims.tenantId, claims.routeId, claims.recipient);
    send(
      res,
      200,
      ssoPage('You are unsubscribed', `${claims.recipient} will no longer get these CloudPi emails.`),
    );
  });
  return router;
}
