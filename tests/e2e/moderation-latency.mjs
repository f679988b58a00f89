// Benchmark (make bench-moderation): how soon after the first offending frame reaches
// the other party's <video> it turns black, through the real pages. The test-only
// marker classifier stands in for open_nsfw (nothing offending is shipped to test
// with), slowed to open_nsfw's own cost per sample (40 ms, BENCHMARKS.md), so the
// figures include a real inference's time. Three cases, ROUNDS calls each:
// - customer: the customer's camera comes on showing the marker (warm-up sampling);
// - agent_warmup: the agent shows it 3 s into the call (warm-up sampling, 1/s);
// - agent_steady: the agent shows it 12 s into the call (steady sampling, every 2 s).
// Prints p50/p95 and writes tests/e2e/artifacts/moderation-latency-bench.json.
import { join } from 'node:path';
import { writeFileSync, mkdirSync } from 'node:fs';
import { startKefu, artifacts, recordedVideoCall } from './lib/kefu.mjs';
import { markedBrowsers, watchRemote, blurLatency } from './lib/moderation.mjs';

const ROUNDS = Number(process.env.ROUNDS || 6);
const PASSWORD = 'agent password 1';

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const kefu = await startKefu({
  KEFU_MODERATION__CLASSIFIER: 'test_marker_colour',
  KEFU_MODERATION__TEST_CLASSIFIER_DELAY_MS: '40',
  // Every call signs an admin and an agent in: more than a person's login rate.
  KEFU_AUTH__LOGIN_ATTEMPTS_PER_MINUTE: '1000',
});
const results = { customer: [], agent_warmup: [], agent_steady: [] };
let n = 0;
try {
  for (let i = 0; i < ROUNDS; i++) {
    for (const name of Object.keys(results)) {
      const { agent, customer } = await markedBrowsers();
      try {
        await recordedVideoCall(kefu, agent, customer, `lat${n++}`, PASSWORD);
        if (name === 'customer') {
          await watchRemote(agent.page);
          await customer.page.evaluate(() => { window.__markerCamera.marker = true; });
          await customer.page.click('#camera');
          results[name].push(await blurLatency(agent.page));
        } else {
          await new Promise((ok) => setTimeout(ok, name === 'agent_steady' ? 12000 : 3000));
          await watchRemote(customer.page);
          await agent.page.evaluate(() => { window.__markerCamera.marker = true; });
          results[name].push(await blurLatency(customer.page));
        }
      } finally {
        await agent.close();
        await customer.close();
      }
    }
  }
} finally {
  await kefu.stop();
}
const summary = {};
for (const [name, values] of Object.entries(results)) {
  const sorted = [...values].sort((a, b) => a - b);
  summary[name] = {
    runs: sorted.length,
    p50_ms: Math.round(percentile(sorted, 50)),
    p95_ms: Math.round(percentile(sorted, 95)),
    max_ms: Math.round(sorted[sorted.length - 1]),
    all_ms: sorted.map(Math.round),
  };
  console.log(`moderation blur latency, ${name}: p50 ${summary[name].p50_ms} ms, p95 ${summary[name].p95_ms} ms, max ${summary[name].max_ms} ms over ${sorted.length} calls`);
}
mkdirSync(artifacts, { recursive: true });
writeFileSync(join(artifacts, 'moderation-latency-bench.json'), JSON.stringify(summary, null, 2));
