// Fault suite (make test-faults): kefu killed with SIGKILL while calls are in progress,
// through the real pages in Chromium. Each test leaves its figures (calls dropped,
// recordings lost, media lost, time to recover) as one JSON line in TEST_FAULT_FIGURES
// (when set) and on the console, then asserts the goals: no recording lost, at most
// 2 s of media lost from any one recording.
//
// Not named *.test.mjs, so the browser suite (`node --test tests/e2e/`) leaves it out;
// run it by name: node --test --test-concurrency=1 tests/e2e/faults/*.fault.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  startKefu, launchBrowser, waitFor, artifacts, api, recordedVideoCall, callStats, agentWithVideoService, signIn,
} from '../lib/kefu.mjs';
import { engines, startCluster } from '../lib/cluster.mjs';
import { startBalancer } from '../lib/balancer.mjs';

const PASSWORD = 'agent password 1';
const GOAL_MEDIA_LOST_SECS = 2.0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Prints one fault's figures and appends them to TEST_FAULT_FIGURES when set. */
function recordFigures(f) {
  const line = JSON.stringify({
    fault: f.fault,
    calls: f.calls,
    calls_dropped: f.calls_dropped,
    recordings: f.recordings,
    recordings_lost: f.recordings_lost,
    media_lost_secs: Math.round(f.media_lost_secs * 1000) / 1000,
    recover_secs: Math.round(f.recover_secs * 1000) / 1000,
    note: f.note,
  });
  console.log(`fault figures: ${line}`);
  if (process.env.TEST_FAULT_FIGURES) appendFileSync(process.env.TEST_FAULT_FIGURES, line + '\n');
}

function ffprobe(file, args) {
  return JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-print_format', 'json', ...args, file], { stdio: ['ignore', 'pipe', 'pipe'] }).toString());
}

/**
 * What a player finds in `file`: { durationSecs, longestVideoGapSecs, videoPackets },
 * or throws when it is not a video recording with sound and a duration.
 */
function timeline(file) {
  const probe = ffprobe(file, ['-show_format', '-show_streams']);
  const kinds = probe.streams.map((s) => s.codec_type);
  if (!kinds.includes('video') || !kinds.includes('audio')) throw new Error(`streams ${JSON.stringify(kinds)}: not a video recording with sound`);
  const durationSecs = Number(probe.format.duration);
  if (!Number.isFinite(durationSecs)) throw new Error(`no duration: ${JSON.stringify(probe.format)}`);
  const times = ffprobe(file, ['-select_streams', 'v:0', '-show_entries', 'packet=pts_time']).packets
    .map((p) => Number(p.pts_time)).filter(Number.isFinite).sort((a, b) => a - b);
  let longestVideoGapSecs = 0;
  for (let i = 1; i < times.length; i++) longestVideoGapSecs = Math.max(longestVideoGapSecs, times[i] - times[i - 1]);
  return { durationSecs, longestVideoGapSecs, videoPackets: times.length };
}

/**
 * `callId`'s recording once it is ready or failed (waiting at most `ms`), downloaded
 * through the product's link from `baseUrl` and read by ffprobe. `callSecs` is how long
 * the call was connected with media captured. Resolves with { state, lost, mediaLostSecs,
 * timeline, why, rec }.
 */
async function settleRecording(baseUrl, token, callId, callSecs, ms, fileName) {
  const end = Date.now() + ms;
  let rec;
  for (;;) {
    const r = await api(baseUrl, 'GET', `/recordings?call_id=${callId}`, token);
    rec = Array.isArray(r.data) ? r.data[0] : undefined;
    if ((rec && (rec.state === 'ready' || rec.state === 'failed')) || Date.now() >= end) break;
    await sleep(500);
  }
  const out = { state: rec ? rec.state : 'missing', rec, timeline: null, why: '' };
  if (out.state === 'ready') {
    try {
      const link = await api(baseUrl, 'POST', `/recordings/${rec.id}/download`, token);
      if (link.status !== 200) throw new Error(`download link: ${link.status} ${JSON.stringify(link.data)}`);
      const res = await fetch(`${baseUrl}${link.data.url}`);
      if (res.status !== 200) throw new Error(`download: ${res.status}`);
      const file = join(artifacts, fileName);
      writeFileSync(file, Buffer.from(await res.arrayBuffer()));
      out.timeline = timeline(file);
    } catch (e) {
      out.why = String(e && e.message ? e.message : e);
    }
  } else if (rec) {
    out.why = `${rec.failure_kind} ${rec.failure_reason}`;
  }
  out.lost = out.state !== 'ready' || !out.timeline;
  out.mediaLostSecs = out.timeline
    ? Math.max(callSecs - out.timeline.durationSecs, out.timeline.longestVideoGapSecs, 0)
    : callSecs;
  return out;
}

test('kill -9 of a single-process kefu mid-call: the recording is recovered at the next start', async () => {
  const first = await startKefu();
  const dataDir = first.env.KEFU_DATA_DIR;
  const agent = await launchBrowser();
  const customer = await launchBrowser({ mobile: true });
  let second;
  try {
    const { callId, agentToken } = await recordedVideoCall(first, agent, customer, 'kim', PASSWORD);
    await sleep(8000);
    const call = await api(first.baseUrl, 'GET', `/calls/${callId}`, agentToken);
    assert.equal(call.data.state, 'connected');

    const exited = new Promise((ok) => first.child.on('exit', ok));
    first.child.kill('SIGKILL');
    const killedAt = Date.now();
    await exited;
    // Media was captured until the kill: the call's ended_at is only set at the restart.
    const callSecs = (killedAt - call.data.connected_at) / 1000;

    second = await startKefu({ KEFU_DATA_DIR: dataDir });
    const up = `${second.baseUrl}/healthz`;
    await waitFor('the restarted kefu to answer', 20000, async () => {
      const r = await fetch(up).catch(() => null);
      return { done: r && r.status === 200, value: r && r.status };
    });
    const recoverSecs = (Date.now() - killedAt) / 1000;

    const admin = await api(second.baseUrl, 'POST', '/auth/login', null, { login: 'admin', password: first.adminPassword });
    assert.equal(admin.status, 200);
    const ended = await api(second.baseUrl, 'GET', `/calls/${callId}`, admin.data.token);
    const outcome = await settleRecording(second.baseUrl, admin.data.token, callId, callSecs, 60000, 'fault-kill-single.mp4');
    const t = outcome.timeline;
    recordFigures({
      fault: 'kill -9 single-process kefu',
      calls: 1,
      calls_dropped: ended.data.state === 'ended' ? 1 : 0,
      recordings: 1,
      recordings_lost: outcome.lost ? 1 : 0,
      media_lost_secs: outcome.mediaLostSecs,
      recover_secs: recoverSecs,
      note: 'a killed single process necessarily ends its calls (ended at the next start, '
        + `reason ${ended.data.end_reason}); recovery = kill until the restarted process answers /healthz; `
        + `recording ${outcome.state}${t ? `, ${t.durationSecs.toFixed(2)} s of ${callSecs.toFixed(2)} s captured, longest video gap ${t.longestVideoGapSecs.toFixed(3)} s` : ''}`
        + (outcome.why ? `; ${outcome.why}` : ''),
    });

    // The call did not survive the crash: ended at the start, by the system.
    assert.equal(ended.data.state, 'ended');
    assert.equal(ended.data.end_reason, 'system_restart');
    assert.equal(outcome.lost, false, `recording lost: ${outcome.state} ${outcome.why}`);
    assert.ok(outcome.mediaLostSecs <= GOAL_MEDIA_LOST_SECS,
      `${outcome.mediaLostSecs.toFixed(3)} s of media lost (goal ≤ ${GOAL_MEDIA_LOST_SECS} s)`);
  } finally {
    await agent.close();
    await customer.close();
    // Killed already unless the test failed before: never leave it running.
    first.child.kill('SIGKILL');
    if (second) await second.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

const shared = engines();

test('kill -9 of a signaling node mid-call: the page reconnects through the other node and the call goes on', { skip: !shared && 'no Redis/PostgreSQL/S3 test servers' }, async () => {
  const graceSecs = 3;
  const cluster = await startCluster(shared, { KEFU_SIGNALING__RECONNECT_GRACE_SECS: String(graceSecs) });
  const [sig1, sig2] = cluster.signaling;
  let balancer;
  let agent;
  let customer;
  try {
    // The customer reaches kefu through a balancer that sends new connections to node 2
    // while it accepts them, else to node 1; the agent's workbench is on node 1.
    balancer = await startBalancer([sig2.baseUrl, sig1.baseUrl]);
    agent = await launchBrowser();
    customer = await launchBrowser({ mobile: true });
    const pages = { agent: agent.page, customer: customer.page };
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
    await sleep(3000);

    // SIGKILL: the node's sockets go without a close frame, its heartbeat stops. Each
    // page notes when it re-joins (kefu.rejoined catches up with kefu.reconnects on
    // the server's `joined`), on the clock this process reads too.
    const logLen = {};
    for (const [who, p] of Object.entries(pages)) {
      logLen[who] = await p.evaluate(() => {
        let value = window.kefu.rejoined;
        Object.defineProperty(window.kefu, 'rejoined', {
          configurable: true,
          get: () => value,
          set: (v) => {
            if (v !== value) window.kefu.rejoinedAt = Date.now();
            value = v;
          },
        });
        return window.kefu.wsLog.length;
      });
    }
    sig2.kill();
    const killedAt = Date.now();

    // A page is back when every WebSocket of it that dropped since the kill has been
    // opened again and re-joined; the agent's page, on node 1, keeps its WebSocket.
    const logs = await waitFor('both pages to be reconnected', 20000, async () => {
      const k = {};
      for (const [who, p] of Object.entries(pages)) {
        k[who] = await p.evaluate((from) => ({
          ws: window.kefu.wsLog.slice(from), reconnects: window.kefu.reconnects, rejoined: window.kefu.rejoined,
          rejoinedAt: window.kefu.rejoinedAt || null, lostAt: window.kefu.lostAt, ended: window.kefu.ended,
        }), logLen[who]);
        const dropped = k[who].ws.some((e) => e.event === 'close');
        k[who].back = (!dropped && who === 'agent')
          || (dropped && k[who].lostAt === null && k[who].rejoined === k[who].reconnects && k[who].rejoinedAt > killedAt);
      }
      return { done: k.agent.back && k.customer.back, value: k };
    });
    const backAt = Object.values(logs).map((k) => (k.ws.some((e) => e.event === 'close') ? k.rejoinedAt : killedAt));
    const recoverSecs = (Math.max(...backAt) - killedAt) / 1000;
    const customerClose = logs.customer.ws.find((e) => e.event === 'close');
    assert.equal(customerClose.code, 1006, `the customer's WebSocket closed with ${customerClose.code}`);
    assert.equal(logs.customer.ended, false, 'the page does not think the call ended');
    assert.equal(logs.agent.ended, false, 'the workbench does not think the call ended');

    // Past the media node's grace for node 2's dropped connection, media still flows.
    await sleep((graceSecs + 1) * 1000);
    const before = [await callStats(agent.page), await callStats(customer.page)];
    await sleep(3000);
    const after = [await callStats(agent.page), await callStats(customer.page)];
    const decoded = [0, 1].map((i) => after[i].videoFramesDecoded - before[i].videoFramesDecoded);
    const audio = [0, 1].map((i) => after[i].audioPacketsReceived - before[i].audioPacketsReceived);
    const during = await api(sig1.baseUrl, 'GET', `/calls/${callId}`, adminToken);
    const stillConnected = during.data.state === 'connected';
    const pagesEnded = await Promise.all(Object.values(pages).map((p) => p.evaluate(() => window.kefu.ended)));
    await customer.page.screenshot({ path: join(artifacts, 'fault-kill-signaling-customer.png') });

    // Hang up on the surviving node, then read the recording as an admin and a player would.
    await sleep(2000);
    if (stillConnected) await customer.page.click('#hang-up');
    const ended = await waitFor('the call to end', 20000, async () => {
      const r = await api(sig1.baseUrl, 'GET', `/calls/${callId}`, adminToken);
      return { done: r.data.state === 'ended', value: r.data };
    });
    const callSecs = (ended.ended_at - ended.connected_at) / 1000;
    const outcome = await settleRecording(sig1.baseUrl, adminToken, callId, callSecs, 60000, 'fault-kill-signaling.mp4');
    const t = outcome.timeline;
    recordFigures({
      fault: 'kill -9 signaling node',
      calls: 1,
      calls_dropped: stillConnected && !pagesEnded.includes(true) ? 0 : 1,
      recordings: 1,
      recordings_lost: outcome.lost ? 1 : 0,
      media_lost_secs: outcome.mediaLostSecs,
      recover_secs: recoverSecs,
      note: `customer's WebSocket via the killed node closed ${customerClose.code} and re-joined through node 1 `
        + `(recovery = kill until both pages are re-joined; the agent's page on node 1 kept its WebSocket); `
        + `decoded ${decoded[0]}/${decoded[1]} video frames (agent/customer) in 3 s past the ${graceSecs} s grace; `
        + `call ${ended.end_reason ? `ended ${ended.end_reason} by ${ended.ended_by}` : 'ended'}; `
        + `recording ${outcome.state}${t ? `, ${t.durationSecs.toFixed(2)} s of ${callSecs.toFixed(2)} s connected, longest video gap ${t.longestVideoGapSecs.toFixed(3)} s` : ''}`
        + (outcome.why ? `; ${outcome.why}` : ''),
    });

    assert.ok(stillConnected, `the call is still connected after the kill: ${JSON.stringify(during.data)}`);
    assert.deepEqual(pagesEnded, [false, false], 'no page thinks the call ended');
    for (const i of [0, 1]) {
      const who = i ? 'customer' : 'agent';
      assert.ok(decoded[i] >= 30, `${who} decoded ${decoded[i]} frames in 3 s past the grace`);
      assert.ok(audio[i] > 0, `${who}'s audio goes on`);
    }
    assert.equal(outcome.lost, false, `recording lost: ${outcome.state} ${outcome.why}`);
    assert.ok(outcome.mediaLostSecs <= GOAL_MEDIA_LOST_SECS,
      `${outcome.mediaLostSecs.toFixed(3)} s of media lost (goal ≤ ${GOAL_MEDIA_LOST_SECS} s)`);
  } finally {
    await agent?.close();
    await customer?.close();
    await balancer?.close();
    await cluster.stop();
  }
});
