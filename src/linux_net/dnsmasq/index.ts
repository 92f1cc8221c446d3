/**
 * dnsmasq, one per network: what its callers use. config.ts builds its command line
 * and files, process.ts reads /proc, state.ts keeps what it holds, files.ts writes
 * atomically, driver.ts puts them together. Nothing in this folder imports this file.
 */
export {
  dnsmasqArgs, hostLine, hostsFile, networkFiles, optsFile,
  type DhcpHost, type DhcpNetwork, type DnsmasqOptions, type NetworkFiles,
} from './config.js';
export { DnsmasqDriver, RELOAD_DELAY_MS, type DnsmasqAction } from './driver.js';
export { runningPid } from './process.js';
export { loadedRecord } from './state.js';
