// A recorded video call through the real pages: two fake microphones play 440 Hz and
// 880 Hz; the recording is listed, played and downloaded from the admin console, and
// the stored file is checked with ffprobe/ffmpeg. Access rules are checked over HTTP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startKefu, launchBrowser, callStats, waitFor, artifacts, agentWithVideoService, signIn, api } from './lib/kefu.mjs';

const PASSWORD = 'agent password 1';

function tone(hz) {
  mkdirSync(artifacts, { recursive: true });
  const path = join(artifacts, `tone-${hz}.wav`);
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `sine=frequency=${hz}:duration=120`, '-ar', '48000', '-ac', '1', path]);
  return path;
}

/** Goertzel power of `hz` in mono f32 samples at `rate`. */
function power(samples, hz, rate) {
  const w = (2 * Math.PI * hz) / rate;
  let s1 = 0, s2 = 0;
  for (const x of samples) {
    const s = x + 2 * Math.cos(w) * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  return (s1 * s1 + s2 * s2 - 2 * Math.cos(w) * s1 * s2) / samples.length;
}

// The embedded store, and a real external S3 server (Ceph radosgw from
// deploy/with-radosgw.sh; required under CI).
const external = process.env.TEST_S3_ENDPOINT
  ? {
      KEFU_STORAGE__EMBEDDED: 'false',
      KEFU_STORAGE__ENDPOINT: process.env.TEST_S3_ENDPOINT,
      KEFU_STORAGE__ACCESS_KEY: process.env.TEST_S3_ACCESS_KEY,
      KEFU_STORAGE__SECRET_KEY: process.env.TEST_S3_SECRET_KEY,
    }
  : null;
if (!external && process.env.CI) throw new Error('CI must test against radosgw: run under deploy/with-radosgw.sh');
const stores = [['the embedded store', {}], ...(external ? [['Ceph radosgw', external]] : [])];

for (const [storeName, storeEnv] of stores) test(`a video call is recorded, listed, played and downloaded with the right name (${storeName})`, async () => {
  const kefu = await startKefu(storeEnv);
  const agent = await launchBrowser({ extraArgs: [`--use-file-for-fake-audio-capture=${tone(440)}`] });
  const customer = await launchBrowser({ mobile: true, extraArgs: [`--use-file-for-fake-audio-capture=${tone(880)}`] });
  const adminPage = await launchBrowser();
  try {
    const adminToken = await agentWithVideoService(kefu, 'rita', PASSWORD);
    await signIn(agent.page, kefu.baseUrl, 'rita', PASSWORD);
    kefu.run('kefu-test-verify', ['rita', 'passed']);
    await agent.page.click('#video-call');
    await agent.page.waitForSelector('#invite:not([hidden])');
    const inviteUrl = await agent.page.inputValue('#invite-url');
    const callId = await agent.page.evaluate(() => window.workbench.call.id);
    await customer.page.goto(inviteUrl);
    await customer.page.check('#agree');
    await customer.page.click('#accept');
    await customer.page.waitForSelector('#call:not([hidden])');

    // Connected: the agent sees the one-second recording notice.
    await agent.page.waitForSelector('#recording-notice:not([hidden])', { timeout: 20000 });
    await agent.page.screenshot({ path: join(artifacts, 'workbench-recording-notice.png') });
    await agent.page.waitForSelector('#recording-notice', { state: 'hidden', timeout: 3000 });
    await customer.page.click('#camera');
    await waitFor('both sides to decode video', 30000, async () => {
      const [a, c] = [await callStats(agent.page), await callStats(customer.page)];
      return { done: a && c && a.videoFramesDecoded >= 30 && c.videoFramesDecoded >= 30, value: [a, c] };
    });
    const live = await api(kefu.baseUrl, 'GET', `/recordings?call_id=${callId}`, adminToken);
    assert.equal(live.data.length, 1);
    assert.equal(live.data[0].state, 'recording');

    await new Promise((r) => setTimeout(r, 16000));
    await customer.page.click('#hang-up');
    const hungUpAt = Date.now();

    const rec = await waitFor('the recording to be ready', 30000, async () => {
      const r = await api(kefu.baseUrl, 'GET', `/recordings?call_id=${callId}`, adminToken);
      return { done: r.data[0] && r.data[0].state === 'ready', value: r.data[0] };
    });
    const readyAfter = Date.now() - hungUpAt;
    assert.match(rec.name, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} 视频通话记录\.mp4$/);
    assert.match(rec.duration, /^00:00:(1[89]|2\d)$/);
    const agentToken = await agent.page.evaluate(() => window.workbench.token);
    const call = await api(kefu.baseUrl, 'GET', `/calls/${callId}`, agentToken);
    const connectedMs = call.data.ended_at - call.data.connected_at;
    assert.ok(Math.abs(rec.duration_ms - connectedMs) <= 500, `recorded ${rec.duration_ms} ms of ${connectedMs} ms connected`);

    // The agent's workbench lists it under "images / audio-video", playable.
    await agent.page.waitForSelector(`#recording-list li[data-id="${rec.id}"][data-state=ready] button`, { timeout: 10000 });

    // Download: the stored name, RFC 5987 encoded; then the file itself.
    const link = await api(kefu.baseUrl, 'POST', `/recordings/${rec.id}/download`, adminToken);
    const res = await fetch(`${kefu.baseUrl}${link.data.url}`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-disposition'), /^attachment; .*filename\*=UTF-8''\d{4}-\d{2}-\d{2}%20\d{2}%3A\d{2}%3A\d{2}%20%E8%A7%86%E9%A2%91%E9%80%9A%E8%AF%9D%E8%AE%B0%E5%BD%95\.mp4$/);
    const file = join(artifacts, 'recording.mp4');
    writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', file]).toString());
    assert.match(probe.format.format_name, /mp4/);
    assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
    assert.ok(Math.abs(Number(probe.format.duration) * 1000 - rec.duration_ms) <= 500, `ffprobe ${probe.format.duration} s`);
    const decodeErrors = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    assert.equal(decodeErrors.trim(), '', 'the video decodes without error');
    const pcm = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-vn', '-ac', '1', '-ar', '8000', '-f', 'f32le', '-'], { maxBuffer: 64 << 20 });
    const samples = new Float32Array(pcm.buffer, pcm.byteOffset, Math.floor(pcm.length / 4));
    const [p440, p880, p660] = [power(samples, 440, 8000), power(samples, 880, 8000), power(samples, 660, 8000)];
    assert.ok(p440 > 20 * p660 && p880 > 20 * p660, `both voices: 440 Hz ${p440}, 880 Hz ${p880}, 660 Hz ${p660}`);

    // Range: the player seeks.
    const play = await api(kefu.baseUrl, 'POST', `/recordings/${rec.id}/play`, adminToken);
    const partial = await fetch(`${kefu.baseUrl}${play.data.url}`, { headers: { range: 'bytes=100-1099' } });
    assert.equal(partial.status, 206);
    assert.equal((await partial.arrayBuffer()).byteLength, 1000);
    assert.match(partial.headers.get('content-range'), /^bytes 100-1099\/\d+$/);
    const audit = await api(kefu.baseUrl, 'GET', '/audit', adminToken);
    assert.deepEqual(audit.data.filter((e) => e.target_id === rec.id).map((e) => e.action).sort(), ['recording.download', 'recording.play']);

    // The admin console lists and plays it.
    const page = adminPage.page;
    await page.goto(`${kefu.baseUrl}/admin`);
    await page.fill('#login', 'admin');
    await page.fill('#password', kefu.adminPassword);
    await page.click('#login-form button[type=submit]');
    const row = page.locator(`#recordings tr[data-id="${rec.id}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), new RegExp(`${rec.name.replace(/[.]/g, '\\.')}.*${rec.duration}`));
    await row.locator('button[data-action="play"]').click();
    await page.waitForFunction(() => { const v = document.getElementById('player'); return v.readyState >= 2 && v.duration > 15; }, null, { timeout: 15000 });
    await page.evaluate(() => { document.getElementById('player').currentTime = 10; });
    await page.waitForFunction(() => document.getElementById('player').currentTime >= 10, null, { timeout: 10000 });
    await page.screenshot({ path: join(artifacts, 'admin-recordings.png'), fullPage: true });
    // The customer's trail: their recordings only.
    await row.locator('button.customer-trail').click();
    await page.waitForSelector('#r-customer:not([hidden])');
    await page.waitForFunction((id) => [...document.querySelectorAll('#recordings tbody tr')].every((tr) => tr.dataset.id === id), rec.id);

    // Access: another agent sees nothing of it; another enterprise's admin gets 404.
    kefu.run('kefu', ['admin', 'create-user', '--enterprise', '10000', '--login', 'sam', '--role', 'agent', '--name', '王五', '--password-stdin'], 'sam password 1\n');
    const sam = await api(kefu.baseUrl, 'POST', '/auth/login', null, { login: 'sam', password: 'sam password 1' });
    assert.equal((await api(kefu.baseUrl, 'GET', `/recordings/${rec.id}`, sam.data.token)).status, 404);
    assert.equal((await api(kefu.baseUrl, 'POST', `/recordings/${rec.id}/play`, sam.data.token)).status, 404);
    assert.deepEqual((await api(kefu.baseUrl, 'GET', '/recordings', sam.data.token)).data, []);
    const rita = await api(kefu.baseUrl, 'POST', '/auth/login', null, { login: 'rita', password: PASSWORD });
    assert.equal((await api(kefu.baseUrl, 'GET', `/recordings/${rec.id}`, rita.data.token)).status, 200, 'the agent of the call sees it');
    kefu.run('kefu', ['admin', 'create-enterprise', '--name', '别家', '--main-account', '20000']);
    kefu.run('kefu', ['admin', 'create-user', '--enterprise', '20000', '--login', 'other-admin', '--role', 'admin', '--name', '赵六', '--password-stdin'], 'other password 1\n');
    const other = await api(kefu.baseUrl, 'POST', '/auth/login', null, { login: 'other-admin', password: 'other password 1' });
    assert.equal((await api(kefu.baseUrl, 'GET', `/recordings/${rec.id}`, other.data.token)).status, 404);
    assert.deepEqual((await api(kefu.baseUrl, 'GET', '/recordings', other.data.token)).data, []);
    // Customers hold room tokens, not sessions: no list for them.
    assert.equal((await api(kefu.baseUrl, 'GET', '/recordings', null)).status, 401);
    assert.equal((await fetch(`${kefu.baseUrl}/media/recordings/not-a-link`)).status, 404);
    console.log(`recording ready ${readyAfter} ms after hang-up`);
  } finally {
    await agent.close();
    await customer.close();
    await adminPage.close();
    await kefu.stop();
  }
});

test('a voice call is recorded as M4A without any video stream', async () => {
  const kefu = await startKefu();
  const agent = await launchBrowser();
  const customer = await launchBrowser({ mobile: true });
  try {
    const adminToken = await agentWithVideoService(kefu, 'vera', PASSWORD);
    await signIn(agent.page, kefu.baseUrl, 'vera', PASSWORD);
    kefu.run('kefu-test-verify', ['vera', 'passed']);
    await agent.page.click('#voice-call');
    await agent.page.waitForSelector('#invite:not([hidden])');
    const callId = await agent.page.evaluate(() => window.workbench.call.id);
    await customer.page.goto(await agent.page.inputValue('#invite-url'));
    await customer.page.check('#agree');
    await customer.page.click('#accept');
    await agent.page.waitForSelector('#recording-notice:not([hidden])', { timeout: 20000 });
    await new Promise((r) => setTimeout(r, 4000));
    await customer.page.click('#hang-up');
    const rec = await waitFor('the voice recording to be ready', 30000, async () => {
      const r = await api(kefu.baseUrl, 'GET', `/recordings?call_id=${callId}`, adminToken);
      return { done: r.data[0] && r.data[0].state === 'ready', value: r.data[0] };
    });
    assert.match(rec.name, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} 语音通话记录\.m4a$/);
    const link = await api(kefu.baseUrl, 'POST', `/recordings/${rec.id}/download`, adminToken);
    const res = await fetch(`${kefu.baseUrl}${link.data.url}`);
    assert.equal(res.headers.get('content-type'), 'audio/mp4');
    const file = join(artifacts, 'recording.m4a');
    writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', file]).toString());
    assert.deepEqual(probe.streams.map((s) => s.codec_type), ['audio'], 'no video stream');
    assert.equal(probe.streams[0].codec_name, 'aac');
    assert.ok(Math.abs(Number(probe.format.duration) * 1000 - rec.duration_ms) <= 500);
  } finally {
    await agent.close();
    await customer.close();
    await kefu.stop();
  }
});
