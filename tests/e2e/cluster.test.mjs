// kefu as a cluster of real processes (two signaling nodes, two media nodes, on Redis,
// PostgreSQL and Ceph radosgw), driven through the real pages: the agent's workbench
// is served by one signaling node, the customer's invite page by the other. Media flows
// both ways through a media node, and the recording is ready and plays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launchBrowser, callStats, waitFor, artifacts, agentWithVideoService, signIn, api } from './lib/kefu.mjs';
import { engines, startCluster } from './lib/cluster.mjs';
import { startBalancer } from './lib/balancer.mjs';

const PASSWORD = 'agent password 1';
const shared = engines();

test('a call whose agent and customer use different signaling nodes works end to end in the browser', { skip: !shared && 'no Redis/PostgreSQL/S3 test servers' }, async () => {
  const cluster = await startCluster(shared);
  const [sig1, sig2] = cluster.signaling;
  const agent = await launchBrowser();
  const customer = await launchBrowser({ mobile: true });
  try {
    const adminToken = await agentWithVideoService(sig1, 'rita', PASSWORD);
    await signIn(agent.page, sig1.baseUrl, 'rita', PASSWORD);
    sig1.run('kefu-test-verify', ['rita', 'passed']);
    await agent.page.click('#video-call');
    await agent.page.waitForSelector('#invite:not([hidden])');
    const callId = await agent.page.evaluate(() => window.workbench.call.id);
    // The customer's link, opened on the other signaling node.
    const invite = new URL(await agent.page.inputValue('#invite-url'));
    await customer.page.goto(`${sig2.baseUrl}${invite.pathname}${invite.search}`);
    await customer.page.check('#agree');
    await customer.page.click('#accept');
    await customer.page.waitForSelector('#call:not([hidden])');

    // The workbench (node 1) learns the call connected from what happened on node 2.
    await agent.page.waitForSelector('#recording-notice:not([hidden])', { timeout: 20000 });
    await customer.page.click('#camera');
    const [a, c] = await waitFor('both sides to decode video', 30000, async () => {
      const s = [await callStats(agent.page), await callStats(customer.page)];
      return { done: s[0] && s[1] && s[0].videoFramesDecoded >= 30 && s[1].videoFramesDecoded >= 30, value: s };
    });
    assert.ok(a.audioPacketsReceived > 0 && c.audioPacketsReceived > 0, 'audio both ways');
    await agent.page.screenshot({ path: join(artifacts, 'cluster-workbench.png') });
    await customer.page.screenshot({ path: join(artifacts, 'cluster-customer.png') });

    await new Promise((r) => setTimeout(r, 4000));
    await customer.page.click('#hang-up');
    const rec = await waitFor('the recording to be ready', 60000, async () => {
      const r = await api(sig2.baseUrl, 'GET', `/recordings?call_id=${callId}`, adminToken);
      return { done: r.data[0] && r.data[0].state === 'ready', value: r.data[0] };
    });
    // Played through the other node than the one asked for the link.
    const link = await api(sig2.baseUrl, 'POST', `/recordings/${rec.id}/download`, adminToken);
    const res = await fetch(`${sig1.baseUrl}${link.data.url}`);
    assert.equal(res.status, 200);
    const file = join(artifacts, 'cluster-recording.mp4');
    writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', file]).toString());
    assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
    assert.ok(Math.abs(Number(probe.format.duration) * 1000 - rec.duration_ms) <= 500, `ffprobe ${probe.format.duration} s of ${rec.duration_ms} ms`);
    assert.ok(rec.duration_ms >= 4000, `${rec.duration_ms} ms recorded`);
    const errors = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    assert.equal(errors.trim(), '', 'the recording decodes without error');
  } finally {
    await agent.close();
    await customer.close();
    await cluster.stop();
  }
});

test('a signaling node stopped during a call (a rolling upgrade) hands the page over and the call goes on', { skip: !shared && 'no Redis/PostgreSQL/S3 test servers' }, async () => {
  const graceSecs = 3;
  const cluster = await startCluster(shared, { KEFU_SIGNALING__RECONNECT_GRACE_SECS: String(graceSecs) });
  const [sig1, sig2] = cluster.signaling;
  // The customer reaches kefu through a balancer that sends new connections to node 2
  // while it accepts them, else to node 1.
  const balancer = await startBalancer([sig2.baseUrl, sig1.baseUrl]);
  const agent = await launchBrowser();
  const customer = await launchBrowser({ mobile: true });
  try {
    const adminToken = await agentWithVideoService(sig1, 'sam', PASSWORD);
    await signIn(agent.page, sig1.baseUrl, 'sam', PASSWORD);
    sig1.run('kefu-test-verify', ['sam', 'passed']);
    await agent.page.click('#video-call');
    await agent.page.waitForSelector('#invite:not([hidden])');
    const callId = await agent.page.evaluate(() => window.workbench.call.id);
    const invite = new URL(await agent.page.inputValue('#invite-url'));
    await customer.page.goto(`${balancer.url}${invite.pathname}${invite.search}`);
    await customer.page.check('#agree');
    await customer.page.click('#accept');
    await customer.page.waitForSelector('#call:not([hidden])');
    await agent.page.waitForSelector('#recording-notice:not([hidden])', { timeout: 20000 });
    await customer.page.click('#camera');
    await waitFor('both sides to decode video', 30000, async () => {
      const s = [await callStats(agent.page), await callStats(customer.page)];
      return { done: s[0] && s[1] && s[0].videoFramesDecoded >= 30 && s[1].videoFramesDecoded >= 30, value: s };
    });

    await sig2.stop(); // SIGTERM, as a rolling upgrade stops a pod
    const log = await waitFor('the page to resume through node 1', 20000, async () => {
      const k = await customer.page.evaluate(() => ({ ws: window.kefu.wsLog, rejoined: window.kefu.rejoined, ended: window.kefu.ended }));
      const closed = k.ws.findIndex((e) => e.event === 'close' && e.code === 1012);
      return { done: closed >= 0 && k.ws.slice(closed).some((e) => e.event === 'open') && k.rejoined > 0, value: k };
    });
    assert.equal(log.ended, false, 'the page does not think the call ended');
    // Past the media node's grace for node 2's dropped connection, media still flows.
    await new Promise((r) => setTimeout(r, (graceSecs + 1) * 1000));
    const before = [await callStats(agent.page), await callStats(customer.page)];
    await new Promise((r) => setTimeout(r, 3000));
    const after = [await callStats(agent.page), await callStats(customer.page)];
    for (const i of [0, 1]) {
      const decoded = after[i].videoFramesDecoded - before[i].videoFramesDecoded;
      assert.ok(decoded >= 30, `${i ? 'customer' : 'agent'} decoded ${decoded} frames in 3 s after the hand-over`);
      assert.ok(after[i].audioPacketsReceived > before[i].audioPacketsReceived, 'audio goes on');
    }
    const call = await api(sig1.baseUrl, 'GET', `/calls/${callId}`, adminToken);
    assert.equal(call.data.state, 'connected', JSON.stringify(call.data));
    await customer.page.screenshot({ path: join(artifacts, 'cluster-handover-customer.png') });
    assert.equal(await customer.page.evaluate(() => window.kefu.ended), false);
  } finally {
    await agent.close();
    await customer.close();
    await balancer.close();
    await cluster.stop();
  }
});
