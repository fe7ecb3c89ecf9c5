import { TICKET_PROVIDER_KINDS, type TicketProviderKind } from '../tickets/port.js';

/**
 * The one command grammar of both chat platforms: `/cloudpi <command>` in Slack, the same words
 * typed to the bot in Teams. Teams' manifest `commandLists` is built from COMMANDS too.
 */
export interface CommandInfo {
  readonly name: CommandName;
  readonly usage: string;
  readonly description: string;
  /** Changes integrations: CloudPi admins only. */
  readonly adminOnly: boolean;
}

export const COMMANDS = [
  { name: 'help', usage: 'help', description: 'Show what CloudPi can do here', adminOnly: false },
  {
    name: 'integrations',
    usage: 'integrations',
    description: 'Show the Integration settings: each provider and its status',
    adminOnly: false,
  },
  {
    name: 'connect',
    usage: 'connect jira|azure-devops|servicenow',
    description: 'Connect a ticket provider',
    adminOnly: true,
  },
  {
    name: 'configure',
    usage: 'configure jira|azure-devops|servicenow',
    description: 'Choose where tickets go: project, type, area, assignment group',
    adminOnly: true,
  },
  {
    name: 'disconnect',
    usage: 'disconnect jira|azure-devops|servicenow',
    description: 'Disconnect a provider (asks for confirmation)',
    adminOnly: true,
  },
  {
    name: 'webhook',
    usage: 'webhook jira|azure-devops|servicenow [rotate]',
    description: "Set up the provider's status webhook (URL and secret) so cards follow tickets at once",
    adminOnly: true,
  },
  { name: 'sso', usage: 'sso', description: 'Single sign-on (OpenID Connect) settings', adminOnly: true },
  { name: 'smtp', usage: 'smtp', description: 'Email (SMTP) settings', adminOnly: true },
  {
    name: 'subscribe',
    usage: 'subscribe',
    description: 'Post recommendations into this channel',
    adminOnly: true,
  },
  {
    name: 'unsubscribe',
    usage: 'unsubscribe',
    description: "Stop this channel's recommendation subscriptions",
    adminOnly: true,
  },
  {
    name: 'login',
    usage: 'login',
    description: 'Link your chat account to your organization sign-in',
    adminOnly: false,
  },
  { name: 'audit', usage: 'audit', description: 'Recent admin changes', adminOnly: true },
] as const satisfies readonly { name: string; usage: string; description: string; adminOnly: boolean }[];

export type CommandName = (typeof COMMANDS)[number]['name'];

export type Command =
  | { readonly name: 'connect' | 'configure' | 'disconnect'; readonly provider: TicketProviderKind }
  | {
      readonly name: 'webhook';
      readonly provider: TicketProviderKind;
      /** A new URL and secret; the old ones stop working. */
      readonly rotate: boolean;
    }
  | { readonly name: Exclude<CommandName, 'connect' | 'configure' | 'disconnect' | 'webhook'> }
  | {
      /** The input matched no command: answer with help and the closest command. */
      readonly name: 'unknown';
      readonly input: string;
      readonly suggestion?: string;
    }
  | {
      /** A known command used wrongly (missing or unknown provider). */
      readonly name: 'usage';
      readonly command: CommandName;
      readonly message: string;
    };

const PROVIDER_ALIASES: Record<string, TicketProviderKind> = {
  jira: 'jira',
  'azure-devops': 'azure-devops',
  azuredevops: 'azure-devops',
  azure: 'azure-devops',
  ado: 'azure-devops',
  devops: 'azure-devops',
  servicenow: 'servicenow',
  'service-now': 'servicenow',
  snow: 'servicenow',
};

const ALIASES: Record<string, CommandName> = {
  '': 'help',
  '?': 'help',
  status: 'integrations',
  settings: 'integrations',
  integration: 'integrations',
  add: 'connect',
  setup: 'connect',
  remove: 'disconnect',
  signin: 'login',
  'sign-in': 'login',
  email: 'smtp',
  webhooks: 'webhook',
  hook: 'webhook',
};

/** The commands whose answer may be a form (a modal): connection, routing, confirmation, subscription. */
const FORM_COMMANDS: ReadonlySet<Command['name']> = new Set([
  'connect',
  'configure',
  'disconnect',
  'subscribe',
  'sso',
  'smtp',
]);

/**
 * Whether the command's answer may open a form. Slack lets an app open a modal only with the
 * command's trigger_id, within three seconds of the command, so such an answer cannot wait.
 */
export function mayOpenForm(command: Command): boolean {
  return FORM_COMMANDS.has(command.name);
}

/** Parses what the user typed after `/cloudpi` (or to the bot in Teams, mention removed). */
export function parseCommand(input: string): Command {
  const words = input
    .replace(/[\u00a0\s]+/g, ' ')
    .trim()
    .toLowerCase()
    .split(' ')
    .filter(Boolean);
  const first = words[0] ?? '';
  const name = (COMMANDS.find((c) => c.name === first)?.name ?? ALIASES[first]) as CommandName | undefined;
  if (!name) {
    const suggestion = closestCommand(first);
    return { name: 'unknown', input: input.trim().slice(0, 100), ...(suggestion ? { suggestion } : {}) };
  }
  if (name === 'webhook') {
    const rotate = words.length > 2 && ['rotate', 'new', 'reset'].includes(words.at(-1)!);
    const args = rotate ? words.slice(1, -1) : words.slice(1);
    const provider = PROVIDER_ALIASES[args.join('-')] ?? PROVIDER_ALIASES[args[0] ?? ''];
    if (!provider)
      return {
        name: 'usage',
        command: name,
        message: `Which provider? Use: webhook ${TICKET_PROVIDER_KINDS.join('|')} [rotate]`,
      };
    return { name, provider, rotate };
  }
  if (name === 'connect' || name === 'configure' || name === 'disconnect') {
    const rest = words.slice(1).join('-');
    const provider = PROVIDER_ALIASES[rest] ?? PROVIDER_ALIASES[words[1] ?? ''];
    if (!provider) {
      return {
        name: 'usage',
        command: name,
        message: rest
          ? `"${words.slice(1).join(' ').slice(0, 40)}" is not a provider. Use: ${name} ${TICKET_PROVIDER_KINDS.join('|')}`
          : `Which provider? Use: ${name} ${TICKET_PROVIDER_KINDS.join('|')}`,
      };
    }
    return { name, provider };
  }
  return { name } as Command;
}

/** The command nearest to a typo (Levenshtein distance at most 3, or a shared prefix). */
export function closestCommand(word: string): string | undefined {
  if (!word) return undefined;
  const candidates = [...COMMANDS.map((c) => c.name), ...Object.keys(ALIASES).filter(Boolean)];
  let best: { name: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = candidate.startsWith(word) && word.length >= 2 ? 0 : levenshtein(word, candidate);
    if (!best || distance < best.distance) best = { name: candidate, distance };
  }
  if (!best || best.distance > Math.min(3, Math.ceil(word.length / 2))) return undefined;
  const resolved = (ALIASES[best.name] as string | undefined) ?? best.name;
  return COMMANDS.find((c) => c.name === resolved)?.usage ?? resolved;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}
