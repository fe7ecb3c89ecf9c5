export type { TeamsApp, TeamsAppOptions } from './app.js';
export { lazyTeamsApp, TEAMS_MESSAGES_PATH } from './lazy.js';
