// Benchmark (not a test): time from a customer's tap on the service page to the ring
// in an agent's workbench, over ROUNDS requests. Run against any kefu build:
//   KEFU_BIN=path/to/kefu ./deploy/netns-run.sh node tests/e2e/ring-latency.mjs
// Results go to BENCHMARKS.md.
import { startKefu, launchBrowser, agentWithVideoService, signIn } from './lib/kefu.mjs';

const ROUNDS = Number(process.env.ROUNDS || 20);
const PASSWORD = 'agent password 1';

// Every round is a service request from one address: lift the per-address limit.
const kefu = await startKefu({ KEFU_AUTH__LOGIN_ATTEMPTS_PER_MINUTE: '1000' });
const agent = await launchBrowser();
const customer = await launchBrowser({ mobile: true });
const times = [];
try {
  await agentWithVideoService(kefu, 'gina', PASSWORD);
  kefu.run('kefu', ['admin', 'create-group', '--enterprise', '10000', '--name', '售后']);
  kefu.run('kefu', ['admin', 'add-to-group', '--login', 'gina', '--group', '售后']);
  await signIn(agent.page, kefu.baseUrl, 'gina', PASSWORD);
  await agent.page.check('#accepting');
  for (let i = 0; i < ROUNDS; i++) {
    await customer.page.goto(`${kefu.baseUrl}/service/10000`);
    await customer.page.check('#agree');
    await customer.page.waitForSelector('#video-request:not([disabled])');
    // Spread the taps over the polling period of builds that poll.
    await new Promise((r) => setTimeout(r, 137 * (i % 8)));
    const t0 = Date.now();
    await customer.page.click('#video-request');
    await agent.page.waitForSelector('#incoming:not([hidden])', { timeout: 10000, polling: 'raf' });
    times.push(Date.now() - t0);
    await customer.page.click('#cancel-request');
    await agent.page.waitForSelector('#incoming', { state: 'hidden', timeout: 10000 });
  }
} finally {
  await agent.close();
  await customer.close();
  await kefu.stop();
}
times.sort((a, b) => a - b);
const pct = (p) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))];
const mean = Math.round(times.reduce((a, b) => a + b, 0) / times.length);
console.log(`request → ring, ${times.length} rounds: mean ${mean} ms, p50 ${pct(50)} ms, p95 ${pct(95)} ms, max ${times.at(-1)} ms`);
