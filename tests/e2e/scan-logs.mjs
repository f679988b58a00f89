// Scans every kefu log the browser suite wrote (TEST_LOG_DIR, at debug) for personal
// data and secrets in clear: ID numbers, mobile numbers, non-loopback IP addresses,
// bearer and session tokens, room tokens, face templates. Any hit fails (exit 1) and is
// printed with its file and line, the match itself masked. `make test-browser` runs it
// after the suite; `node tests/e2e/scan-logs.mjs DIR` runs it by hand.
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * GB 11643's shape: 6 digits of region, a birth date (19xx/20xx), 3 digits, a check
 * character. The check character is not verified: test data uses made-up numbers.
 */
const ID_NUMBER = /(?<![\dA-Za-z])\d{6}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\dA-Za-z])/g;

function nonLoopbackIp(s) {
  const parts = s.split('.').map(Number);
  if (parts.some((p) => p > 255)) return false;
  if (parts[0] === 127 || parts.every((p) => p === 0)) return false;
  return true;
}

/** Each detector: a pattern, and a check that a match really is what it names. */
export const DETECTORS = [
  { what: 'ID number', re: ID_NUMBER, real: () => true },
  // Not inside a longer run of digits or letters (hex digests, signatures).
  { what: 'mobile number', re: /(?<![\dA-Za-z.])1[3-9]\d{9}(?![\dA-Za-z.])/g, real: () => true },
  { what: 'IP address', re: /(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])/g, real: nonLoopbackIp },
  { what: 'bearer token', re: /bearer\s+[A-Za-z0-9._~+/=-]{16,}/gi, real: () => true },
  { what: 'room token', re: /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}/g, real: () => true },
  // Session, link and device tokens: 32 random bytes, base64url (43 characters).
  { what: 'session or link token', re: /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g, real: (s) => /[a-z]/.test(s) && /[A-Z]/.test(s) && /\d/.test(s) },
  // A face template: 512 floats, or their bytes as a long base64 run.
  { what: 'face template', re: /(?:-?\d\.\d+(?:e-?\d+)?,\s*){64,}/g, real: () => true },
  { what: 'face template', re: /[A-Za-z0-9+/]{400,}={0,2}/g, real: () => true },
];

/** The hits in `text`: { what, line, sample } (the sample masked). */
export function scan(text) {
  const hits = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    for (const d of DETECTORS) {
      for (const m of line.matchAll(d.re)) {
        if (d.real(m[0])) hits.push({ what: d.what, line: i + 1, sample: `${m[0].slice(0, 3)}…(${m[0].length})` });
      }
    }
  });
  return hits;
}

function selfTest() {
  const planted = [
    'login ok id=110101199003071234',
    'calling 13812345678',
    'peer 203.0.113.9:5000',
    'authorization: Bearer abcdefghijklmnopqrstuvwxyz0123',
    'token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlc2lnbmF0dXJl',
    'session Q2xZc3RhbmRzdGlsbC1zb21ldGhpbmctMzItYnl0ZXM',
    `template ${Array.from({ length: 80 }, (_, i) => (i / 100).toFixed(4)).join(', ')}`,
  ];
  for (const line of planted) {
    if (scan(line).length === 0) throw new Error(`self-test: nothing found in a planted line: ${line}`);
  }
  const clean = [
    'at 1796076966669 ms, 127.0.0.1:40715 connected, room 0b6f2c1e-8a1f-4c55-9f3d-2f1b7f4a9e10',
    'str0m 0.25.0, version 1.2.3, 1500 bytes',
    'id_number_masked=110***********1234',
    'Signature=aacb817d6d579c0a40bf12246e2993ccc9aed98617503731525e6c231d84167d',
  ];
  for (const line of clean) {
    const hits = scan(line);
    if (hits.length) throw new Error(`self-test: a clean line flagged (${hits[0].what}): ${line}`);
  }
}

// Run as a script (not imported): compare real paths, since a URL is percent-encoded
// and argv may go through a symlink.
const ranAsScript = process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
if (ranAsScript) {
  selfTest();
  const dir = process.argv[2] || process.env.TEST_LOG_DIR;
  if (!dir) {
    console.error('usage: node tests/e2e/scan-logs.mjs LOG_DIR');
    process.exit(2);
  }
  const files = readdirSync(dir).filter((f) => f.endsWith('.log'));
  if (files.length === 0) {
    console.error(`scan-logs: no logs in ${dir}: nothing was scanned`);
    process.exit(1);
  }
  let lines = 0;
  let bytes = 0;
  const found = [];
  for (const f of files) {
    const text = readFileSync(join(dir, f), 'utf8');
    lines += text.split('\n').length;
    bytes += text.length;
    for (const hit of scan(text)) found.push({ file: f, ...hit });
  }
  console.log(`scan-logs: ${files.length} logs, ${lines} lines, ${(bytes / 1048576).toFixed(1)} MiB scanned: ${found.length} hits`);
  if (found.length) {
    const byWhat = {};
    for (const h of found) byWhat[h.what] = (byWhat[h.what] || 0) + 1;
    console.error(JSON.stringify(byWhat));
    for (const h of found.slice(0, 50)) console.error(`${h.file}:${h.line}: ${h.what} ${h.sample}`);
    process.exit(1);
  }
}
