/** Plain-text formatting for the bench report. */

/** 157312.4 → "157.3k"; 7612 → "7.6k"; 1234567 → "1.23M". */
export function formatRate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)}M`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k`;
  return perSecond.toFixed(0);
}

/** 500000 → "500k", 12 → "12", 123456 → "123,456". */
export function formatCount(count: number): string {
  if (count >= 1000 && count % 1000 === 0) return `${count / 1000}k`;
  return count.toLocaleString('en-US');
}

/** Columns padded to their widest cell; the first column left-aligned, the rest right-aligned. */
export function renderTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => [...(row[column] ?? '')].length)));
  const line = (row: string[]): string => row.map((text, column) => {
    const width = widths[column] ?? 0;
    const pad = ' '.repeat(width - [...text].length);
    return column === 0 ? text + pad : pad + text;
  }).join('   ');
  const rule = widths.map((w) => '-'.repeat(w)).join('   ');
  return [line(header), rule, ...rows.map(line)].join('\n');
}
