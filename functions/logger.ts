import { Logger } from '@aws-lambda-powertools/logger';

/** JSON logs for every process; level from POWERTOOLS_LOG_LEVEL (tests set it to SILENT). */
export const logger = new Logger({ serviceName: 'framecast' });
