import { type InputTable, inputSchema } from './inputs.ts';
import type { Predictor } from './predictor.ts';

export const WEBHOOK_EVENTS = ['start', 'output', 'logs', 'completed'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

const STATUS_ENUM = ['starting', 'processing', 'succeeded', 'canceled', 'failed'] as const;

/**
 * The OpenAPI document of a Cog server for this predictor, as Cog's own servers write it: the paths of the
 * prediction contract, the predictor's `Input` and `Output`, and the request, response and error shapes.
 */
export function openApiDocument(predictor: Pick<Predictor<InputTable>, 'description' | 'inputs' | 'output'>) {
  return {
    openapi: '3.0.2',
    info: { title: 'Cog', version: '0.1.0', description: predictor.description },
    paths: {
      '/': { get: { summary: 'Root', operationId: 'root__get' } },
      '/health-check': { get: { summary: 'Healthcheck', operationId: 'healthcheck_health_check_get' } },
      '/predictions': {
        post: {
          summary: 'Predict',
          description: 'Run a single prediction on the model',
          operationId: 'predict_predictions_post',
          requestBody: {
            content: { 'application/json': { schema: { $ref: '#/components/schemas/PredictionRequest' } } },
          },
          responses: predictionResponses(),
        },
      },
      '/predictions/{prediction_id}': {
        put: {
          summary: 'Predict Idempotent',
          description: 'Run a single prediction on the model (idempotent creation).',
          operationId: 'predict_idempotent_predictions__prediction_id__put',
          parameters: [
            {
              name: 'prediction_id',
              in: 'path',
              required: true,
              schema: { type: 'string', title: 'Prediction ID' },
            },
          ],
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/PredictionRequest' } } },
          },
          responses: predictionResponses(),
        },
      },
      '/predictions/{prediction_id}/cancel': {
        post: {
          summary: 'Cancel',
          description: 'Cancel a running prediction',
          operationId: 'cancel_predictions__prediction_id__cancel_post',
          parameters: [
            {
              name: 'prediction_id',
              in: 'path',
              required: true,
              schema: { type: 'string', title: 'Prediction ID' },
            },
          ],
          responses: { '200': { description: 'Successful Response' }, '404': { description: 'Not running' } },
        },
      },
    },
    components: {
      schemas: {
        Input: inputSchema(predictor.inputs),
        Output: predictor.output,
        Status: { type: 'string', title: 'Status', enum: STATUS_ENUM, description: 'An enumeration.' },
        WebhookEvent: { type: 'string', title: 'WebhookEvent', enum: WEBHOOK_EVENTS },
        PredictionRequest: {
          type: 'object',
          title: 'PredictionRequest',
          properties: {
            id: { type: 'string', title: 'Id' },
            input: { $ref: '#/components/schemas/Input' },
            created_at: { type: 'string', title: 'Created At', format: 'date-time' },
            webhook: { type: 'string', title: 'Webhook', format: 'uri', minLength: 1, maxLength: 65536 },
            webhook_events_filter: {
              type: 'array',
              items: { $ref: '#/components/schemas/WebhookEvent' },
              default: WEBHOOK_EVENTS,
            },
          },
        },
        PredictionResponse: {
          type: 'object',
          title: 'PredictionResponse',
          properties: {
            id: { type: 'string', title: 'Id' },
            input: { $ref: '#/components/schemas/Input' },
            output: { $ref: '#/components/schemas/Output' },
            status: { $ref: '#/components/schemas/Status' },
            error: { type: 'string', title: 'Error' },
            logs: { type: 'string', title: 'Logs', default: '' },
            created_at: { type: 'string', title: 'Created At', format: 'date-time' },
            started_at: { type: 'string', title: 'Started At', format: 'date-time' },
            completed_at: { type: 'string', title: 'Completed At', format: 'date-time' },
            metrics: { type: 'object', title: 'Metrics' },
          },
        },
        ValidationError: {
          type: 'object',
          title: 'ValidationError',
          required: ['loc', 'msg', 'type'],
          properties: {
            loc: {
              type: 'array',
              title: 'Location',
              items: { anyOf: [{ type: 'string' }, { type: 'integer' }] },
            },
            msg: { type: 'string', title: 'Message' },
            type: { type: 'string', title: 'Error Type' },
          },
        },
        HTTPValidationError: {
          type: 'object',
          title: 'HTTPValidationError',
          properties: {
            detail: {
              type: 'array',
              title: 'Detail',
              items: { $ref: '#/components/schemas/ValidationError' },
            },
          },
        },
      },
    },
  } as const;
}

function predictionResponses() {
  return {
    '200': {
      description: 'Successful Response',
      content: { 'application/json': { schema: { $ref: '#/components/schemas/PredictionResponse' } } },
    },
    '202': { description: 'Accepted: created asynchronously, or already running with this id' },
    '409': { description: 'Every prediction slot is busy' },
    '422': {
      description: 'Validation Error',
      content: { 'application/json': { schema: { $ref: '#/components/schemas/HTTPValidationError' } } },
    },
    '503': { description: 'Setup has not finished, or the server is shutting down' },
  };
}
