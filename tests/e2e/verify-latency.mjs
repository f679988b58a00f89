// Benchmark (make bench-verify): how soon after the challenge's last step a person sees
// the result, through the real phone page, the real engine and a real camera stream
// (photos filmed by a canvas), over loopback. Each round: the agent opens an attempt
// and a phone link over the API, a mobile page opens the link, follows the random
// challenge, and we time the switch to the last pose → the page saying passed.
// Prints p50/p95 and writes tests/e2e/artifacts/verification-latency-bench.json.
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import {
  startKefu, launchBrowser, artifacts, api, agentWithVideoService, installFakeCamera, enrollFace,
} from './lib/kefu.mjs';

const ROUNDS = Number(process.env.ROUNDS || 20);
const PASSWORD = 'agent password 1';

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const kefu = await startKefu();
const phone = await launchBrowser({ mobile: true });
const samples = [];
const answering = [];
try {
  const adminToken = await agentWithVideoService(kefu, 'bench', PASSWORD);
  await enrollFace(kefu, adminToken, 'bench');
  const login = await api(kefu.baseUrl, 'POST', '/auth/login', null, { login: 'bench', password: PASSWORD });
  const token = login.data.token;
  await installFakeCamera(phone.context);
  for (let i = 0; i < ROUNDS; i++) {
    const attempt = await api(kefu.baseUrl, 'POST', '/me/verification/attempts', token);
    if (attempt.status !== 201) throw new Error(`attempt: ${JSON.stringify(attempt)}`);
    const link = await api(kefu.baseUrl, 'POST', `/me/verification/attempts/${attempt.data.id}/phone-link`, token);
    const page = await phone.context.newPage();
    await page.goto(link.data.url);
    await page.evaluate(() => window.__fakeCamera.follow('#verify-prompt'));
    await page.click('#verify-start');
    await page.waitForFunction(() => ['passed', 'failed'].includes(document.getElementById('verify-prompt').dataset.state), null, { timeout: 30000 });
    const seen = await page.evaluate(() => {
      const cam = window.__fakeCamera;
      const f = cam.frames.find((x) => x.state === 'passed');
      return {
        state: document.getElementById('verify-prompt').dataset.state,
        ms: cam.passedAt - cam.lastStepAt,
        answering: f ? f.answered - f.sent : null,
      };
    });
    if (seen.state !== 'passed') throw new Error(`round ${i}: ${JSON.stringify(seen)}`);
    samples.push(Math.round(seen.ms));
    if (seen.answering !== null) answering.push(Math.round(seen.answering));
    await page.close();
  }
} finally {
  await phone.close();
  await kefu.stop();
}
const sorted = [...samples].sort((a, b) => a - b);
const sortedAnswer = [...answering].sort((a, b) => a - b);
const result = {
  rounds: samples.length,
  last_step_to_passed_ms: { p50: percentile(sorted, 50), p95: percentile(sorted, 95), max: sorted[sorted.length - 1] },
  answering_frame_round_trip_ms: { p50: percentile(sortedAnswer, 50), p95: percentile(sortedAnswer, 95) },
  samples_ms: samples,
};
writeFileSync(join(artifacts, 'verification-latency-bench.json'), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify(result));
