import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger } from 'pino';

/** Keys whose values never reach a log line, at any of the first four levels of nesting. */
const SECRET_KEYS = [
  'authorization',
  'Authorization',
  'cookie',
  'Cookie',
  'set-cookie',
  'password',
  'pass',
  'passwd',
  'secret',
  'clientSecret',
  'client_secret',
  'token',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'idToken',
  'id_token',
  'botToken',
  'bot_token',
  'apiToken',
  'api_token',
  'apiKey',
  'api_key',
  'pat',
  'privateKey',
  'private_key',
  'signingSecret',
  'masterKeys',
  'x-api-key',
  'x-slack-signature',
  'x-hub-signature',
  'appPassword',
  'MicrosoftAppPassword',
  'codeVerifier',
  'code_verifier',
  'personalAccessToken',
];

function redactPaths(): string[] {
  const paths: string[] = [];
  const prefixes = ['', '*.', '*.*.', '*.*.*.'];
  for (const prefix of prefixes) {
    for (const key of SECRET_KEYS) {
      paths.push(/^[A-Za-z_$][\w$]*$/.test(key) ? `${prefix}${key}` : `${prefix}["${key}"]`);
    }
  }
  return paths;
}

export interface LoggerOptions {
  level: string;
  format?: 'json' | 'pretty' | undefined;
  /** For tests: write here instead of stdout. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const pretty =
    options.format === 'pretty' || (options.format === undefined && process.stdout.isTTY === true);
  const base = {
    level: options.level,
    base: { service: 'cloudpi-chatops' },
    redact: { paths: redactPaths(), censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.destination) return pino(base, options.destination);
  if (pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true } } });
  }
  return pino(base);
}
