import { type Request, type Response, Router } from 'express';
import {
  SSO_CALLBACK_PATH,
  SSO_COOKIE,
  SSO_START_PATH,
  SsoPageError,
  type SsoService,
} from '../identity/sso.js';
import type { Logger } from '../logger.js';

const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

/** A plain, accessible page: one heading, one paragraph, no script. */
export function ssoPage(title: string, text: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · CloudPi</title>
<style>body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}h1{font-size:1.5rem}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(text)}</p>
</main>
</body>
</html>
`;
}

function cookieOf(req: Request, name: string): string | undefined {
  for (const part of (req.get('cookie') ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return undefined;
}

export interface SsoRouteOptions {
  readonly sso: SsoService;
  readonly logger: Logger;
  /** Cookies are Secure when the public URL is https. */
  readonly secureCookies: () => boolean;
}

/** GET /auth/sso/start (the link from chat) and GET /auth/sso/callback (the IdP's redirect). */
export function ssoRoutes(options: SsoRouteOptions): Router {
  const router = Router();
  const log = options.logger.child({ component: 'sso' });
  const page = (res: Response, status: number, title: string, text: string) => {
    res
      .status(status)
      .set({ 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer', 'X-Frame-Options': 'DENY' })
      .type('html')
      .send(ssoPage(title, text));
  };
  const failed = (res: Response, error: unknown) => {
    if (error instanceof SsoPageError) return page(res, error.status, error.title, error.message);
    log.error({ err: error }, 'SSO sign-in failed');
    return page(
      res,
      500,
      'Sign-in failed',
      'Something went wrong on our side. Type login in chat to try again.',
    );
  };

  router.get(SSO_START_PATH, async (req, res) => {
    try {
      const { redirect, cookie } = await options.sso.start(String(req.query.t ?? ''));
      const attributes = [
        `${SSO_COOKIE}=${encodeURIComponent(cookie)}`,
        'Path=/auth/sso',
        'HttpOnly',
        // Lax: the IdP's redirect back is a top-level GET navigation, which carries it.
        'SameSite=Lax',
        'Max-Age=1200',
        ...(options.secureCookies() ? ['Secure'] : []),
      ];
      res.set({
        'Cache-Control': 'no-store',
        'Referrer-Policy': 'no-referrer',
        'Set-Cookie': attributes.join('; '),
      });
      res.redirect(302, redirect.href);
    } catch (error) {
      failed(res, error);
    }
  });

  router.get(SSO_CALLBACK_PATH, async (req, res) => {
    try {
      const url = new URL(req.originalUrl, options.sso.redirectUri());
      const linked = await options.sso.callback(url, cookieOf(req, SSO_COOKIE));
      res.set('Set-Cookie', `${SSO_COOKIE}=; Path=/auth/sso; Max-Age=0; HttpOnly; SameSite=Lax`);
      page(
        res,
        200,
        'You are signed in',
        `Your chat account is linked${linked.email ? ` to ${linked.email}` : ''}${linked.admin ? ', as a CloudPi admin' : ''}. You can close this window and go back to chat.`,
      );
    } catch (error) {
      failed(res, error);
    }
  });
  return router;
}
