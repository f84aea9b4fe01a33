/** The colour settings a production's config names (lib/config.ts), as the runtime reads them (core/colour.ts). */
export {
  ColourSpaceName,
  DEFAULT_COLOUR,
  DEFAULT_OCIO_CONFIG,
  EXR_COMPRESSIONS,
  OcioConfigPath,
  OUTPUT_FORMATS,
} from '../core/colour.ts';
