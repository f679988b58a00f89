// Refreshes the fuzzers' seed corpus from a real call: two headless Chromium pages
// call each other through kefu, behind the impairment relay, which keeps the first
// datagrams of each kind (STUN, DTLS, RTP/RTCP) in both directions. The pages' SDP
// offers, ICE candidates and signaling messages are saved too.
// Run: ./deploy/netns-run.sh node fuzz/capture-seeds.mjs   (after `make build`)
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startKefuBehindRelay, launchBrowser, callStats, waitFor } from '../tests/e2e/lib/kefu.mjs';

const seeds = join(dirname(fileURLToPath(import.meta.url)), 'seeds');
const captured = mkdtempSync(join(tmpdir(), 'kefu-capture-'));
process.env.NETEM_CAPTURE_DIR = captured;

const { kefu } = await startKefuBehindRelay();
const agent = await launchBrowser();
const customer = await launchBrowser({ mobile: true });
try {
  await agent.page.goto(kefu.agentUrl);
  await customer.page.goto(kefu.customerUrl);
  await waitFor('both pages to decode video', 30000, async () => {
    const s = [await callStats(agent.page), await callStats(customer.page)];
    return { done: s.every((x) => x && x.videoFramesDecoded >= 30), value: s };
  });
  const signaling = join(seeds, 'signaling_message');
  const sdp = join(seeds, 'sfu_signaling');
  const packets = join(seeds, 'sfu_packet');
  for (const dir of [signaling, sdp, packets]) mkdirSync(dir, { recursive: true });
  for (const [who, page] of [['agent', agent.page], ['customer', customer.page]]) {
    const offer = await page.evaluate(() => window.kefu.pc.localDescription.sdp);
    const candidates = await page.evaluate(async () => {
      const out = [];
      (await window.kefu.pc.getStats()).forEach((s) => {
        if (s.type === 'local-candidate') out.push(`candidate:1 1 ${s.protocol} ${s.priority} ${s.address} ${s.port} typ ${s.candidateType}`);
      });
      return out;
    });
    writeFileSync(join(sdp, `offer-${who}.sdp`), offer);
    writeFileSync(join(sdp, `candidates-${who}.txt`), candidates.join('\r\n'));
    writeFileSync(join(signaling, `offer-${who}.json`), JSON.stringify({ type: 'offer', sdp: offer }));
    writeFileSync(join(signaling, `restart-${who}.json`), JSON.stringify({ type: 'restart', sdp: offer }));
    candidates.forEach((c, i) => writeFileSync(join(signaling, `candidate-${who}-${i}.json`),
      JSON.stringify({ type: 'candidate', candidate: c, sdp_mid: '0', sdp_m_line_index: 0 })));
  }
  const token = new URL(kefu.customerUrl).searchParams.get('token');
  writeFileSync(join(signaling, 'join.json'), JSON.stringify({ type: 'join', token }));
  for (const t of ['leave', 'ping']) writeFileSync(join(signaling, `${t}.json`), JSON.stringify({ type: t }));
  writeFileSync(join(signaling, 'end-of-candidates.json'), JSON.stringify({ type: 'candidate', candidate: null }));
  // sfu_packet inputs: a selector byte (0: first participant over UDP; 0x80: over
  // ICE-TCP), then the packet as captured.
  for (const name of readdirSync(captured)) {
    const data = readFileSync(join(captured, name));
    writeFileSync(join(packets, `udp-${name}`), Buffer.concat([Buffer.from([0]), data]));
    if (name.includes('stun')) writeFileSync(join(packets, `tcp-${name}`), Buffer.concat([Buffer.from([0x80]), data]));
  }
  console.log(`seeds written under ${seeds}`);
} finally {
  await agent.close();
  await customer.close();
  await kefu.stop();
}
