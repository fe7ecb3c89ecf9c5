/**
 * ServiceNow as a TicketProvider: incidents through the Table API. ServiceNow has no projects;
 * active assignment groups (sys_user_group) stand in for them, and the routed group becomes the
 * incident's assignment_group.
 */
import { AppError, ErrorCode, isAppError } from '../../../src/errors.js';
import { classifyTransportError } from '../../../src/net/outbound.js';
import type {
  Identity,
  Project,
  ProviderContext,
  RequiredField,
  Routing,
  TicketInput,
  TicketProvider,
  TicketProviderFactory,
  TicketRef,
  TicketStatus,
  TicketType,
  VerifyResult,
} from '../../../src/tickets/port.js';
import { verifyFailure } from '../../../src/tickets/port.js';
import { ServiceNowClient, type TableRecord } from './client.js';
import { FIELD, readCredentials, type ServiceNowCredentials, serviceNowFields } from './credentials.js';
import {
  FILLED_FIELDS,
  fieldType,
  incidentBody,
  incidentUrl,
  isSysId,
  normalizeState,
  queryValue,
  stateName,
  valueAndDisplay,
} from './mapping.js';
import { serviceNowWebhook } from './webhook.js';

/** Roles that may create incidents in a base instance (sn_incident_write: newer releases). */
const CREATE_ROLES = ['itil', 'sn_incident_write', 'incident_manager', 'itil_admin', 'admin'];
const GROUP_PAGE = 1_000;
const MAX_GROUPS = 10_000;

class ServiceNowTicketProvider implements TicketProvider {
  readonly kind = 'servicenow' as const;
  private state: { credentials: ServiceNowCredentials; client: ServiceNowClient } | undefined;
  /** Assignment group names already resolved to sys_ids by this instance. */
  private readonly groups = new Map<string, string>();

  constructor(private readonly context: ProviderContext) {}

  private get credentials(): ServiceNowCredentials {
    return this.connect().credentials;
  }

  private get client(): ServiceNowClient {
    return this.connect().client;
  }

  private connect() {
    if (!this.state) {
      const credentials = readCredentials(this.context.values);
      this.state = { credentials, client: new ServiceNowClient(credentials, this.context) };
    }
    return this.state;
  }

  /** The form field that names the account the instance sees. */
  private get accountField(): string {
    return this.credentials.authType === 'oauth_client_credentials' ? FIELD.clientId : FIELD.username;
  }

  async verify(routing?: Routing): Promise<VerifyResult> {
    try {
      const client = this.client;
      client.base();
      const identity = await this.whoAmI();
      await this.checkIncidentRead(identity);
      const roles = await this.rolesOf(identity);
      if (roles !== undefined && !roles.some((r) => CREATE_ROLES.includes(r))) {
        return {
          ok: false,
          code: ErrorCode.FORBIDDEN,
          message: `The ServiceNow user "${identity.displayName}" may not create incidents: it has none of the roles ${CREATE_ROLES.join(', ')}. Give it the itil role (or sn_incident_write).`,
          field: this.accountField,
        };
      }
      if (routing) await this.assignmentGroup(routing);
      const role = roles?.find((r) => CREATE_ROLES.includes(r));
      return {
        ok: true,
        identity,
        summary: role
          ? `Signed in to ${client.host} as ${identity.displayName}, who can read incidents and create them (role ${role}).`
          : `Signed in to ${client.host} as ${identity.displayName}, who can read incidents (its roles could not be read, so creating them is checked when the first incident is created).`,
      };
    } catch (error) {
      const appError = isAppError(error)
        ? error
        : classifyTransportError(
            error,
            this.context.values[FIELD.instanceUrl] ?? 'ServiceNow',
            FIELD.instanceUrl,
          );
      return verifyFailure(appError);
    }
  }

  /** The user behind the credentials: by user name, or for client credentials the token's user. */
  private async whoAmI(): Promise<Identity> {
    const c = this.credentials;
    const query =
      c.authType === 'oauth_client_credentials'
        ? 'sys_id=javascript:gs.getUserID()'
        : `user_name=${queryValue(c.username)}`;
    const { records } = await this.client.list(
      'sys_user',
      {
        sysparm_query: query,
        sysparm_fields: 'sys_id,user_name,name,email',
        sysparm_limit: '1',
        sysparm_exclude_reference_link: 'true',
      },
      'read the user record',
    );
    const user = records[0];
    if (!user) {
      // The credentials work (no 401) but the user may not read its own sys_user record.
      const name = c.authType === 'oauth_client_credentials' ? `OAuth client ${c.clientId}` : c.username;
      return { id: name, displayName: name };
    }
    const text = (key: string) => valueAndDisplay(user[key]).value;
    const email = text('email');
    return {
      id: text('sys_id'),
      displayName: text('name') || text('user_name') || 'ServiceNow user',
      ...(email ? { email } : {}),
    };
  }

  private async checkIncidentRead(identity: Identity): Promise<void> {
    try {
      await this.client.list(
        'incident',
        { sysparm_limit: '1', sysparm_fields: 'sys_id', sysparm_no_count: 'true' },
        'read incidents',
      );
    } catch (error) {
      if (isAppError(error) && error.code === ErrorCode.FORBIDDEN) {
        throw new AppError(
          ErrorCode.FORBIDDEN,
          `The ServiceNow user "${identity.displayName}" may not read incidents. Give it the itil role (or sn_incident_read and sn_incident_write).`,
          { cause: error, details: { field: this.accountField, status: 403 } },
        );
      }
      throw error;
    }
  }

  /**
   * The user's role names from sys_user_has_role (role.name dot-walked), or undefined when the
   * instance does not let the user read them (or the user's sys_id is unknown).
   */
  private async rolesOf(identity: Identity): Promise<string[] | undefined> {
    if (!isSysId(identity.id)) return undefined;
    try {
      const { records } = await this.client.list(
        'sys_user_has_role',
        {
          sysparm_query: `user=${identity.id}`,
          sysparm_fields: 'role.name',
          sysparm_limit: '500',
          sysparm_exclude_reference_link: 'true',
        },
        "read the user's roles",
      );
      return records.map((r) => valueAndDisplay(r['role.name']).value).filter(Boolean);
    } catch (error) {
      if (isAppError(error) && error.code === ErrorCode.FORBIDDEN) return undefined;
      throw error;
    }
  }

  /**
   * The routed assignment group's sys_id, looked up by sys_id or by name (once per instance):
   * ServiceNow would silently store a reference to a group that does not exist.
   */
  private async assignmentGroup(routing: Routing): Promise<string | undefined> {
    const wanted = (routing.assignmentGroup ?? routing.project ?? '').trim();
    if (!wanted) return undefined;
    const known = this.groups.get(wanted);
    if (known) return known;
    const { records } = await this.client.list(
      'sys_user_group',
      {
        sysparm_query: isSysId(wanted) ? `sys_id=${wanted}` : `name=${queryValue(wanted)}^active=true`,
        sysparm_fields: 'sys_id,name,active',
        sysparm_limit: '1',
        sysparm_exclude_reference_link: 'true',
      },
      'find the assignment group',
    );
    const sysId = records[0] ? valueAndDisplay(records[0].sys_id).value : '';
    if (!sysId) {
      throw new AppError(
        ErrorCode.NOT_FOUND,
        `The ServiceNow assignment group "${wanted}" was not found (or the user may not read it). Choose one of the groups listed for ServiceNow, or check its name.`,
        { details: { field: 'assignmentGroup' } },
      );
    }
    this.groups.set(wanted, sysId);
    return sysId;
  }

  async listProjects(): Promise<Project[]> {
    const projects: Project[] = [];
    for (let offset = 0; offset < MAX_GROUPS; offset += GROUP_PAGE) {
      const { records, total } = await this.client.list(
        'sys_user_group',
        {
          sysparm_query: 'active=true^ORDERBYname',
          sysparm_fields: 'sys_id,name',
          sysparm_limit: String(GROUP_PAGE),
          sysparm_offset: String(offset),
          sysparm_exclude_reference_link: 'true',
        },
        'list assignment groups',
      );
      for (const record of records) {
        const id = valueAndDisplay(record.sys_id).value;
        if (id) projects.push({ id, key: id, name: valueAndDisplay(record.name).value || id });
      }
      if (records.length < GROUP_PAGE || offset + records.length >= total) break;
    }
    return projects;
  }

  async listTicketTypes(_project: string): Promise<TicketType[]> {
    return [{ id: 'incident', name: 'Incident' }];
  }

  /**
   * Incident fields marked mandatory in the dictionary (incident's own and those it inherits
   * from task), minus the ones the adapter fills. Choice fields come with their active choices.
   */
  async describeFields(_project: string, _ticketType: string): Promise<RequiredField[]> {
    let records: TableRecord[];
    try {
      ({ records } = await this.client.list(
        'sys_dictionary',
        {
          sysparm_query: 'nameINincident,task^mandatory=true^active=true^ORDERBYelement',
          sysparm_fields: 'name,element,column_label,internal_type,choice',
          sysparm_limit: '200',
          sysparm_exclude_reference_link: 'true',
        },
        'read the mandatory incident fields',
      ));
    } catch (error) {
      // The dictionary is admin-readable on some instances: fields the instance insists on then
      // surface as INVALID_INPUT (with the field names) when an incident is created.
      if (isAppError(error) && error.code === ErrorCode.FORBIDDEN) return [];
      throw error;
    }
    const fields = new Map<string, RequiredField>();
    const withChoices = new Set<string>();
    for (const record of records) {
      const key = valueAndDisplay(record.element).value;
      if (!key || key.startsWith('sys_') || FILLED_FIELDS.has(key) || fields.has(key)) continue;
      const internalType = valueAndDisplay(record.internal_type).value;
      const field: RequiredField = {
        key,
        name: valueAndDisplay(record.column_label).value || key,
        type: fieldType(internalType),
      };
      fields.set(key, field);
      // choice: 0 (or empty) none, 1 dropdown with -- None --, 3 dropdown without.
      const choice = valueAndDisplay(record.choice).value;
      if (internalType === 'choice' || (choice !== '' && choice !== '0')) withChoices.add(key);
    }
    for (const [key, field] of fields) {
      if (!withChoices.has(key)) continue;
      const choices = await this.choicesOf(key);
      if (choices.length > 0) fields.set(key, { ...field, type: 'option', allowedValues: choices });
    }
    return [...fields.values()];
  }

  private async choicesOf(element: string): Promise<{ id: string; name: string }[]> {
    const { records } = await this.client.list(
      'sys_choice',
      {
        sysparm_query: `nameINincident,task^element=${queryValue(element)}^inactive=false^ORDERBYsequence`,
        sysparm_fields: 'value,label',
        sysparm_limit: '200',
      },
      `read the choices of ${element}`,
    );
    const seen = new Set<string>();
    const choices: { id: string; name: string }[] = [];
    for (const record of records) {
      const id = valueAndDisplay(record.value).value;
      if (!id || seen.has(id)) continue;
      seen.add(id);
      choices.push({ id, name: valueAndDisplay(record.label).value || id });
    }
    return choices;
  }

  async findTicket(idempotencyKey: string, _routing?: Routing): Promise<TicketRef | undefined> {
    const { records } = await this.client.list(
      'incident',
      {
        // The oldest one if the key were ever on two incidents.
        sysparm_query: `correlation_id=${queryValue(idempotencyKey)}^ORDERBYsys_created_on`,
        sysparm_fields: 'sys_id,number',
        sysparm_limit: '1',
        sysparm_exclude_reference_link: 'true',
      },
      'look up the incident for this recommendation',
    );
    const record = records[0];
    return record ? this.refOf(record) : undefined;
  }

  private refOf(record: TableRecord): TicketRef {
    const sysId = valueAndDisplay(record.sys_id).value;
    const number = valueAndDisplay(record.number).value;
    if (!sysId || !number) {
      throw new AppError(
        ErrorCode.PROVIDER_ERROR,
        'ServiceNow answered without the incident number or sys_id. Check that the user may read the number and sys_id fields of incidents.',
        { cause: new Error(JSON.stringify(record).slice(0, 300)) },
      );
    }
    return { key: number, url: incidentUrl(this.client.base(), sysId) };
  }

  async createTicket(input: TicketInput, idempotencyKey: string): Promise<TicketRef> {
    const existing = await this.findTicket(idempotencyKey, input.routing);
    if (existing) return existing;
    const group = await this.assignmentGroup(input.routing);
    const body = incidentBody(input, idempotencyKey, group);
    const outcome = await this.client.insert<TicketRef>(
      'incident',
      body,
      { sysparm_fields: 'sys_id,number', sysparm_exclude_reference_link: 'true' },
      'create an incident',
      () => this.findTicket(idempotencyKey, input.routing),
    );
    return 'existing' in outcome ? outcome.existing : this.refOf(outcome.created);
  }

  async getTicket(key: string): Promise<TicketStatus> {
    const number = key.trim();
    const { records } = await this.client.list(
      'incident',
      {
        sysparm_query: `number=${queryValue(number)}`,
        sysparm_fields: 'number,state,active',
        sysparm_display_value: 'all',
        sysparm_limit: '1',
        sysparm_exclude_reference_link: 'true',
      },
      `read incident ${number}`,
    );
    const record = records[0];
    if (!record) {
      throw new AppError(
        ErrorCode.NOT_FOUND,
        `Incident ${number} was not found in ServiceNow (it may have been deleted, or the user may not read it).`,
      );
    }
    const state = valueAndDisplay(record.state);
    const active = valueAndDisplay(record.active).value;
    return {
      status: normalizeState(state.value, active),
      providerStatus: stateName(state.value, state.display),
    };
  }
}

export const serviceNowProvider: TicketProviderFactory = {
  descriptor: {
    kind: 'servicenow',
    displayName: 'ServiceNow',
    fields: serviceNowFields,
    ticketNoun: 'incident',
  },
  create(context: ProviderContext): TicketProvider {
    return new ServiceNowTicketProvider(context);
  },
  webhook: serviceNowWebhook,
};
