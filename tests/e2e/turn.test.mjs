// Calls through TURN: kefu hands each participant short-lived TURN credentials for a
// coturn the test starts, with relay-only ICE; both browsers reach the SFU only through
// coturn, over UDP and then over TCP (a network that blocks UDP to the SFU).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startKefu, startCoturn, launchBrowser, callStats, waitFor } from './lib/kefu.mjs';

for (const transport of ['udp', 'tcp']) {
  test(`a relay-only call through coturn over ${transport}`, async () => {
    const turn = await startCoturn();
    const kefu = await startKefu({
      KEFU_SIGNALING__ICE__TURN_URLS: `["turn:127.0.0.1:${turn.port}?transport=${transport}"]`,
      KEFU_SIGNALING__ICE__TURN_SECRET: turn.secret,
      KEFU_SIGNALING__ICE__FORCE_RELAY: 'true',
    });
    const agent = await launchBrowser();
    const customer = await launchBrowser({ mobile: true });
    try {
      await agent.page.goto(kefu.agentUrl);
      await customer.page.goto(kefu.customerUrl);
      for (const [who, page] of [['agent', agent.page], ['customer', customer.page]]) {
        const s = await waitFor(`the ${who} to decode video through TURN`, 30000, async () => {
          const st = await callStats(page);
          return { done: st && st.videoFramesDecoded >= 30 && st.audioPacketsReceived > 0, value: st };
        });
        assert.equal(s.localCandidateType, 'relay', `${who}: ${JSON.stringify(s)}`);
        assert.equal(s.relayProtocol, transport, `${who} reaches coturn over ${transport}`);
        assert.equal(s.remotePort, kefu.mediaPort, `${who}'s relay talks to the SFU`);
      }
    } finally {
      await agent.close();
      await customer.close();
      await kefu.stop();
      turn.stop();
    }
  });
}
