// Agent-initiated calls through the real pages: the verification gate, the invite,
// the customer's consent and camera-off start, and a voice call without video.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startKefu, launchBrowser, callStats, waitFor, artifacts, agentWithVideoService, signIn } from './lib/kefu.mjs';

const PASSWORD = 'agent password 1';

async function callState(page) {
  return page.evaluate(() => window.workbench.call && window.workbench.call.state);
}

test('the gate refuses, a verification opens three calls, the fourth is refused; the customer joins camera-off', async () => {
  const kefu = await startKefu();
  const agent = await launchBrowser();
  const customer = await launchBrowser({ mobile: true });
  try {
    await agentWithVideoService(kefu, 'alice', PASSWORD);
    await signIn(agent.page, kefu.baseUrl, 'alice', PASSWORD);
    await agent.page.waitForFunction(() => /需要人脸核验|required/.test(document.getElementById('gate').textContent));

    // 1. No verification yet: refused by the server; the face check opens instead, and
    // says that no face is enrolled for this agent (verification.test.mjs runs it).
    await agent.page.click('#video-call');
    await agent.page.waitForSelector('#verify-dialog[open][data-phase=not_enrolled]');
    assert.match(await agent.page.textContent('#verify-prompt'), /管理员/);
    await agent.page.screenshot({ path: join(artifacts, 'workbench-gate-refused.png') });
    await agent.page.click('#verify-cancel');
    assert.equal(await agent.page.evaluate(() => document.getElementById('verify-dialog').open), false);

    // 2. The face engine records a pass (its internal interface), then the call goes out.
    kefu.run('kefu-test-verify', ['alice', 'passed']);
    await agent.page.click('#video-call');
    await agent.page.waitForSelector('#invite:not([hidden])');
    const inviteUrl = await agent.page.inputValue('#invite-url');
    assert.match(inviteUrl, /\/invite\/[A-Za-z0-9]{24}$/);
    await agent.page.waitForFunction(() => document.getElementById('invite-qr').naturalWidth > 0);
    assert.equal(await agent.page.isVisible('#video-call'), false, 'no second call button while one is out');
    await agent.page.screenshot({ path: join(artifacts, 'workbench-invite.png') });

    // The customer: consent page, then in the call with the camera off.
    await customer.page.goto(inviteUrl);
    await customer.page.waitForFunction(() => /视频客服/.test(document.getElementById('title').textContent));
    assert.equal(await customer.page.isDisabled('#accept'), true, 'no consent, no button');
    assert.equal(await customer.page.isVisible('#hang-up'), false, 'no call controls before consent');
    await customer.page.screenshot({ path: join(artifacts, 'customer-consent.png') });
    await customer.page.check('#agree');
    await customer.page.click('#accept');
    await customer.page.waitForSelector('#call:not([hidden])');

    const seenByCustomer = await waitFor('the customer to see the agent', 30000, async () => {
      const s = await callStats(customer.page);
      return { done: s && s.videoFramesDecoded >= 30 && s.audioPacketsReceived > 0, value: s };
    });
    assert.equal(seenByCustomer.remotePort, kefu.mediaPort);
    await waitFor('the call to be connected', 10000, async () => {
      const s = await callState(agent.page);
      return { done: s === 'connected', value: s };
    });
    const before = await callStats(agent.page);
    assert.ok(before.audioPacketsReceived > 0, 'the agent hears the customer');
    assert.equal(before.videoFramesDecoded, 0, "the customer's camera starts off");
    await customer.page.screenshot({ path: join(artifacts, 'customer-camera-off.png') });

    await customer.page.click('#camera');
    const after = await waitFor('the agent to see the customer', 20000, async () => {
      const s = await callStats(agent.page);
      return { done: s.videoFramesDecoded >= 30, value: s };
    });
    assert.ok(after.videoFramesDecoded >= 30);
    assert.equal(await agent.page.isVisible('#cancel-call'), false, 'a connected call is hung up, not cancelled');
    await customer.page.screenshot({ path: join(artifacts, 'customer-camera-on.png') });
    await agent.page.screenshot({ path: join(artifacts, 'workbench-in-call.png') });

    // The customer hangs up: the call ends and the workbench offers calls again.
    await customer.page.click('#hang-up');
    await agent.page.waitForSelector('#call-buttons:not([hidden])', { timeout: 10000 });

    // 3. Calls two and three are allowed (cancelled unanswered); the fourth is refused.
    for (let n = 2; n <= 3; n++) {
      await agent.page.click('#video-call');
      await agent.page.waitForSelector('#invite:not([hidden])');
      await agent.page.click('#cancel-call');
      await agent.page.waitForSelector('#call-buttons:not([hidden])', { timeout: 10000 });
    }
    await agent.page.click('#video-call');
    await agent.page.waitForSelector('#verify-dialog[open]');
    assert.equal(await agent.page.isVisible('#invite'), false, 'the 4th outgoing call needs a new check');
  } finally {
    await agent.close();
    await customer.close();
    await kefu.stop();
  }
});

test('a voice call carries no video at all', async () => {
  const kefu = await startKefu();
  const agent = await launchBrowser();
  const customer = await launchBrowser({ mobile: true });
  try {
    await agentWithVideoService(kefu, 'bob', PASSWORD);
    await signIn(agent.page, kefu.baseUrl, 'bob', PASSWORD);
    // After signing in: a check from before this login would not count.
    kefu.run('kefu-test-verify', ['bob', 'passed']);
    await agent.page.click('#voice-call');
    await agent.page.waitForSelector('#invite:not([hidden])');
    const inviteUrl = await agent.page.inputValue('#invite-url');
    await customer.page.goto(inviteUrl);
    await customer.page.waitForFunction(() => /语音客服/.test(document.getElementById('title').textContent));
    await customer.page.check('#agree');
    await customer.page.click('#accept');
    await customer.page.waitForSelector('#call:not([hidden])');
    assert.equal(await customer.page.isHidden('#camera'), true, 'no camera button in a voice call');

    for (const [name, side] of [['agent', agent], ['customer', customer]]) {
      const s = await waitFor(`${name} to hear the other side`, 30000, async () => {
        const s = await callStats(side.page);
        return { done: s && s.audioPacketsReceived > 50, value: s };
      });
      assert.equal(s.videoInbound, 0, `${name} receives no video stream`);
      const kinds = await side.page.evaluate(() => ({
        transceivers: window.kefu.pc.getTransceivers().map((t) => t.receiver.track.kind),
        local: window.kefu.local.getTracks().map((t) => t.kind),
      }));
      assert.deepEqual(kinds.transceivers, ['audio'], `${name}: audio line only`);
      assert.deepEqual(kinds.local, ['audio'], `${name}: the camera was never opened`);
    }
    await waitFor('the call to be connected', 10000, async () => {
      const s = await callState(agent.page);
      return { done: s === 'connected', value: s };
    });
  } finally {
    await agent.close();
    await customer.close();
    await kefu.stop();
  }
});
