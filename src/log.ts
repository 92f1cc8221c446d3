/** One structured event: a name and its fields. */
export type Logger = (event: string, fields?: Record<string, unknown>) => void;

/** JSON lines, one object per event: easy to grep, easy to ship. */
export function jsonLogger(write: (line: string) => void): Logger {
  return (event, fields = {}) => write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);
}

/**
 * `write` once per turn of the event loop, with everything written during it: a burst
 * of requests is one write (one syscall, one wake-up of the reader), not one each, and
 * lines keep their order. What is pending when the process exits is written then
 * (`onExit`); a kill -9 or a signal without a handler loses at most one turn's lines.
 */
export function coalesced(
  write: (text: string) => void,
  onExit: (flush: () => void) => void = (flush) => process.on('exit', flush),
): (text: string) => void {
  let pending = '';
  const flush = () => {
    if (pending === '') return;
    const text = pending;
    pending = '';
    write(text);
  };
  onExit(flush);
  return (text) => {
    if (pending === '') setImmediate(flush);
    pending += text;
  };
}
