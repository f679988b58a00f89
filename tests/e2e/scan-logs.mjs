// Scans every kefu log the browser suite wrote (TEST_LOG_DIR, at debug) for personal
// data and secrets in clear: ID numbers, mobile numbers, non-loopback IP addresses (v4
// and v6), bearer, session, link and device tokens, invite codes, room tokens, keys,
// passwords, face templates. Any hit fails (exit 1) and is printed with its file and
// line, the match itself masked. `make test-browser` runs it after the suite;
// `node tests/e2e/scan-logs.mjs DIR` runs it by hand.
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * GB 11643's shape: 6 digits of region, a birth date (19xx/20xx), 3 digits, a check
 * character. The check character is not verified: test data uses made-up numbers.
 */
const ID_NUMBER = /(?<![\dA-Za-z])\d{6}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\dA-Za-z])/g;

/**
 * A mainland mobile number: 1[3-9] and 9 more digits, bare (13812345678) or grouped
 * 3-4-4 by spaces or hyphens (138 1234 5678, 138-1234-5678), optionally after the
 * country code: +86 or 0086 (with or without a separator), or a bare 86 only with one
 * (86-138-1234-5678), so that a 13-digit counter starting 861… does not read as one.
 * Not inside a longer run of digits or letters (hex digests, signatures) nor after a
 * decimal point (elapsed_secs=0.13812345678).
 */
const MOBILE = /(?<![\dA-Za-z.])(?:(?:\+|00)86[\s-]?|86[\s-])?1[3-9]\d(?:[\s-]?\d{4}){2}(?![\dA-Za-z.])/g;

function nonLoopbackIp(s) {
  const parts = s.split('.').map(Number);
  if (parts.some((p) => p > 255)) return false;
  if (parts[0] === 127 || parts.every((p) => p === 0)) return false;
  return true;
}

/**
 * An IPv6 candidate: a run of hex digits, colons (at least two) and dots, starting at a
 * word boundary (not inside `23:18:01` of a timestamp's `T23:18:01`, nor a Rust path's
 * `kefu::calls`). `realIpv6` decides.
 */
const IPV6 = /(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:.]+/g;

/** The 8 groups of a valid IPv6 address without an IPv4 tail. */
function ipv6Groups(s) {
  const [head, tail] = s.includes('::') ? s.split('::') : [s, null];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const zeros = tail === null ? [] : Array(8 - h.length - t.length).fill('0');
  return [...h, ...zeros, ...t].map((g) => parseInt(g, 16));
}

/**
 * Every IPv6 address but loopback (::1) and unspecified (::) is personal data: global
 * ones name a subscriber line, link-local ones (fe80::/10) often embed a MAC. Beyond
 * validity (node's isIPv6: a time 12:34:56 or a MAC aa:bb:cc:dd:ee:ff has too few
 * groups, an SDP fingerprint AB:CD:… too many, a Rust path a::b::c two `::`), the
 * shape real addresses have: a hex letter or `::`, and at least 3 groups (or `::` and
 * a full 4-digit group, as in fe80::1), so that a hex-only path `ab::cd` passes. An
 * address with an IPv4 tail (::ffff:203.0.113.9) is left to the IPv4 detector.
 */
function realIpv6(m, line, index) {
  if (/\w/.test(line[index + m.length] || '')) return false;
  let s = m;
  if (!isIPv6(s) && /[.:]$/.test(s) && s !== '::') s = s.slice(0, -1); // end of a sentence, `addr:`
  if (!isIPv6(s) || s.includes('.')) return false;
  const groups = ipv6Groups(s);
  if (groups.slice(0, 7).every((g) => g === 0) && groups[7] <= 1) return false; // ::1, ::
  const written = s.split(':').filter(Boolean);
  if (!/[a-f]/i.test(s) && !s.includes('::')) return false;
  return written.length >= 3 || (s.includes('::') && written.some((g) => g.length === 4));
}

/**
 * A random token rather than a word: both cases, and a digit or many capitals. Random
 * 24 characters from [A-Za-z0-9] lack a digit 1.5% of the time; CamelCase identifiers
 * of the same length (IceConnectionStateChange) have no digit and few capitals.
 * Hex digests, UUIDs and object keys are lowercase: never random by this test.
 */
function randomish(s) {
  const upper = (s.match(/[A-Z]/g) || []).length;
  return /[a-z]/.test(s) && upper > 0 && (/\d/.test(s) || upper >= s.length / 4);
}

/** Text just before the match, for detectors that know an innocent context. */
const before = (line, index, n = 40) => line.slice(Math.max(0, index - n), index);

/** Both cases: a face template's base64, not a hex dump or a run of one character. */
const mixedCase = (s) => /[a-z]/.test(s) && /[A-Z]/.test(s);

/** A list of 128+ byte values: every one at most 255 (decimal) or two hex digits. */
const bytesDec = (s) => s.split(/,\s*/).every((n) => Number(n) <= 255);

/**
 * Each detector: a pattern, and a check that a match really is what it names (given
 * the match, its line and its position there).
 */
export const DETECTORS = [
  { what: 'ID number', re: ID_NUMBER, real: () => true },
  { what: 'mobile number', re: MOBILE, real: () => true },
  { what: 'IP address', re: /(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])/g, real: nonLoopbackIp },
  { what: 'IPv6 address', re: IPV6, real: realIpv6 },
  { what: 'bearer token', re: /bearer\s+[A-Za-z0-9._~+/=-]{16,}/gi, real: () => true },
  { what: 'room token', re: /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}/g, real: () => true },
  // Session, device and face-check tokens (accounts/session.rs new_token,
  // verification/attempts.rs random_token): 32 random bytes, base64url (43 characters).
  { what: 'session or device token', re: /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g, real: randomish },
  // A recording's play/download link (recordings/http.rs link_token): 24 random bytes,
  // base64url (32 characters). A Firefox ICE password is 32 hex digits: lowercase.
  { what: 'link token', re: /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{32}(?![A-Za-z0-9_-])/g, real: randomish },
  // An invite code (calls/service.rs invite_code): 24 of [A-Za-z0-9]. It opens the
  // customer's side of a call (/invite/{code}, /api/v1/invites/{code}/accept). A
  // browser's ICE password has the same shape (24 of base64's alphabet, often without
  // + or /); it is a per-session STUN credential that str0m's `is` logs as
  // `pass: "…"` and SDP carries as `a=ice-pwd:`, not one of ours.
  {
    what: 'invite code',
    re: /(?<![A-Za-z0-9_-])[A-Za-z0-9]{24}(?![A-Za-z0-9_-])/g,
    real: (s, line, i) => randomish(s) && !/(?:\bpass: "|ice-pwd:)$/.test(before(line, i)),
  },
  // 32 random bytes in standard base64 (the data key, accounts/secrets.rs), and a TURN
  // REST credential (rooms/turn.rs: base64 of an HMAC-SHA1, 20 bytes). A WebSocket
  // handshake's Sec-WebSocket-Accept has the TURN credential's shape: not a secret.
  { what: 'key (base64)', re: /(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=(?![A-Za-z0-9+/=])/g, real: () => true },
  {
    what: 'TURN credential',
    re: /(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{27}=(?![A-Za-z0-9+/=])/g,
    real: (s, line, i) => !/sec-websocket-accept\W*$/i.test(before(line, i)),
  },
  // The embedded object store's secret key (recordings/storage.rs): 24 random bytes in
  // hex. Digests are 32, 40 or 64 hex digits; the access key is `kefu` + 16.
  { what: 'object-store secret key', re: /(?<![0-9A-Za-z])[0-9a-f]{48}(?![0-9A-Za-z])/g, real: () => true },
  // A password written out (accounts/password.rs generate_password: 16 characters;
  // at least 10 otherwise): by the field it is in, since 16 random characters also
  // make a str0m cname. Not password_hash, not a redacted value, not a word of an
  // error message (`password: incorrect`).
  {
    what: 'password',
    re: /(?<![A-Za-z_])(?:password|passwd)(?![A-Za-z_])["']?\s*[:=]\s*["']?[^\s"',;)\]}]{8,}/gi,
    real: (s) => {
      const value = s.replace(/^[^:=]*[:=]\s*["']?/, '');
      return !/redacted|sensitive|\*{3}/i.test(value) && !/^[a-z]+$/.test(value);
    },
  },
  // A face template (vision: 128 floats; references stored as their 512 bytes): as
  // floats (Rust prints small ones as 1e-5), as its bytes (Debug of a Vec<u8>, decimal
  // or {:x?}), or as a long base64 or base64url run.
  { what: 'face template', re: /(?:-?(?:\d\.\d+(?:e-?\d+)?|\de-?\d+),\s*){64,}/g, real: () => true },
  { what: 'face template', re: /(?<![\w.])(?:\d{1,3},\s*){127,}\d{1,3}(?![\w.])/g, real: bytesDec },
  { what: 'face template', re: /(?<![\w.])(?:(?:0x)?[0-9a-fA-F]{1,2},\s*){127,}(?:0x)?[0-9a-fA-F]{1,2}(?![\w.])/g, real: () => true },
  { what: 'face template', re: /[A-Za-z0-9+/]{400,}={0,2}/g, real: mixedCase },
  { what: 'face template', re: /[A-Za-z0-9_-]{400,}/g, real: mixedCase },
];

/**
 * A log line as the detectors read it: without ANSI colours (tracing colours field
 * names, so a value directly follows an `m`: `\x1b[0m13812345678`), with escaped
 * newlines and tabs of a Debug-printed string as spaces (`"\n13812345678"`), and
 * percent-encoding decoded (`phone=%2B8613812345678` in a logged URI).
 */
export function normalize(line) {
  return line
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    .replace(/\\[nrt]/g, ' ')
    .replace(/%([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
}

/** The hits in `text`: { what, line, sample } (the sample masked). */
export function scan(text) {
  const hits = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = normalize(raw);
    const seen = new Set();
    for (const d of DETECTORS) {
      for (const m of line.matchAll(d.re)) {
        const key = `${d.what}@${m.index}`;
        if (seen.has(key) || !d.real(m[0], line, m.index)) continue;
        seen.add(key);
        hits.push({ what: d.what, line: i + 1, sample: `${m[0].slice(0, 3)}…(${m[0].length})` });
      }
    }
  });
  return hits;
}

/** A fixed pseudo-random string over `alphabet` (the self-test needs no real secret). */
function fakeRandom(alphabet, n, seed) {
  let x = seed;
  let s = '';
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s += alphabet[(x >>> 16) % alphabet.length];
  }
  return s;
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const B64URL = `${ALNUM}-_`;
const B64 = `${ALNUM}+/`;

export function selfTest() {
  const inviteCode = fakeRandom(ALNUM, 24, 7);
  const linkToken = fakeRandom(B64URL, 32, 11);
  const sessionToken = fakeRandom(B64URL, 43, 13);
  const templateBytes = Array.from({ length: 512 }, (_, i) => (i * 37) % 256);
  const planted = [
    // [kind expected, line]
    ['ID number', 'login ok id=110101199003071234'],
    ['mobile number', 'calling 13812345678'],
    ['mobile number', 'calling +86 13812345678'],
    ['mobile number', 'calling +8613812345678'],
    ['mobile number', 'calling 0086 138 1234 5678'],
    ['mobile number', 'calling 86-138-1234-5678'],
    ['mobile number', 'calling 138-1234-5678'],
    ['mobile number', 'calling 138 1234 5678'],
    ['mobile number', 'phone="+86-13812345678"'],
    // tracing's colours: the value right after an escape's `m`.
    ['mobile number', '\x1b[3mphone\x1b[0m\x1b[2m=\x1b[0m13812345678 \x1b[3mid\x1b[0m\x1b[2m=\x1b[0m110101199003071234'],
    ['ID number', '\x1b[3mid\x1b[0m\x1b[2m=\x1b[0m110101199003071234'],
    // A Debug-printed string's escaped newline; a percent-encoded query.
    ['mobile number', 'db.statement="\\n13812345678\\n"'],
    ['mobile number', 'uri=/api/v1/customers?phone=%2B8613812345678'],
    ['IP address', 'peer 203.0.113.9:5000'],
    ['IPv6 address', 'peer [2001:db8::5]:5000'],
    ['IPv6 address', 'Candidate(host=[2408:8207:1850:3ab0:1c2f:7aa9:e8b4:c21d]:51234/udp prio=2130706175)'],
    ['IPv6 address', 'a=candidate:1 1 udp 2122262783 2408:8207:1850:3ab0::c21d 51234 typ host'],
    ['IPv6 address', 'from 2001:0db8:0000:0000:0000:ff00:0042:8329'],
    ['IPv6 address', 'link-local fe80::1c2f:7aa9:e8b4:c21d%eth0 up'],
    ['IPv6 address', 'link-local fe80::1.'],
    ['IPv6 address', 'client 240e:3a1:4c2:9f0::23: refused'],
    ['bearer token', 'authorization: Bearer abcdefghijklmnopqrstuvwxyz0123'],
    ['room token', 'token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlc2lnbmF0dXJl'],
    ['session or device token', 'session Q2xZc3RhbmRzdGlsbC1zb21ldGhpbmctMzItYnl0ZXM'],
    ['session or device token', `device=${sessionToken}`],
    ['link token', `GET /media/${linkToken} 200`],
    ['link token', 'play link QwErTyUiOpAsDfGhJkLzXcVbNm-_QwEr'], // no digit, many capitals
    ['invite code', `GET /invite/${inviteCode} 200`],
    ['invite code', `invite_code=${inviteCode}`],
    ['invite code', 'code XkQPmZRtWbYvNcLaHsJdGfEu'], // no digit, many capitals
    ['key (base64)', 'data key q8P3/7wM2+Zb9kVx1YhQe0TfGsRc4NaLjU6dHiKoAmE='],
    ['TURN credential', 'turn credential=kZ3p+Qw9/Lx2Rb7Ns4Tc8Vd1Hj0='],
    ['object-store secret key', 'secret_key: "3f9a1c7e5b2d4068a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9"'],
    ['password', 'password: "Xk7mPq2RtWb9vNcL"'],
    ['password', 'request body {"login":"agent1","password":"hunter2hunter2"}'],
    ['face template', `template ${Array.from({ length: 80 }, (_, i) => (i / 100).toFixed(4)).join(', ')}`],
    ['face template', `template [${Array.from({ length: 80 }, (_, i) => (i % 3 ? (i / 1000).toFixed(6) : '1e-5')).join(', ')}]`],
    ['face template', `bytes=[${templateBytes.join(', ')}]`],
    ['face template', `bytes=[${templateBytes.map((b) => b.toString(16)).join(', ')}]`],
    ['face template', `reference=${fakeRandom(B64, 684, 17)}`],
    ['face template', `reference=${fakeRandom(B64URL, 684, 19)}`],
  ];
  for (const [what, line] of planted) {
    const hits = scan(line);
    if (!hits.some((h) => h.what === what)) {
      throw new Error(`self-test: no ${what} found in a planted line: ${line} (${JSON.stringify(hits)})`);
    }
  }
  const fingerprint = Array.from({ length: 32 }, (_, i) => ((i * 53 + 11) % 256).toString(16).toUpperCase().padStart(2, '0')).join(':');
  const clean = [
    'at 1796076966669 ms, 127.0.0.1:40715 connected, room 0b6f2c1e-8a1f-4c55-9f3d-2f1b7f4a9e10',
    'str0m 0.25.0, version 1.2.3, 1500 bytes',
    'id_number_masked=110***********1234',
    'Signature=aacb817d6d579c0a40bf12246e2993ccc9aed98617503731525e6c231d84167d',
    // Times, durations, counters.
    '2026-11-30T23:18:01.014033Z DEBUG up 01:42:14, elapsed=12:34:56.789 +00:00:00}:prepare',
    'elapsed=45.117µs elapsed_secs=4.5117e-5 idle 899.999962745s elapsed_secs=0.13812345678',
    'prio=2130706175 ssrc=3735928559 size=4487850 rows 8613812345678',
    // Ids and digests.
    'id 0B6F2C1E-8A1F-4C55-9F3D-2F1B7F4A9E10 lease 0b6f2c1e8a1f4c559f3d2f1b7f4a9e10',
    'md5_sum=c34d0ed63602107c9585ec404aaa7952 etag "c34d0ed63602107c9585ec404aaa7952" TypeId(0xf11acba4da1523504e567ae9585c7a44)',
    'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709',
    'Credential=kefuedced98ac6b5b49c/20261130/us-east-1/s3/aws4_request',
    'path="/kefu-recordings/enterprise/0b6f2c1e-8a1f-4c55-9f3d-2f1b7f4a9e10/recordings/2026/11/30/0b6f2c1e-8a1f-4c55-9f3d-2f1b7f4a9e10.webm"',
    // SDP and ICE: a DTLS fingerprint, loopback candidates, a browser's ICE credentials.
    `a=fingerprint:sha-256 ${fingerprint}`,
    'a=candidate:1 1 udp 2130706431 127.0.0.1 48604 typ host',
    'Add local candidate (0): Candidate(host=127.0.0.1:48604/udp prio=2130706175)',
    'IceCreds { ufrag: "Qbm3", pass: "gCBd4wPybMu1wIomWiK6cTeW" }',
    'a=ice-ufrag:Qbm3 a=ice-pwd:gCBd4wPybMu1wIomWiK6cTeW',
    'cname: Some("a8vsbZYyNychNvfQ"), stream_id: "ZbxyQ2mTnKcLpRsVd4eFgHjAiBoCuD"',
    // Loopback and unspecified IPv6, a mapped loopback IPv4.
    'listening on [::1]:8080 and [::]:8081, 0:0:0:0:0:0:0:1, ::ffff:127.0.0.1, :: bound',
    // Rust paths, a MAC-like id, CamelCase names of token length.
    'kefu_signaling::calls::lifecycle: aws_smithy_runtime::client::orchestrator <impl Foo as Bar>::baz abc::def::fed ab::cd <Bed as Add>::add face::detect',
    'dev aa:bb:cc:dd:ee:ff IceConnectionStateChange(Checking) ReconnectOnTransientError',
    'CompleteMultipartUploadOutput InitiateMultipartUploadResult SignatureAndHashAlgorithm',
    // Redacted values; a password hash's column; short lists.
    'password: {REDACTED} password_hash=$1 password=*** SecretKey("[SENSITIVE-SECRET-KEY]")',
    'login failed: password: incorrect; field "password": 1–256 characters',
    'payload types [96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 111, 112]',
    'loss 100% at %20',
    // Shapes next to the secrets' ones: an object key of 43 lowercase characters, a
    // WebSocket handshake's accept hash, sample counts past 255, a lowercase hex dump.
    'object frames-0b6f2c1e-8a1f-4c55-9f3d-2f1b7f4a9e10 stored',
    'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=',
    `samples [${Array.from({ length: 130 }, (_, i) => 200 + i).join(', ')}]`,
    `payload=${'0123456789abcdef'.repeat(30)}`,
  ];
  for (const line of clean) {
    const hits = scan(line);
    if (hits.length) throw new Error(`self-test: a clean line flagged (${hits[0].what} ${hits[0].sample}): ${line}`);
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
