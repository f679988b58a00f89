// A customer's network changes in the middle of a recorded call (Wi-Fi gone, 4G
// instead): media to the SFU goes through the impairment relay, which cuts the
// customer's path off; its WebSocket drops too (a TCP proxy in front of kefu cuts the
// connection and refuses new ones for a moment). The page restarts
// ICE on the same peer connection and re-joins; the call goes on, and the recording
// continues in the same file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startKefuBehindRelay, startTcpProxy, launchBrowser, callStats, waitFor, artifacts, agentWithVideoService, signIn, api } from './lib/kefu.mjs';

const PASSWORD = 'agent password 1';

test('a network change mid-call: ICE restart within 2 s, same call, one recording', async () => {
  const { kefu, relay } = await startKefuBehindRelay();
  const agent = await launchBrowser();
  const customer = await launchBrowser({ mobile: true });
  const http = await startTcpProxy(new URL(kefu.baseUrl).port);
  try {
    const adminToken = await agentWithVideoService(kefu, 'nina', PASSWORD);
    await signIn(agent.page, kefu.baseUrl, 'nina', PASSWORD);
    kefu.run('kefu-test-verify', ['nina', 'passed']);
    await agent.page.click('#video-call');
    await agent.page.waitForSelector('#invite:not([hidden])');
    const callId = await agent.page.evaluate(() => window.workbench.call.id);
    const invite = new URL(await agent.page.inputValue('#invite-url'));
    invite.port = String(http.port);
    await customer.page.goto(invite.href);
    await customer.page.check('#agree');
    await customer.page.click('#accept');
    await customer.page.waitForSelector('#call:not([hidden])');
    await customer.page.waitForFunction(() => window.kefu.videoTransceiver);
    await customer.page.click('#camera');
    const before = await waitFor('both sides to decode video through the relay', 30000, async () => {
      const [a, c] = [await callStats(agent.page), await callStats(customer.page)];
      return { done: a && c && a.videoFramesDecoded >= 30 && c.videoFramesDecoded >= 30, value: [a, c] };
    });
    assert.equal(before[1].remotePort, relay.port, 'the customer reaches the SFU through the relay');
    const live = await api(kefu.baseUrl, 'GET', `/recordings?call_id=${callId}`, adminToken);
    assert.equal(live.data.length, 1);

    // The network goes: media path cut, WebSocket dropped, for a moment.
    const cutAt = Date.now();
    await relay.cmd(`block ${before[1].localPort}`);
    http.down = true;
    http.cut();
    await waitFor('the customer page to notice', 15000, async () => {
      const k = await customer.page.evaluate(() => ({ ice: window.kefu.pc.iceConnectionState, restarts: window.kefu.iceRestarts, reconnects: window.kefu.reconnects }));
      return { done: k.ice !== 'connected' && k.ice !== 'completed', value: k };
    });
    const noticedAt = Date.now();
    // The new network is there: the customer's packets reach the SFU from a new
    // address, and kefu's HTTP port is reachable again.
    const frames = (await callStats(customer.page)).videoFramesDecoded;
    http.down = false;
    await relay.cmd(`rebind ${before[1].localPort}`);
    const restoredAt = Date.now();
    const back = await waitFor('media to flow again', 15000, async () => {
      const [c, a] = [await callStats(customer.page), await callStats(agent.page)];
      return { done: c.iceState === 'connected' && c.videoFramesDecoded > frames + 5, value: [c, a] };
    });
    const recoveredAt = Date.now();
    const k = await customer.page.evaluate(() => ({ restarts: window.kefu.iceRestarts, reconnects: window.kefu.reconnects, log: window.kefu.iceLog, ws: window.kefu.wsLog }));
    console.log(`network change: the page noticed after ${noticedAt - cutAt} ms; media back ${recoveredAt - restoredAt} ms after the new network came up; ${JSON.stringify(k)}`);
    assert.ok(k.restarts >= 1, 'the page restarted ICE');
    assert.ok(k.reconnects >= 1, 'the page re-joined over a new WebSocket');
    assert.ok(recoveredAt - restoredAt <= 2000, `media back ${recoveredAt - restoredAt} ms after the new network came up`);
    assert.equal(back[0].remotePort, relay.port);

    // Same call, still connected on both pages; still one recording, still recording.
    const state = await agent.page.evaluate(() => window.workbench.call && window.workbench.call.state);
    assert.equal(state, 'connected');
    await waitFor('the agent to decode the customer again', 10000, async () => {
      const a = await callStats(agent.page);
      return { done: a.videoFramesDecoded > before[0].videoFramesDecoded + 30, value: a };
    });
    const during = await api(kefu.baseUrl, 'GET', `/recordings?call_id=${callId}`, adminToken);
    assert.equal(during.data.length, 1, 'no new recording');
    assert.equal(during.data[0].state, 'recording');
    const metrics = await (await fetch(`${kefu.baseUrl}/metrics`)).text();
    assert.match(metrics, /^kefu_sfu_ice_events_total\{event="restart"\} [1-9]/m);
    await customer.page.screenshot({ path: join(artifacts, 'network-change-customer.png') });

    await new Promise((r) => setTimeout(r, 2000));
    await customer.page.click('#hang-up');
    const rec = await waitFor('the recording to be ready', 30000, async () => {
      const r = await api(kefu.baseUrl, 'GET', `/recordings?call_id=${callId}`, adminToken);
      return { done: r.data.length === 1 && r.data[0].state === 'ready', value: r.data };
    });
    const agentToken = await agent.page.evaluate(() => window.workbench.token);
    const call = await api(kefu.baseUrl, 'GET', `/calls/${callId}`, agentToken);
    const connectedMs = call.data.ended_at - call.data.connected_at;
    assert.ok(Math.abs(rec[0].duration_ms - connectedMs) <= 1000, `one file covers the call: ${rec[0].duration_ms} ms of ${connectedMs} ms`);
  } finally {
    await agent.close();
    await customer.close();
    http.stop();
    await kefu.stop();
  }
});
