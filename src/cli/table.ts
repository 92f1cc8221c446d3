/** nova-manage's listings: left-aligned columns separated by two spaces, header first. */
export function formatTable(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = rows.map((row) => row.map((cell) => (cell === null || cell === undefined || cell === '' ? 'None' : String(cell))));
  const widths = headers.map((header, column) => Math.max(header.length, ...cells.map((row) => row[column]?.length ?? 0)));
  const line = (values: string[]) =>
    values
      .map((value, column) => value.padEnd(widths[column]!))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...cells.map(line)].join('\n')}\n`;
}

/** A time in a listing: seconds are enough, and ISO reads the same everywhere. */
export const shortTime = (date: Date | null): string | null => (date === null ? null : date.toISOString().replace(/\.\d{3}Z$/, 'Z'));
