// A real call between the agent page and the customer page, through our SFU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startKefu, launchBrowser, callStats, waitFor, artifacts } from './lib/kefu.mjs';

test('agent and customer pages see and hear each other through the SFU', async () => {
  const kefu = await startKefu();
  const agent = await launchBrowser();
  const customer = await launchBrowser({ mobile: true });
  try {
    await agent.page.goto(kefu.agentUrl);
    await customer.page.goto(kefu.customerUrl);

    const received = [];
    for (const [name, side] of [['agent', agent], ['customer', customer]]) {
      const stats = await waitFor(`${name} to decode 60 frames`, 30000, async () => {
        const s = await callStats(side.page);
        return { done: s && s.videoFramesDecoded >= 60 && s.audioPacketsReceived > 0, value: s };
      });
      assert.ok(stats.videoFramesDecoded >= 60, `${name} decoded ${stats.videoFramesDecoded} frames`);
      assert.ok(stats.audioPacketsReceived > 0, `${name} received audio`);
      // Media is relayed by the SFU, not peer to peer.
      assert.equal(stats.remotePort, kefu.mediaPort, `${name}'s selected pair goes to the SFU`);
      assert.equal(stats.pairState, 'succeeded');
      received.push(stats);
    }
    for (const [name, side] of [['agent', agent], ['customer', customer]]) {
      const status = await waitFor(`${name} to show "in call"`, 5000, async () => {
        const key = await side.page.getAttribute('#status', 'data-status');
        return { done: key === 'call.in_call', value: key };
      });
      assert.equal(status, 'call.in_call');
      assert.equal(await side.page.textContent('#status'), '通话中', 'shown in Chinese');
    }
    await agent.page.screenshot({ path: join(artifacts, 'agent-in-call.png') });
    await customer.page.screenshot({ path: join(artifacts, 'customer-in-call.png') });

    // Hang-up reaches the other side through signaling, not an ICE timeout.
    await customer.page.click('#hang-up');
    await waitFor('agent to see the customer leave', 5000, async () => {
      const key = await agent.page.getAttribute('#status', 'data-status');
      return { done: key === 'call.other_left', value: key };
    });

    // Every audio packet and every decoded frame the pages got was forwarded by the SFU.
    const metrics = await (await fetch(`${kefu.baseUrl}/metrics`)).text();
    const forwarded = Number((metrics.match(/^kefu_sfu_packets_forwarded_total (\d+)/m) || [])[1]);
    const atLeast = received.reduce((n, s) => n + s.audioPacketsReceived + s.videoFramesDecoded, 0);
    assert.ok(forwarded >= atLeast, `metrics count ${forwarded} forwarded packets, pages got ${atLeast}`);
  } finally {
    await agent.close();
    await customer.close();
    const status = await kefu.stop();
    assert.equal(status.code, 0, `kefu exits cleanly on SIGTERM: ${JSON.stringify(status)}`);
  }
});
