// SIGTERM in the middle of a recorded call: kefu drains — the call ends with reason
// system_shutdown, the recording is finished and uploaded — and exits within the
// drain timeout. After a restart the recording is ready at once and plays to within
// 2 s of the cut.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startKefu, launchBrowser, artifacts, api, kefuBinary, recordedVideoCall } from './lib/kefu.mjs';

const PASSWORD = 'agent password 1';
const DRAIN_TIMEOUT_SECS = 20;

test('SIGTERM during a recorded call drains it: ended as system_shutdown, recording ready', async () => {
  const first = await startKefu({ KEFU_SERVER__DRAIN_TIMEOUT_SECS: String(DRAIN_TIMEOUT_SECS) });
  const dataDir = first.env.KEFU_DATA_DIR;
  const agent = await launchBrowser();
  const customer = await launchBrowser({ mobile: true });
  let second;
  try {
    const { callId, agentToken } = await recordedVideoCall(first, agent, customer, 'sam', PASSWORD);
    await new Promise((r) => setTimeout(r, 6000));
    const call = await api(first.baseUrl, 'GET', `/calls/${callId}`, agentToken);
    assert.equal(call.data.state, 'connected');

    const exited = new Promise((ok) => first.child.on('exit', (code, signal) => ok({ code, signal })));
    const cutAt = Date.now();
    first.child.kill('SIGTERM');
    const status = await exited;
    const tookMs = Date.now() - cutAt;
    assert.deepEqual(status, { code: 0, signal: null }, 'a clean exit');
    assert.ok(tookMs < DRAIN_TIMEOUT_SECS * 1000, `exited after ${tookMs} ms`);
    // Both pages were told the call is over, not that the network broke.
    for (const page of [agent.page, customer.page]) {
      const told = await page.evaluate(() => window.kefu && window.kefu.endReason);
      assert.equal(told, 'system_shutdown');
    }

    second = await startKefu({ KEFU_DATA_DIR: dataDir });
    const admin = await api(second.baseUrl, 'POST', '/auth/login', null, { login: 'admin', password: first.adminPassword });
    assert.equal(admin.status, 200);
    const ended = await api(second.baseUrl, 'GET', `/calls/${callId}`, admin.data.token);
    assert.equal(ended.data.state, 'ended');
    assert.equal(ended.data.end_reason, 'system_shutdown');
    assert.equal(ended.data.ended_by, 'system');
    const capturedMs = ended.data.ended_at - ended.data.connected_at;
    assert.ok(Math.abs(ended.data.ended_at - cutAt) <= 2000, 'ended at the cut');

    // Stored before the exit: ready at once, no recovery needed.
    const list = await api(second.baseUrl, 'GET', `/recordings?call_id=${callId}`, admin.data.token);
    const rec = list.data[0];
    assert.equal(rec.state, 'ready', JSON.stringify(rec));
    assert.ok(Math.abs(capturedMs - rec.duration_ms) <= 2000, `recorded ${rec.duration_ms} ms of ${capturedMs} ms`);

    const link = await api(second.baseUrl, 'POST', `/recordings/${rec.id}/download`, admin.data.token);
    const res = await fetch(`${second.baseUrl}${link.data.url}`);
    const file = join(artifacts, 'drained.mp4');
    writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', file]).toString());
    assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
    assert.ok(Math.abs(Number(probe.format.duration) * 1000 - capturedMs) <= 2000, `ffprobe ${probe.format.duration} s of ${capturedMs} ms`);
    const errors = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    assert.equal(errors.trim(), '', 'the drained file decodes without error');
  } finally {
    await agent.close();
    await customer.close();
    if (second) await second.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('roles of a multi-node deployment name what their configuration lacks', () => {
  for (const role of ['signaling', 'media']) {
    const bare = spawnSync(kefuBinary(), ['serve', '--role', role], { encoding: 'utf8', timeout: 10000 });
    assert.notEqual(bare.status, 0, `--role ${role} does not start on one node's configuration`);
    assert.match(bare.stderr, new RegExp(`--role ${role} cannot start with this configuration`));
    assert.match(bare.stderr, /cluster\.backend = "redis"/);

    const redisOnly = spawnSync(kefuBinary(), ['serve', '--role', role], {
      encoding: 'utf8', timeout: 10000,
      env: { ...process.env, KEFU_CLUSTER__BACKEND: 'redis', KEFU_CLUSTER__REDIS_URL: 'redis://127.0.0.1:1/0' },
    });
    assert.notEqual(redisOnly.status, 0);
    for (const key of ['database.url', 'storage.embedded', 'auth.token_secret', 'security.data_key', 'cluster.secret']) {
      assert.ok(redisOnly.stderr.includes(key), `--role ${role} names ${key}: ${redisOnly.stderr}`);
    }
    assert.equal(redisOnly.stderr.includes('internal_url'), role === 'media', 'only a media node needs an internal URL');

    // With everything set the roles start: tests/tests/topology.rs runs them.
  }
});
