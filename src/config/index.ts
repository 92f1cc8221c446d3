export { DEFAULT_CONFIG_FILE, envName, loadConfig } from './load.js';
export type { Config, Mode, OptionName } from './options.js';
export { MODES, OPTIONS } from './options.js';
