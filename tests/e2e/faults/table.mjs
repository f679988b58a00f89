// Prints the fault suite's figures (JSON lines from TEST_FAULT_FIGURES) as the
// Markdown table docs/reliability.md holds. Usage: node table.mjs FIGURES.jsonl
import { readFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node tests/e2e/faults/table.mjs FIGURES.jsonl');
  process.exit(2);
}
const rows = readFileSync(file, 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l));
const secs = (s) => (typeof s === 'number' ? s.toFixed(2) : '?');
console.log('| fault | calls | dropped | recordings | lost | media lost (s) | recover (s) | notes |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.fault} | ${r.calls} | ${r.calls_dropped} | ${r.recordings} | ${r.recordings_lost} | ${secs(r.media_lost_secs)} | ${secs(r.recover_secs)} | ${r.note || ''} |`,
  );
}
console.log(`\n${rows.length} faults`);
