/** Human-readable output: one block per scenario variant and the cross-target comparison. */
import type { Scenario, ScenarioResult } from './scenario.ts';

export function block(title: string, rows: [string, string][]): string {
  const width = Math.max(...rows.map(([label]) => label.length));
  const lines = rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`);
  return `\n${title}\n${'─'.repeat(Math.max(title.length, 20))}\n${lines.join('\n')}\n`;
}

/** A table with a header row; columns are left-aligned, numbers right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => i > 0 && rows.every((r) => /^[-\d.,%× ]*$/.test(r[i] ?? '')));
  const line = (cells: string[]) =>
    cells.map((c, i) => (numeric[i] ? (c ?? '').padStart(widths[i]) : (c ?? '').padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * One table per scenario variant, a row per target, the scenario's headline columns.
 * `extra` adds columns computed across results (the relay fraction).
 */
export function comparison(
  results: ScenarioResult[],
  scenarios: Record<string, Scenario>,
  extra: (result: ScenarioResult) => Record<string, string> = () => ({}),
): string {
  const groups = new Map<string, ScenarioResult[]>();
  for (const r of results) {
    const key = `${r.scenario} / ${r.variant}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const out: string[] = [];
  for (const [key, group] of groups) {
    const scenario = scenarios[group[0].scenario];
    const heads = group.map((r): Record<string, string> => ('error' in r.figures ? { error: String(r.figures.error) }
      : 'skipped' in r.figures ? { skipped: String(r.figures.skipped) }
        : { ...scenario.headline(r.figures), ...extra(r) }));
    const columns = [...new Set(heads.flatMap((h) => Object.keys(h)))];
    out.push(`\n${key}\n${table(['target', ...columns], group.map((r, i) => [r.target, ...columns.map((c) => heads[i][c] ?? '-')]))}`);
  }
  return out.join('\n');
}
