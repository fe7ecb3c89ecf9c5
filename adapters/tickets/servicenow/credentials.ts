/**
 * The ServiceNow connection form, as data (rendered by the Slack and Teams adapters), and the
 * typed reading of the values an admin typed into it.
 */
import { AppError, ErrorCode } from '../../../src/errors.js';
import type { CredentialField, ProviderValues } from '../../../src/tickets/port.js';

export const FIELD = {
  instanceUrl: 'instanceUrl',
  authType: 'authType',
  username: 'username',
  password: 'password',
  clientId: 'clientId',
  clientSecret: 'clientSecret',
} as const;

export const AUTH_TYPES = ['basic', 'oauth_client_credentials', 'oauth_password'] as const;
export type AuthType = (typeof AUTH_TYPES)[number];

const USER_AUTH: readonly AuthType[] = ['basic', 'oauth_password'];
const OAUTH: readonly AuthType[] = ['oauth_client_credentials', 'oauth_password'];

export const serviceNowFields: readonly CredentialField[] = [
  {
    key: FIELD.instanceUrl,
    label: 'Instance URL',
    hint: 'The address of your ServiceNow instance.',
    placeholder: 'https://<instance>.service-now.com',
    required: true,
    secret: false,
    type: 'url',
  },
  {
    key: FIELD.authType,
    label: 'Authentication',
    required: true,
    secret: false,
    type: 'select',
    options: [
      { value: 'basic', label: 'Basic (user + password)' },
      { value: 'oauth_client_credentials', label: 'OAuth 2.0 client credentials' },
      { value: 'oauth_password', label: 'OAuth 2.0 password grant' },
    ],
    defaultValue: 'basic',
  },
  {
    key: FIELD.username,
    label: 'User name',
    hint: 'A ServiceNow user with the itil role (a web-service-only integration user is best).',
    required: true,
    secret: false,
    type: 'text',
    when: { field: FIELD.authType, oneOf: USER_AUTH },
  },
  {
    key: FIELD.password,
    label: 'Password',
    required: true,
    secret: true,
    type: 'password',
    when: { field: FIELD.authType, oneOf: USER_AUTH },
  },
  {
    key: FIELD.clientId,
    label: 'Client ID',
    hint: 'From System OAuth > Application Registry in ServiceNow.',
    required: true,
    secret: false,
    type: 'text',
    when: { field: FIELD.authType, oneOf: OAUTH },
  },
  {
    key: FIELD.clientSecret,
    label: 'Client Secret',
    required: true,
    secret: true,
    type: 'password',
    when: { field: FIELD.authType, oneOf: OAUTH },
  },
];

export type ServiceNowCredentials =
  | {
      readonly authType: 'basic';
      readonly instanceUrl: string;
      readonly username: string;
      readonly password: string;
    }
  | {
      readonly authType: 'oauth_client_credentials';
      readonly instanceUrl: string;
      readonly clientId: string;
      readonly clientSecret: string;
    }
  | {
      readonly authType: 'oauth_password';
      readonly instanceUrl: string;
      readonly username: string;
      readonly password: string;
      readonly clientId: string;
      readonly clientSecret: string;
    };

const LABELS: Record<string, string> = Object.fromEntries(serviceNowFields.map((f) => [f.key, f.label]));

/** Reads the form values; a missing field is INVALID_INPUT naming that field. */
export function readCredentials(values: ProviderValues): ServiceNowCredentials {
  const value = (key: string) => (values[key] ?? '').trim();
  const authType = (value(FIELD.authType) || 'basic') as AuthType;
  if (!AUTH_TYPES.includes(authType)) {
    throw new AppError(
      ErrorCode.INVALID_INPUT,
      `"${authType}" is not a ServiceNow authentication method. Choose Basic, OAuth 2.0 client credentials or OAuth 2.0 password grant.`,
      { details: { field: FIELD.authType } },
    );
  }
  const needed = [
    FIELD.instanceUrl,
    ...(USER_AUTH.includes(authType) ? [FIELD.username, FIELD.password] : []),
    ...(OAUTH.includes(authType) ? [FIELD.clientId, FIELD.clientSecret] : []),
  ];
  const missing = needed.filter((key) => !value(key));
  if (missing.length > 0) {
    const names = missing.map((key) => LABELS[key] ?? key);
    throw new AppError(
      ErrorCode.INVALID_INPUT,
      `Enter the ServiceNow ${names.join(', ')}: ${missing.length === 1 ? 'it is' : 'they are'} required for this authentication method.`,
      {
        details: {
          field: missing[0],
          fieldErrors: Object.fromEntries(missing.map((key) => [key, `${LABELS[key]} is required.`])),
        },
      },
    );
  }
  // Passwords are kept exactly as typed (leading or trailing spaces may be part of them).
  const instanceUrl = value(FIELD.instanceUrl);
  const username = value(FIELD.username);
  const password = values[FIELD.password] ?? '';
  const clientId = value(FIELD.clientId);
  const clientSecret = values[FIELD.clientSecret] ?? '';
  switch (authType) {
    case 'basic':
      return { authType, instanceUrl, username, password };
    case 'oauth_client_credentials':
      return { authType, instanceUrl, clientId, clientSecret };
    case 'oauth_password':
      return { authType, instanceUrl, username, password, clientId, clientSecret };
  }
}

/** Which form field a credential failure concerns. */
export function secretFieldOf(credentials: ServiceNowCredentials): string {
  return credentials.authType === 'basic' ? FIELD.password : FIELD.clientSecret;
}
