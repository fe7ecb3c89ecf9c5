export { BOT_SCOPES, createSlackApp, type SlackApp, type SlackAppOptions } from './app.js';
export { SlackInstallationStore } from './installation-store.js';
export { renderHome, renderMessage, renderModal } from './render.js';
export { slackClientOptions } from './web-client.js';
