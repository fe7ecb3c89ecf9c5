/**
 * A strict Adaptive Card check for tests, on Microsoft's own object model (the `adaptivecards`
 * package). Its ESM build does not load in Node, so the UMD bundle is required instead.
 *
 * What it reports (an empty list means valid):
 * - the object model's parse events (unknown element or action types, invalid property values,
 *   properties newer than Adaptive Cards 1.5) and its `validateProperties()` failures (duplicate
 *   ids, required inputs without a label or error message, …);
 * - unknown properties, found by a round trip: a property of the input that the object model drops
 *   in `toJSON()` and does not declare in its schema (a declared property is dropped when it holds
 *   its default). Teams' extensions are allowed: `msteams` on the card and anything inside an
 *   action's free-form `data` (`data.msteams` included); `$schema` too;
 * - own checks for Teams: version at most 1.5; every input has an id, unique across the card; every
 *   Action.Execute has a verb from `options.verbs` (and `data.verb`, when given, says the same);
 *   every Action.Submit's `data.verb` is one of `options.verbs`; Action.OpenUrl URLs are http(s);
 *   the JSON is at most 28 KB.
 */
import { createRequire } from 'node:module';
import type * as AdaptiveCardsModule from 'adaptivecards';

type AC = typeof AdaptiveCardsModule;
type SerializableObject = AdaptiveCardsModule.SerializableObject;
type Json = Record<string, unknown>;

const ac = createRequire(import.meta.url)('adaptivecards/dist/adaptivecards.js') as AC;

export const MAX_CARD_BYTES = 28 * 1024;
export const MAX_CARD_VERSION = '1.5';

export interface ValidateOptions {
  /** The verbs the bot handles; Action.Execute verbs and Action.Submit `data.verb` must be one. */
  readonly verbs?: readonly string[];
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function versionOf(text: unknown): [number, number] | undefined {
  const match = typeof text === 'string' ? /^(\d+)\.(\d+)$/.exec(text) : null;
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

/** Paths (`body[2].actions[0]`) of every object in the input, for readable messages. */
function pathsOf(root: unknown): WeakMap<object, string> {
  const paths = new WeakMap<object, string>();
  const visit = (value: unknown, path: string) => {
    if (Array.isArray(value)) {
      value.forEach((v, i) => {
        visit(v, `${path}[${i}]`);
      });
    } else if (isObject(value)) {
      paths.set(value, path || '(card)');
      for (const [k, v] of Object.entries(value)) visit(v, path ? `${path}.${k}` : k);
    }
  };
  visit(root, '');
  return paths;
}

const schemaCache = new Map<string, ReadonlySet<string>>();

/** The property names an object-model class declares. */
function declaredNames(instance: SerializableObject): ReadonlySet<string> {
  const key = instance.constructor.name;
  const cached = schemaCache.get(key);
  if (cached) return cached;
  const schema = instance.getSchema();
  const names = new Set<string>();
  for (let i = 0; i < schema.getCount(); i++) names.add(schema.getItemAt(i).name);
  schemaCache.set(key, names);
  return names;
}

/** Untyped objects nested in elements, by the property that holds them. */
function nestedSchema(property: string): ReadonlySet<string> | undefined {
  const classes: Record<string, (new () => SerializableObject) | undefined> = {
    choices: ac.Choice,
    facts: ac.Fact,
    refresh: ac.RefreshDefinition,
    backgroundImage: ac.BackgroundImage,
    authentication: ac.Authentication,
    sources: ac.MediaSource,
    captionSources: ac.CaptionSource,
    tokenExchangeResource: ac.TokenExchangeResource,
    buttons: ac.AuthCardButton,
    columns: ac.TableColumnDefinition,
    'choices.data': ac.ChoiceSetInputDataQuery,
  };
  const cls = classes[property];
  return cls ? declaredNames(new cls()) : undefined;
}

/** Validates a card; returns its problems, each naming where it is. Empty: valid. */
export function validateAdaptiveCard(card: unknown, options: ValidateOptions = {}): string[] {
  const problems: string[] = [];
  if (!isObject(card)) return ['The card is not a JSON object.'];
  let text: string;
  try {
    text = JSON.stringify(card);
  } catch (error) {
    return [`The card is not serializable: ${(error as Error).message}`];
  }
  const json = JSON.parse(text) as Json;
  const paths = pathsOf(json);
  const where = (o: unknown) => (isObject(o) ? (paths.get(o) ?? '?') : '?');

  if (json.type !== 'AdaptiveCard')
    problems.push(`(card): type must be "AdaptiveCard", not ${JSON.stringify(json.type)}.`);
  const version = versionOf(json.version);
  const max = versionOf(MAX_CARD_VERSION)!;
  if (!version) problems.push(`(card): version must be "major.minor", not ${JSON.stringify(json.version)}.`);
  else if (version[0] > max[0] || (version[0] === max[0] && version[1] > max[1]))
    problems.push(
      `(card): version ${json.version} is newer than ${MAX_CARD_VERSION}, the newest Teams renders.`,
    );

  // Parse with the object model, pairing every element and action with its source.
  const pairs: { instance: SerializableObject; source: Json }[] = [];
  const sourceOf = new Map<object, Json>();
  const parsed = new Set<object>();
  const context = new ac.SerializationContext(ac.Versions.v1_5);
  const record = (instance: SerializableObject, source: unknown) => {
    if (!isObject(source)) return;
    // A fallback stands in for an unknown type: that is reported as such, not property by property.
    const type = (instance as { getJsonTypeName?: () => string }).getJsonTypeName?.();
    if (typeof source.type === 'string' && type !== source.type) return;
    pairs.push({ instance, source });
    sourceOf.set(instance, source);
    parsed.add(source);
  };
  context.onParseElement = record;
  context.onParseAction = record;
  const model = new ac.AdaptiveCard();
  model.parse(json, context);
  pairs.unshift({ instance: model, source: json });
  sourceOf.set(model, json);
  parsed.add(json);

  for (let i = 0; i < context.eventCount; i++) {
    const event = context.getEventAt(i);
    const source = event.source ? sourceOf.get(event.source) : undefined;
    problems.push(`${source ? where(source) : '(card)'}: ${event.message}`);
  }
  for (const event of model.validateProperties().validationEvents) {
    const source = event.source ? sourceOf.get(event.source) : undefined;
    problems.push(`${source ? where(source) : '(card)'}: ${event.message}`);
  }

  // Round trip: what the model drops and does not declare is an unknown property.
  const compare = (
    source: Json,
    output: Json | undefined,
    declared: ReadonlySet<string>,
    opts: { root?: boolean; action?: boolean; parent?: string },
  ) => {
    for (const [key, value] of Object.entries(source)) {
      if (opts.root && (key === 'msteams' || key === '$schema')) continue;
      // An action's data is free-form (Teams reads data.msteams from it).
      if (opts.action && key === 'data') continue;
      if (!output || !(key in output)) {
        if (!declared.has(key)) problems.push(`${where(source)}: unknown property "${key}".`);
        continue;
      }
      const out = output[key];
      const nestedKey = opts.parent === 'Input.ChoiceSet' && key === 'data' ? 'choices.data' : key;
      const items = Array.isArray(value) ? value : [value];
      const outs = Array.isArray(value)
        ? Array.isArray(out) && out.length === value.length
          ? out
          : undefined
        : [out];
      items.forEach((item, i) => {
        // Typed children are compared on their own, or reported by the parser as unknown types.
        if (!isObject(item) || parsed.has(item) || typeof item.type === 'string') return;
        const schema = nestedSchema(nestedKey);
        const counterpart = outs?.[i];
        if (!schema || !outs) {
          if (!schema) problems.push(`${where(item)}: unexpected object under "${key}".`);
          return;
        }
        compare(item, isObject(counterpart) ? counterpart : undefined, schema, {});
      });
    }
  };
  for (const { instance, source } of pairs) {
    const output = instance.toJSON(new ac.SerializationContext(ac.Versions.v1_5));
    const type = typeof source.type === 'string' ? source.type : '';
    compare(source, isObject(output) ? output : undefined, declaredNames(instance), {
      root: instance === model,
      action: type.startsWith('Action.'),
      parent: type,
    });
  }

  // Teams' own rules.
  const verbs = options.verbs ? new Set(options.verbs) : undefined;
  const inputIds = new Map<string, string>();
  const walk = (value: unknown) => {
    if (Array.isArray(value)) {
      for (const v of value) walk(v);
      return;
    }
    if (!isObject(value)) return;
    const type = typeof value.type === 'string' ? value.type : '';
    const at = where(value);
    if (type.startsWith('Input.')) {
      const id = value.id;
      if (typeof id !== 'string' || !id) problems.push(`${at}: ${type} has no id.`);
      else if (inputIds.has(id))
        problems.push(`${at}: input id "${id}" is used twice (also at ${inputIds.get(id)}).`);
      else inputIds.set(id, at);
    }
    const data = isObject(value.data) ? value.data : undefined;
    if (type === 'Action.Execute') {
      const verb = value.verb;
      if (typeof verb !== 'string' || !verb) problems.push(`${at}: Action.Execute has no verb.`);
      else if (verbs && !verbs.has(verb)) problems.push(`${at}: unknown verb "${verb}".`);
      if (data && 'verb' in data && data.verb !== verb)
        problems.push(
          `${at}: data.verb ${JSON.stringify(data.verb)} differs from verb ${JSON.stringify(verb)}.`,
        );
    }
    if (type === 'Action.Submit' && verbs) {
      const verb = data?.verb;
      if (typeof verb !== 'string') problems.push(`${at}: Action.Submit has no data.verb.`);
      else if (!verbs.has(verb)) problems.push(`${at}: unknown data.verb "${verb}".`);
    }
    if (type === 'Action.OpenUrl') {
      let protocol = '';
      try {
        protocol = new URL(String(value.url)).protocol;
      } catch {
        // reported below
      }
      if (protocol !== 'https:' && protocol !== 'http:')
        problems.push(`${at}: Action.OpenUrl url must be http(s), not ${JSON.stringify(value.url)}.`);
    }
    for (const [key, v] of Object.entries(value)) {
      if (key === 'data' && type.startsWith('Action.')) continue;
      walk(v);
    }
  };
  walk(json);

  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_CARD_BYTES) problems.push(`(card): ${bytes} bytes, over Teams' ${MAX_CARD_BYTES}.`);
  return problems;
}
