/**
 * The JSON Schema subset the vendor specs use (OpenAPI 3 for Jira, Swagger 2 for Azure DevOps),
 * checked by the fakes against request and response bodies. Problems come back as
 * "path: problem" lines, empty when the value is valid.
 */
export interface Schema {
  $ref?: string;
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
  allOf?: Schema[];
  enum?: unknown[];
  required?: string[];
  maxLength?: number;
  nullable?: boolean;
  format?: string;
}

export interface SchemaDialect {
  /** The schema a `$ref` points at (`#/components/schemas/X` or `#/definitions/X`). */
  resolve(ref: string): Schema | undefined;
  /**
   * OpenAPI 3: null only where the schema says `nullable` (or has no type). Swagger 2 has no
   * nullable, and Azure DevOps answers null for absent values: null is always accepted there.
   */
  readonly nullable: 'declared' | 'always';
  /**
   * An object schema without properties: Swagger 2 specs of Azure DevOps use it for a JToken
   * (any JSON value); OpenAPI 3 specs for "an object with anything in it".
   */
  readonly untypedObject: 'any-json' | 'object';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function resolved(schema: Schema, dialect: SchemaDialect): Schema {
  let current = schema;
  for (let depth = 0; current.$ref; depth++) {
    if (depth > 20) throw new Error(`$ref chain too deep at ${current.$ref}`);
    const next = dialect.resolve(current.$ref);
    if (!next) throw new Error(`spec has no schema ${current.$ref}`);
    current = next;
  }
  return current;
}

export function checkSchema(value: unknown, schema: Schema, dialect: SchemaDialect, at = '$'): string[] {
  const s = resolved(schema, dialect);
  const problems: string[] = [];
  for (const part of s.allOf ?? []) problems.push(...checkSchema(value, part, dialect, at));
  if (value === null || value === undefined) {
    if (dialect.nullable === 'always' || s.nullable || !s.type) return problems;
    return [...problems, `${at}: null is not ${s.type}`];
  }
  if (s.enum && !s.enum.includes(value))
    problems.push(`${at}: ${JSON.stringify(value)} is not one of ${s.enum}`);
  switch (s.type) {
    case 'object': {
      const typed = Object.keys(s.properties ?? {}).length > 0 || typeof s.additionalProperties === 'object';
      if (!typed && dialect.untypedObject === 'any-json') break;
      if (typeof value !== 'object' || Array.isArray(value))
        return [...problems, `${at}: expected an object`];
      const record = value as Record<string, unknown>;
      for (const name of s.required ?? []) if (!(name in record)) problems.push(`${at}.${name}: required`);
      for (const [name, item] of Object.entries(record)) {
        const property = s.properties?.[name];
        if (property) problems.push(...checkSchema(item, property, dialect, `${at}.${name}`));
        else if (s.additionalProperties === false) problems.push(`${at}.${name}: not in the schema`);
        else if (typeof s.additionalProperties === 'object')
          problems.push(...checkSchema(item, s.additionalProperties, dialect, `${at}.${name}`));
      }
      break;
    }
    case 'array':
      if (!Array.isArray(value)) return [...problems, `${at}: expected an array`];
      if (s.items) {
        for (const [i, item] of value.entries())
          problems.push(...checkSchema(item, s.items, dialect, `${at}[${i}]`));
      }
      break;
    case 'string':
      if (typeof value !== 'string') problems.push(`${at}: expected a string`);
      else if (s.maxLength !== undefined && value.length > s.maxLength)
        problems.push(`${at}: longer than ${s.maxLength}`);
      else if (s.format === 'uri' && !URL.canParse(value)) problems.push(`${at}: not a URI`);
      else if (s.format === 'uuid' && !UUID.test(value)) problems.push(`${at}: not a uuid`);
      else if (s.format === 'date-time' && Number.isNaN(Date.parse(value)))
        problems.push(`${at}: not a date-time`);
      break;
    case 'integer':
      if (!Number.isInteger(value)) problems.push(`${at}: expected an integer`);
      break;
    case 'number':
      if (typeof value !== 'number') problems.push(`${at}: expected a number`);
      break;
    case 'boolean':
      if (typeof value !== 'boolean') problems.push(`${at}: expected a boolean`);
      break;
  }
  return problems;
}
