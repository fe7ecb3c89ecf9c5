/** ServiceNow incidents through the Table API (no SDK): the TicketProvider factory and its form. */
export { clearServiceNowTokenCache } from './client.js';
export { AUTH_TYPES, type AuthType, FIELD as SERVICENOW_FIELDS, serviceNowFields } from './credentials.js';
export { DEFAULT_URGENCY_IMPACT } from './mapping.js';
export { serviceNowProvider } from './provider.js';
