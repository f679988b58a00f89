// Customer requests through the real pages, with two agents: the ring reaches a
// workbench over the event channel (no /me/queue polling), a declined request rings
// the other agent, and the customer's page speaks Chinese throughout. Prints the
// time from the customer's tap to the ring (BENCHMARKS.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startKefu, launchBrowser, waitFor, artifacts, agentWithVideoService, signIn } from './lib/kefu.mjs';

const PASSWORD = 'agent password 1';

/** Visible text on the page that is not Chinese: Latin words of 3+ letters, leaving
 *  out data (the enterprise's own name, "Demo" for the seeded one). */
async function latinWords(page, data = []) {
  let text = await page.evaluate(() => document.body.innerText);
  for (const d of data) text = text.split(d).join(' ');
  return text.match(/[A-Za-z]{3,}/g) || [];
}

test('a declined request rings the next agent; rings arrive without polling; the customer reads Chinese', async () => {
  const kefu = await startKefu();
  const first = await launchBrowser();
  const second = await launchBrowser();
  const customer = await launchBrowser({ mobile: true });
  try {
    await agentWithVideoService(kefu, 'erin', PASSWORD);
    await agentWithVideoService(kefu, 'finn', PASSWORD);
    kefu.run('kefu', ['admin', 'create-group', '--enterprise', '10000', '--name', '售后']);
    for (const login of ['erin', 'finn']) kefu.run('kefu', ['admin', 'add-to-group', '--login', login, '--group', '售后']);
    const agents = [['erin', first], ['finn', second]];
    const polls = { erin: 0, finn: 0 };
    for (const [login, b] of agents) {
      b.page.on('request', (r) => {
        if (/\/api\/v1\/(me\/queue|calls\/[^/]+$)/.test(new URL(r.url()).pathname) && r.method() === 'GET') polls[login] += 1;
      });
      await signIn(b.page, kefu.baseUrl, login, PASSWORD);
      await b.page.check('#accepting');
    }

    const service = await (await fetch(`${kefu.baseUrl}/api/v1/service/10000`)).json();
    const data = [service.enterprise_name];
    await customer.page.goto(`${kefu.baseUrl}/service/10000`);
    await customer.page.waitForFunction(() => /在线客服/.test(document.getElementById('title').textContent));
    assert.deepEqual(await latinWords(customer.page, data), [], 'the consent page is all Chinese');
    await customer.page.check('#agree');
    const askedAt = Date.now();
    await customer.page.click('#video-request');

    // The first ring, whichever agent routing picked.
    const rung = await Promise.any(agents.map(async ([login, b]) => {
      await b.page.waitForSelector('#incoming:not([hidden])', { timeout: 10000 });
      return login;
    }));
    const ringMs = Date.now() - askedAt;
    console.log(`request → ring in the workbench: ${ringMs} ms`);
    assert.deepEqual(polls, { erin: 0, finn: 0 }, 'no /me/queue or /calls/{id} polling');
    await customer.page.waitForSelector('#waiting:not([hidden])');
    assert.deepEqual(await latinWords(customer.page, data), [], 'the waiting page is all Chinese');
    await customer.page.screenshot({ path: join(artifacts, 'service-waiting-zh.png') });

    // The rung agent declines: the other one rings; the first is not asked again.
    const [declining, other] = rung === 'erin' ? [first, second] : [second, first];
    assert.equal(await other.page.isHidden('#incoming'), true, 'one ring at a time');
    await declining.page.click('#decline');
    await other.page.waitForSelector('#incoming:not([hidden])', { timeout: 10000 });
    await declining.page.waitForSelector('#incoming', { state: 'hidden', timeout: 5000 });
    await other.page.screenshot({ path: join(artifacts, 'workbench-second-ring.png') });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await declining.page.isHidden('#incoming'), true, 'never back to the agent who declined');

    await other.page.click('#answer');
    await customer.page.waitForSelector('#call:not([hidden])', { timeout: 10000 });
    await waitFor('the call to be connected', 20000, async () => {
      const s = await other.page.evaluate(() => window.workbench.call && window.workbench.call.state);
      return { done: s === 'connected', value: s };
    });
    await waitFor('the customer to show "in call"', 10000, async () => {
      const key = await customer.page.getAttribute('#status', 'data-status');
      return { done: key === 'call.in_call', value: key };
    });
    assert.deepEqual(await latinWords(customer.page, data), [], 'the call page is all Chinese');
    await customer.page.screenshot({ path: join(artifacts, 'service-in-call-zh.png') });
    assert.deepEqual(polls, { erin: 0, finn: 0 }, 'still no polling');

    // The agent hangs up: the customer is told in Chinese.
    await other.page.click('#hang-up');
    await waitFor('the customer to see the end', 10000, async () => {
      const key = await customer.page.getAttribute('#status', 'data-status');
      return { done: key === 'call.ended', value: key };
    });
    assert.equal(await customer.page.textContent('#status'), '通话已结束');
  } finally {
    await first.close();
    await second.close();
    await customer.close();
    await kefu.stop();
  }
});
