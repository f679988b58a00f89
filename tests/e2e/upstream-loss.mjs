// What the agent sees of a customer whose uplink loses packets (`make bench-upstream-loss`):
// both demo pages through the impairment relay, the customer's flow at AB_LOSS loss
// (default 5 %) and 100 ms RTT, then AB_ROUNDS windows of 20 s. Per window: the
// agent's received video bitrate, Chromium's freeze count and time, how long its
// jitter buffers held a video frame and an audio sample, and its NACKs and PLIs.
// KEFU_BIN compares another build.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startKefuBehindRelay, launchBrowser, callStats, waitFor, artifacts, repoRoot } from './lib/kefu.mjs';

const LOSS = Number(process.env.AB_LOSS || 0.05);
const ROUNDS = Number(process.env.AB_ROUNDS || 3);
const WINDOW_MS = 20000;

const camera = join(artifacts, 'camera-480p30.y4m');
execFileSync('ffmpeg', ['-v', 'error', '-y', '-loop', '1', '-i', join(repoRoot, 'test-data/astronaut.png'),
  '-vf', 'scale=640:480,noise=alls=10:allf=t', '-t', '3', '-r', '30', '-pix_fmt', 'yuv420p', camera]);

/** The received video's jitter-buffer totals and feedback counters, and the audio's
 * jitter-buffer totals (lip sync delays audio to match the video). */
const videoIn = (page) => page.evaluate(async () => {
  const out = {};
  (await window.kefu.pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      Object.assign(out, { delay: s.jitterBufferDelay, emitted: s.jitterBufferEmittedCount, nacks: s.nackCount, plis: s.pliCount });
    }
    if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      Object.assign(out, { audioDelay: s.jitterBufferDelay, audioEmitted: s.jitterBufferEmittedCount });
    }
  });
  return out;
});

const { kefu, relay } = await startKefuBehindRelay();
const fake = [`--use-file-for-fake-video-capture=${camera}`];
const agent = await launchBrowser({ extraArgs: fake });
const customer = await launchBrowser({ mobile: true, extraArgs: fake });
try {
  await agent.page.goto(kefu.agentUrl);
  await customer.page.goto(kefu.customerUrl);
  const c = await waitFor('both sides to decode video', 30000, async () => {
    const s = [await callStats(agent.page), await callStats(customer.page)];
    return { done: s[0] && s[1] && s[0].videoFramesDecoded >= 30 && s[1].videoFramesDecoded >= 30, value: s[1] };
  });
  await relay.cmd(`set ${c.localPort} delay_ms=50 loss=${LOSS}`);
  await new Promise((r) => setTimeout(r, 3000));
  console.log(`kefu ${process.env.KEFU_BIN || '(this build)'}, customer uplink loss ${LOSS * 100} %, RTT 100 ms`);
  for (let i = 0; i < ROUNDS; i++) {
    const [a0, v0] = [await callStats(agent.page), await videoIn(agent.page)];
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const [a1, v1] = [await callStats(agent.page), await videoIn(agent.page)];
    const secs = (a1.at - a0.at) / 1000;
    const kbps = ((a1.videoBytesReceived - a0.videoBytesReceived) * 8) / secs / 1000;
    const heldMs = (1000 * (v1.delay - v0.delay)) / Math.max(v1.emitted - v0.emitted, 1);
    const audioMs = (1000 * (v1.audioDelay - v0.audioDelay)) / Math.max(v1.audioEmitted - v0.audioEmitted, 1);
    console.log(`window ${i + 1}: agent receives ${kbps.toFixed(0)} kbit/s, ${a1.freezeCount - a0.freezeCount} freezes `
      + `(${(a1.totalFreezesDuration - a0.totalFreezesDuration).toFixed(2)} s in ${secs.toFixed(1)} s), jitter buffer `
      + `${heldMs.toFixed(0)} ms a frame (audio ${audioMs.toFixed(0)} ms), ${v1.nacks - v0.nacks} NACKs, ${v1.plis - v0.plis} PLIs`);
  }
} finally {
  await agent.close();
  await customer.close();
  await kefu.stop();
}
