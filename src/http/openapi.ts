import { z } from 'zod/v4';
import {
  errorSchema,
  INGEST_BODY_LIMIT_BYTES,
  ingestRefusedSchema,
  ingestResponseSchema,
  MAX_BATCH,
  recommendationInputSchema,
  recommendationViewSchema,
} from '../recommendations/ingest.js';

/** A component schema from a zod schema (JSON Schema 2020-12, which OpenAPI 3.1 uses as is). */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io }) as Record<
    string,
    unknown
  >;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ 'application/json': { schema } });
const error = (description: string) => ({ description, content: json(ref('Error')) });

/**
 * The OpenAPI 3.1 document of the tenant API (`GET /api/v1/openapi.json`, public). The
 * recommendation, result and error schemas are generated from the zod schemas the routes validate
 * and answer with, so the document cannot drift from the code.
 */
export function openApiDocument(version: string): Record<string, unknown> {
  const unauthorized = error('No API key, or a key that is not valid or revoked.');
  const rateLimited = error('Over the per-key request budget; see Retry-After.');
  return {
    openapi: '3.1.0',
    info: {
      title: 'CloudPi ChatOps API',
      version,
      description:
        'Tenant API of CloudPi ChatOps. Every operation but this document needs a tenant API key ' +
        '(`cloudpi apikey create --tenant <ref>`) sent as `Authorization: Bearer cpk_...`.',
    },
    security: [{ apiKey: [] }],
    paths: {
      '/api/v1/recommendations': {
        post: {
          operationId: 'ingestRecommendations',
          summary: 'Store recommendations (one, or a batch of up to 500)',
          description:
            `The body is one recommendation, an array of up to ${MAX_BATCH}, or {"recommendations": [...]}` +
            ` (at most ${INGEST_BODY_LIMIT_BYTES} bytes). Each item is validated on its own: invalid` +
            ' items are reported with their index, id and field errors, and the valid ones are stored' +
            ' anyway. Idempotent on (tenant, id): a resend updates the stored recommendation, or leaves it' +
            ' unchanged when it is identical. 200: every item stored; 207: some items invalid, the rest' +
            ' stored; 400: nothing stored.',
          requestBody: {
            required: true,
            content: json({
              oneOf: [
                ref('RecommendationInput'),
                { type: 'array', maxItems: MAX_BATCH, items: ref('RecommendationInput') },
                {
                  type: 'object',
                  required: ['recommendations'],
                  properties: {
                    recommendations: {
                      type: 'array',
                      maxItems: MAX_BATCH,
                      items: ref('RecommendationInput'),
                    },
                  },
                },
              ],
            }),
          },
          responses: {
            '200': {
              description: 'Every item stored (created, updated or unchanged).',
              content: json(ref('IngestResponse')),
            },
            '207': {
              description: 'Some items invalid (see their errors); the others stored.',
              content: json(ref('IngestResponse')),
            },
            '400': {
              description:
                'Nothing stored: every item is invalid (the error plus per-item results), or the body is not JSON / not one of the three shapes.',
              content: json({ oneOf: [ref('IngestRefused'), ref('Error')] }),
            },
            '401': unauthorized,
            '413': error(
              `The body is larger than ${INGEST_BODY_LIMIT_BYTES} bytes or holds more than ${MAX_BATCH} items.`,
            ),
            '429': rateLimited,
          },
        },
      },
      '/api/v1/recommendations/{id}': {
        get: {
          operationId: 'getRecommendation',
          summary: 'A stored recommendation with its cards and tickets',
          parameters: [
            {
              name: 'id',
              in: 'path',
              required: true,
              description: "The caller's id of the recommendation, URL-encoded.",
              schema: { type: 'string', minLength: 1, maxLength: 200 },
            },
          ],
          responses: {
            '200': { description: 'The recommendation.', content: json(ref('Recommendation')) },
            '401': unauthorized,
            '404': error('No recommendation with this id in the key’s tenant.'),
            '429': rateLimited,
          },
        },
      },
      '/api/v1/tenant': {
        get: {
          operationId: 'getTenant',
          summary: 'The tenant the API key belongs to',
          responses: {
            '200': {
              description: 'The tenant.',
              content: json({
                type: 'object',
                required: ['id', 'ref', 'platform', 'name'],
                properties: {
                  id: { type: 'string', format: 'uuid' },
                  ref: { type: 'string', description: 'slack:<team id>, teams:<tenant id> or email:<name>' },
                  platform: { type: 'string', enum: ['slack', 'teams', 'email'] },
                  name: { type: 'string' },
                },
              }),
            },
            '401': unauthorized,
            '429': rateLimited,
          },
        },
      },
      '/api/v1/openapi.json': {
        get: {
          operationId: 'getOpenApiDocument',
          summary: 'This document (no API key needed)',
          security: [],
          responses: {
            '200': { description: 'The OpenAPI 3.1 document.', content: json({ type: 'object' }) },
          },
        },
      },
    },
    components: {
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'cpk_<prefix>_<secret>',
          description: 'A tenant API key from `cloudpi apikey create --tenant <ref>`.',
        },
      },
      schemas: {
        RecommendationInput: jsonSchema(recommendationInputSchema, 'input'),
        IngestResponse: jsonSchema(ingestResponseSchema, 'output'),
        IngestRefused: jsonSchema(ingestRefusedSchema, 'output'),
        Recommendation: jsonSchema(recommendationViewSchema, 'output'),
        Error: jsonSchema(errorSchema, 'output'),
      },
    },
  };
}
