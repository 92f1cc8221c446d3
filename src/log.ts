/** One structured event: a name and its fields. */
export type Logger = (event: string, fields?: Record<string, unknown>) => void;

/** JSON lines, one object per event: easy to grep, easy to ship. */
export function jsonLogger(write: (line: string) => void): Logger {
  return (event, fields = {}) => write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);
}
