// Calls over bad networks, made in user space: every datagram between the browsers
// and the SFU goes through the impairment relay (kefu advertises its port), which
// impairs only the customer's flow. Freeze and concealment figures are Chromium's own
// getStats; each test prints what it measured.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startKefuBehindRelay, launchBrowser, callStats, waitFor, artifacts, repoRoot } from './lib/kefu.mjs';

/** A camera-like 640×480 30 fps clip (a face photo with sensor noise): it costs real bitrate. */
function camera() {
  const path = join(artifacts, 'camera-480p30.y4m');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-loop', '1', '-i', join(repoRoot, 'test-data/astronaut.png'),
    '-vf', 'scale=640:480,noise=alls=10:allf=t', '-t', '3', '-r', '30', '-pix_fmt', 'yuv420p', path]);
  return path;
}

/** Both demo pages in a call through the relay; returns them and the customer's flow port. */
async function callThroughRelay() {
  const { kefu, relay } = await startKefuBehindRelay();
  const fakeCamera = [`--use-file-for-fake-video-capture=${camera()}`];
  const agent = await launchBrowser({ extraArgs: fakeCamera });
  const customer = await launchBrowser({ mobile: true, extraArgs: fakeCamera });
  await agent.page.goto(kefu.agentUrl);
  await customer.page.goto(kefu.customerUrl);
  const [a, c] = await waitFor('both sides to decode video through the relay', 30000, async () => {
    const s = [await callStats(agent.page), await callStats(customer.page)];
    return { done: s[0] && s[1] && s[0].videoFramesDecoded >= 30 && s[1].videoFramesDecoded >= 30, value: s };
  });
  assert.equal(c.remotePort, relay.port, 'the customer reaches the SFU through the relay');
  assert.equal(a.remotePort, relay.port, 'the agent too');
  return {
    kefu, relay, agent, customer, customerFlow: c.localPort,
    async close() {
      await agent.close();
      await customer.close();
      await kefu.stop();
    },
  };
}

/** What a page received over `ms`: rates and deltas from two getStats snapshots. */
async function window(page, ms) {
  const a = await callStats(page);
  await new Promise((r) => setTimeout(r, ms));
  const b = await callStats(page);
  const secs = (b.at - a.at) / 1000;
  const samples = b.audioSamplesReceived - a.audioSamplesReceived;
  return {
    fps: (b.videoFramesDecoded - a.videoFramesDecoded) / secs,
    videoKbps: ((b.videoBytesReceived - a.videoBytesReceived) * 8) / secs / 1000,
    freezes: b.freezeCount - a.freezeCount,
    freezeSecs: b.totalFreezesDuration - a.totalFreezesDuration,
    audioPackets: b.audioPacketsReceived - a.audioPacketsReceived,
    audioLost: b.audioPacketsLost - a.audioPacketsLost,
    concealed: samples > 0 ? (b.audioConcealedSamples - a.audioConcealedSamples) / samples : 1,
    secs,
  };
}

const fmt = (w) => JSON.stringify(w, (k, v) => (typeof v === 'number' ? Math.round(v * 1000) / 1000 : v));

test('5 % loss and 100 ms RTT: both sides still decode ≥ 20 fps with short freezes', async () => {
  const call = await callThroughRelay();
  try {
    await call.relay.cmd(`set ${call.customerFlow} delay_ms=50 loss=0.05`);
    await new Promise((r) => setTimeout(r, 3000)); // NACK/RTX and jitter buffers settle
    // 20 s, not 10: a freeze here is a lost retransmission (a few per 10 s), so a short
    // window's total swings by ±50 % from run to run around the same mean.
    const [down, up] = await Promise.all([window(call.customer.page, 20000), window(call.agent.page, 20000)]);
    const stats = JSON.parse(await call.relay.cmd('stats')).find((f) => f.upstream_port === call.customerFlow || f.peer_port === call.customerFlow);
    console.log(`5 % loss, 100 ms RTT — customer receives ${fmt(down)}; agent receives ${fmt(up)}; relay ${JSON.stringify(stats)}`);
    assert.ok(stats.down_out < stats.down_in * 0.98, 'the relay really dropped packets');
    for (const [who, w] of [['customer', down], ['agent', up]]) {
      assert.ok(w.fps >= 20, `${who} decodes ${w.fps.toFixed(1)} fps`);
      // Short freezes: each under 0.6 s on average, under 15 % of the time in all.
      const freezeNote = `${who} froze ${w.freezeSecs.toFixed(2)} s in ${w.secs.toFixed(1)} s (${w.freezes} freezes)`;
      assert.ok(w.freezeSecs <= 0.15 * w.secs, freezeNote);
      assert.ok(w.freezeSecs / Math.max(w.freezes, 1) <= 0.6, freezeNote);
      assert.ok(w.concealed < 0.1, `${who}'s audio concealed ${(w.concealed * 100).toFixed(1)} %`);
    }
  } finally {
    await call.close();
  }
});

test('a 300 kbit/s bottleneck: video bitrate comes down, audio stays continuous', async () => {
  const call = await callThroughRelay();
  try {
    const before = await window(call.customer.page, 3000);
    await call.relay.cmd(`set ${call.customerFlow} kbps=300 queue_ms=200`);
    await new Promise((r) => setTimeout(r, 10000)); // the estimate and the encoders adapt
    const during = await window(call.customer.page, 10000);
    console.log(`300 kbit/s — customer receives before ${fmt(before)}; during ${fmt(during)}`);
    assert.ok(before.videoKbps > 500, `unimpaired video runs above the bottleneck first: ${before.videoKbps.toFixed(0)} kbit/s`);
    assert.ok(during.videoKbps < 300, `video fits under the bottleneck: ${during.videoKbps.toFixed(0)} kbit/s`);
    assert.ok(during.fps > 0, 'video still plays');
    assert.ok(during.audioPackets >= 40 * during.secs, `audio keeps coming: ${during.audioPackets} packets in ${during.secs.toFixed(1)} s`);
    assert.ok(during.concealed < 0.05, `audio concealed ${(during.concealed * 100).toFixed(1)} %`);
  } finally {
    await call.close();
  }
});

test('a network that blocks UDP: the call runs over ICE-TCP to the SFU', async () => {
  const { kefu, relay } = await startKefuBehindRelay();
  // Every UDP datagram to the SFU's advertised port is lost, from the first one on.
  await relay.cmd('set all loss=1');
  const agent = await launchBrowser();
  const customer = await launchBrowser({ mobile: true });
  try {
    assert.ok(kefu.mediaTcpPort > 0, 'kefu listens for ICE-TCP');
    await agent.page.goto(kefu.agentUrl);
    await customer.page.goto(kefu.customerUrl);
    for (const [who, page] of [['agent', agent.page], ['customer', customer.page]]) {
      const s = await waitFor(`the ${who} to decode video over TCP`, 30000, async () => {
        const st = await callStats(page);
        return { done: st && st.videoFramesDecoded >= 30 && st.audioPacketsReceived > 0, value: st };
      });
      assert.equal(s.localProtocol, 'tcp', `${who}: ${JSON.stringify(s)}`);
      assert.equal(s.remotePort, kefu.mediaTcpPort, `${who} talks to the SFU's TCP port`);
    }
  } finally {
    await agent.close();
    await customer.close();
    await kefu.stop();
  }
});
