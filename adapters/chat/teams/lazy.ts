/**
 * teams-ai and botbuilder take about a second and 100+ MB to load. The service starts without
 * them: they load on the first request to /api/messages or the first card for a Teams channel.
 */
import type { Express } from 'express';
import type { TeamsConfig } from '../../../src/config.js';
import type { CardPublisher } from '../../../src/recommendations/card.js';
import type { TeamsApp, TeamsAppOptions } from './app.js';

export const TEAMS_MESSAGES_PATH = '/api/messages';

export function lazyTeamsApp(options: TeamsAppOptions): TeamsApp {
  let loading: Promise<TeamsApp> | undefined;
  const get = () => {
    loading ??= import('./app.js').then((m) => m.createTeamsApp(options));
    return loading;
  };
  const cardPublisher: CardPublisher = {
    platform: 'teams',
    post: async (tenantId, channelId, view) => (await get()).cardPublisher.post(tenantId, channelId, view),
    update: async (tenantId, channelId, ref, view) =>
      (await get()).cardPublisher.update(tenantId, channelId, ref, view),
  };
  const mode: TeamsConfig['mode'] = options.config.mode;
  return {
    mode,
    get router(): never {
      throw new Error('lazyTeamsApp has no router of its own; mount it.');
    },
    mount(server: Express) {
      server.post(TEAMS_MESSAGES_PATH, (req, res, next) => {
        get().then(
          (teams) => teams.router(req, res, next),
          (error: unknown) => next(error),
        );
      });
    },
    cardPublisher,
    notify: async (tenantId, conversationId, view) => (await get()).notify(tenantId, conversationId, view),
    async close() {
      if (loading) await (await loading).close();
    },
  };
}
