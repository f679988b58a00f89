// Customer-initiated calls through the real pages: the request waits in the group's
// queue while no agent accepts, and is assigned the moment one turns accepting on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startKefu, launchBrowser, callStats, waitFor, artifacts, agentWithVideoService, signIn } from './lib/kefu.mjs';

const PASSWORD = 'agent password 1';

test('a customer request waits in the queue and is auto-assigned when the agent accepts', async () => {
  const kefu = await startKefu();
  const agent = await launchBrowser();
  const customer = await launchBrowser({ mobile: true });
  try {
    await agentWithVideoService(kefu, 'carol', PASSWORD);
    kefu.run('kefu', ['admin', 'create-group', '--enterprise', '10000', '--name', '售后']);
    kefu.run('kefu', ['admin', 'add-to-group', '--login', 'carol', '--group', '售后']);
    await signIn(agent.page, kefu.baseUrl, 'carol', PASSWORD);
    assert.equal(await agent.page.isChecked('#accepting'), false, 'the agent starts not accepting');

    // The customer asks from the service page; no face check is involved.
    await customer.page.goto(`${kefu.baseUrl}/service/10000`);
    await customer.page.waitForFunction(() => /在线客服/.test(document.getElementById('title').textContent));
    await customer.page.check('#agree');
    await customer.page.click('#video-request');
    await customer.page.waitForSelector('#waiting:not([hidden])');
    await customer.page.screenshot({ path: join(artifacts, 'service-waiting.png') });

    // It waits in the queue; the workbench shows the count live.
    await agent.page.waitForFunction(() => document.getElementById('queue-count').textContent === '1', null, { timeout: 5000 });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await customer.page.evaluate(() => window.servicePage.request.state), 'requested', 'still queued');

    // The agent turns accepting on: the request is assigned at once and rings.
    await agent.page.check('#accepting');
    await agent.page.waitForSelector('#incoming:not([hidden])', { timeout: 5000 });
    await agent.page.waitForFunction(() => document.getElementById('queue-count').textContent === '0');
    await agent.page.screenshot({ path: join(artifacts, 'workbench-incoming.png') });
    await agent.page.click('#answer');

    await customer.page.waitForSelector('#call:not([hidden])', { timeout: 5000 });
    const seen = await waitFor('the customer to see the agent', 30000, async () => {
      const s = await callStats(customer.page);
      return { done: s && s.videoFramesDecoded >= 30 && s.audioPacketsReceived > 0, value: s };
    });
    assert.equal(seen.remotePort, kefu.mediaPort);
    await waitFor('the call to be connected', 10000, async () => {
      const s = await agent.page.evaluate(() => window.workbench.call && window.workbench.call.state);
      return { done: s === 'connected', value: s };
    });
    const agentSide = await callStats(agent.page);
    assert.ok(agentSide.audioPacketsReceived > 0, 'the agent hears the customer');
    assert.equal(agentSide.videoFramesDecoded, 0, "the customer's camera starts off");
    await agent.page.screenshot({ path: join(artifacts, 'workbench-answered.png') });
    await customer.page.screenshot({ path: join(artifacts, 'service-in-call.png') });
  } finally {
    await agent.close();
    await customer.close();
    await kefu.stop();
  }
});
