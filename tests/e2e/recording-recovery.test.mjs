// kill -9 in the middle of a recorded call: the next start ends the call (reason
// system_restart), finds the spool, cuts it at its last complete fragment and stores
// it; at most ~2 s of media are lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startKefu, launchBrowser, waitFor, artifacts, api, recordedVideoCall } from './lib/kefu.mjs';

const PASSWORD = 'agent password 1';

test('a recording interrupted by kill -9 is recovered at the next start', async () => {
  const first = await startKefu();
  const dataDir = first.env.KEFU_DATA_DIR;
  const agent = await launchBrowser();
  const customer = await launchBrowser({ mobile: true });
  let second;
  try {
    const { callId, agentToken } = await recordedVideoCall(first, agent, customer, 'kim', PASSWORD);
    await new Promise((r) => setTimeout(r, 8000));
    const call = await api(first.baseUrl, 'GET', `/calls/${callId}`, agentToken);
    assert.equal(call.data.state, 'connected');

    const exited = new Promise((ok) => first.child.on('exit', ok));
    first.child.kill('SIGKILL');
    const killedAt = Date.now();
    await exited;
    const capturedMs = killedAt - call.data.connected_at;

    second = await startKefu({ KEFU_DATA_DIR: dataDir });
    const admin = await api(second.baseUrl, 'POST', '/auth/login', null, { login: 'admin', password: first.adminPassword });
    assert.equal(admin.status, 200);
    // The call itself did not survive the crash: ended at the start, agent freed.
    const ended = await api(second.baseUrl, 'GET', `/calls/${callId}`, admin.data.token);
    assert.equal(ended.data.state, 'ended');
    assert.equal(ended.data.end_reason, 'system_restart');
    assert.equal(ended.data.ended_by, 'system');
    const rec = await waitFor('the recovered recording to be ready', 30000, async () => {
      const r = await api(second.baseUrl, 'GET', `/recordings?call_id=${callId}`, admin.data.token);
      return { done: r.data[0] && r.data[0].state === 'ready', value: r.data[0] };
    });
    assert.ok(rec.duration_ms <= capturedMs && capturedMs - rec.duration_ms <= 2500,
      `recovered ${rec.duration_ms} ms of ${capturedMs} ms captured`);

    const link = await api(second.baseUrl, 'POST', `/recordings/${rec.id}/download`, admin.data.token);
    const res = await fetch(`${second.baseUrl}${link.data.url}`);
    const file = join(artifacts, 'recovered.mp4');
    writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', file]).toString());
    assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
    assert.ok(Math.abs(Number(probe.format.duration) * 1000 - rec.duration_ms) <= 500, `ffprobe ${probe.format.duration} s`);
    const errors = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    assert.equal(errors.trim(), '', 'the recovered file decodes without error');
  } finally {
    await agent.close();
    await customer.close();
    if (second) await second.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
