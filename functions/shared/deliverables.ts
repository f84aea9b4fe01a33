/**
 * What a production's config says of its deliverables (lib/config.ts): colour settings and the naming
 * template, with the runtime's own rules for them (core/colour.ts, core/naming.ts).
 */
export {
  ColourSpaceName,
  DEFAULT_COLOUR,
  DEFAULT_OCIO_CONFIG,
  EXR_COMPRESSIONS,
  OcioConfigPath,
  OUTPUT_FORMATS,
} from '../core/colour.ts';
export { DEFAULT_NAMING_TEMPLATE, NamingError, parseTemplate } from '../core/naming.ts';
export { PublisherSchema } from '../core/publish.ts';
