/**
 * Platform-neutral view models. The core builds them once; the Slack adapter renders them as Block
 * Kit, the Teams adapter as Adaptive Cards. Text here is plain (no markup): renderers escape it.
 */
import { type CredentialField, TICKET_PROVIDER_KINDS, type TicketProviderKind } from '../tickets/port.js';

/** What a settings form is for: a ticket provider, single sign-on or email (SMTP). */
export const SETTINGS_KINDS = [...TICKET_PROVIDER_KINDS, 'sso', 'smtp'] as const;
export type SettingsKind = (typeof SETTINGS_KINDS)[number];

export function isSettingsKind(value: unknown): value is SettingsKind {
  return (SETTINGS_KINDS as readonly unknown[]).includes(value);
}

export type Tone = 'success' | 'error' | 'warning' | 'info';

/** A short message: "Azure DevOps is connected and active" with a green check, or an error. */
export interface NoticeView {
  readonly kind: 'notice';
  readonly tone: Tone;
  readonly title: string;
  readonly text?: string;
  /** A link to open (a sign-in link): a URL button in Slack, Action.OpenUrl in Teams. */
  readonly link?: { readonly url: string; readonly label: string };
}

export interface HelpView {
  readonly kind: 'help';
  readonly intro: string;
  readonly commands: readonly { readonly usage: string; readonly description: string }[];
  /** "Did you mean `integrations`?" for unknown input. */
  readonly suggestion?: string;
}

/** A button on a view. `action` and `provider` together say what it does when pressed. */
export interface ActionButton {
  readonly action: ActionName;
  readonly label: string;
  readonly provider?: SettingsKind;
  readonly style?: 'primary' | 'danger';
  /** The subscription an Unsubscribe button removes. */
  readonly subscriptionId?: string;
}

export type ActionName =
  | 'connect'
  | 'edit'
  | 'configure'
  | 'disconnect'
  | 'confirm-disconnect'
  | 'pause'
  | 'activate'
  | 'refresh'
  | 'unsubscribe'
  /** SMTP: send a test email to the admin. */
  | 'test-email';

export interface ProviderSection {
  readonly provider: TicketProviderKind;
  readonly displayName: string;
  /** Active | Connected | Not Connected | Error */
  readonly badge: string;
  readonly status: 'active' | 'connected' | 'not_connected' | 'error';
  /** One line under the badge: the site, the last error and its time, the routing. */
  readonly details: readonly string[];
  readonly actions: readonly ActionButton[];
}

/** A settings area that is not a ticket provider (SSO, SMTP). */
export interface SettingSection {
  readonly name: string;
  readonly badge: string;
  readonly details: readonly string[];
  readonly actions: readonly ActionButton[];
}

export interface RecentTicket {
  readonly key: string;
  readonly url: string;
  readonly provider: string;
  /** "Jira", "Azure DevOps": the provider's display name. */
  readonly providerName?: string;
  /** The provider's own status name, when it was read. */
  readonly providerStatus?: string | null;
  readonly title: string;
  readonly status: string;
}

/** A card that could not be delivered to a channel (state `failed`), for admins. */
export interface DeliveryProblem {
  /** Platform-neutral channel id (Slack: C…); adapters show it as a channel mention. */
  readonly channelId: string;
  readonly platform: string;
  readonly title: string;
  /** The platform's error code, e.g. not_in_channel. */
  readonly reason: string;
  readonly at: Date;
  /** What the fallback did: "Sent by email to …", "Email fallback pending", or why it could not. */
  readonly fallback?: string;
}

/** The Integration settings page: App Home in Slack, the status card in Teams. */
export interface StatusBoardView {
  readonly kind: 'status-board';
  readonly title: string;
  readonly providers: readonly ProviderSection[];
  readonly settings: readonly SettingSection[];
  readonly recentTickets: readonly RecentTicket[];
  /** Recent cards that could not be delivered; given to admins only, absent otherwise. */
  readonly deliveryProblems?: readonly DeliveryProblem[];
  /** Whether the viewer may change anything (buttons are shown to admins only). */
  readonly canEdit: boolean;
}

export interface FormField extends CredentialField {
  /** Pre-filled value; never set for secret fields. */
  readonly value?: string;
  /** A secret field with a saved value: blank keeps it. */
  readonly hasSavedSecret?: boolean;
}

/** A provider's connection form (Slack modal, Teams dialog). */
export interface IntegrationFormView {
  readonly kind: 'integration-form';
  readonly provider: SettingsKind;
  readonly title: string;
  /** Save for a new integration, Update for a configured one. */
  readonly submitLabel: 'Save' | 'Update';
  readonly fields: readonly FormField[];
  /** Field key -> message, shown at the field. */
  readonly errors: Readonly<Record<string, string>>;
  /** A message above the fields (the outcome of the last attempt). */
  readonly notice?: NoticeView;
}

/** A configured integration, read-only, with Edit (then the form shows Update). */
export interface IntegrationDetailsView {
  readonly kind: 'integration-details';
  readonly provider: SettingsKind;
  readonly title: string;
  readonly badge: string;
  readonly details: readonly string[];
  readonly actions: readonly ActionButton[];
  readonly notice?: NoticeView;
}

export interface ConfigureFieldOption {
  readonly value: string;
  readonly label: string;
}

/** Routing form: options listed from the provider, required fields asked for. */
export interface ConfigureFormView {
  readonly kind: 'configure-form';
  readonly provider: TicketProviderKind;
  readonly title: string;
  readonly submitLabel: 'Save' | 'Update';
  readonly fields: readonly {
    readonly key: string;
    readonly label: string;
    readonly required: boolean;
    readonly type: 'select' | 'text';
    readonly options?: readonly ConfigureFieldOption[];
    readonly value?: string;
    readonly hint?: string;
    /**
     * Choosing another value changes the other fields (a project's types, a type's required
     * fields): surfaces ask for the form again with the new choice (configureForm's `selection`).
     */
    readonly reloads?: boolean;
  }[];
  readonly errors: Readonly<Record<string, string>>;
  readonly notice?: NoticeView;
}

export interface ConfirmView {
  readonly kind: 'confirm';
  readonly title: string;
  readonly text: string;
  readonly confirm: ActionButton;
}

export interface AuditView {
  readonly kind: 'audit';
  readonly entries: readonly {
    readonly at: Date;
    readonly actor: string;
    readonly action: string;
    readonly target: string;
  }[];
}

/** A view shown while slow work runs ("Verifying…"). */
export interface ProgressView {
  readonly kind: 'progress';
  readonly title: string;
  readonly text: string;
}

/** The subscribe form of a channel: recommendation filters and an optional ticket route. */
export interface SubscribeFormView {
  readonly kind: 'subscribe-form';
  readonly title: string;
  /** The channel the subscription is for (platform id). */
  readonly channelId: string;
  readonly fields: readonly {
    readonly key: string;
    readonly label: string;
    readonly type: 'text' | 'select' | 'multi-select';
    readonly options?: readonly ConfigureFieldOption[];
    /** Typed text or the chosen option value(s). */
    readonly value?: string | readonly string[];
    readonly placeholder?: string;
    readonly hint?: string;
  }[];
  readonly errors: Readonly<Record<string, string>>;
  readonly notice?: NoticeView;
}

/** A channel's subscriptions, each in words with an Unsubscribe button. */
export interface SubscriptionListView {
  readonly kind: 'subscriptions';
  readonly title: string;
  readonly channelId: string;
  readonly items: readonly {
    readonly id: string;
    /** The filters in words. */
    readonly filters: string;
    /** "Tickets: Jira, project OPS (Task)", or undefined without a ticket route. */
    readonly tickets?: string;
    readonly createdBy?: string;
    readonly actions: readonly ActionButton[];
  }[];
  /** What to say when there are none. */
  readonly empty: string;
  readonly notice?: NoticeView;
}

export type View =
  | NoticeView
  | HelpView
  | StatusBoardView
  | IntegrationFormView
  | IntegrationDetailsView
  | ConfigureFormView
  | ConfirmView
  | AuditView
  | ProgressView
  | SubscribeFormView
  | SubscriptionListView;
