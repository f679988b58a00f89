// kefu call client, shared by every page that joins a call.
//
// KefuCall.join({ token, kind, cameraOn }) joins the room named in a room token through
// the signaling WebSocket, publishes the microphone (and camera, for video calls) to
// the SFU and plays what the other participant sends. Protocol: docs/signaling.md.
// When the network changes, the call goes on: a lost ICE path is restarted on the same
// peer connection, and a WebSocket that drops is opened again and re-joins (the server
// keeps our place for a while). State is exposed on window.kefu for tests.
'use strict';

(function () {
  const kefu = (window.kefu = {
    pc: null, ws: null, state: 'idle', peers: [], errors: [], kind: null, mediaUp: false,
    iceRestarts: 0, reconnects: 0, rejoined: 0, lostAt: null, iceLog: [], wsLog: [],
    role: null, moderation: null, withheld: {},
  });
  // Reconnecting the WebSocket: first retry after this, doubling up to once a second
  // (a new network is usually there at once), for about as long as the server keeps
  // our place (signaling.reconnect_grace_secs).
  const RECONNECT_FIRST_MS = 250;
  const RECONNECT_MAX_MS = 1000;
  const RECONNECT_GIVE_UP_MS = 15000;

  /** Shows the catalogue's text for `key`; `kefu.state` and `#status[data-status]`
   *  keep the key itself, for scripts and tests (never the wording). */
  function setStatus(key, kind) {
    kefu.state = key;
    const el = document.getElementById('status');
    if (el) {
      el.textContent = KefuStrings.t(key);
      el.dataset.status = key;
      el.dataset.kind = kind || 'info';
    }
  }

  /** The moderation notice for `party`'s picture, `state` withheld or restored. */
  function moderationKey(party, state) {
    return `moderation.${state}.${party === kefu.role ? 'self' : 'peer'}`;
  }

  // The call status follows from two facts the server tells us: whether our media
  // reached the SFU (media_connected) and whether the other side is in the room.
  // A withheld picture stays said above both until it is restored: ours first, as only
  // we can act on it (camera off and on).
  function showCallStatus() {
    const withheld = [kefu.role, ...Object.keys(kefu.withheld)].find((p) => kefu.withheld[p]);
    if (withheld) setStatus(moderationKey(withheld, 'withheld'), 'warn');
    else if (!kefu.peers.length) setStatus('call.waiting_other');
    else if (kefu.mediaUp) setStatus('call.in_call', 'ok');
    else setStatus('call.connecting');
  }

  function send(msg) {
    if (kefu.ws && kefu.ws.readyState === WebSocket.OPEN) kefu.ws.send(JSON.stringify(msg));
  }

  const VIDEO = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };

  async function startMedia(opts) {
    const wantVideo = opts.kind === 'video';
    // A voice call never asks for the camera; a video call may start with it off.
    // A peer connection made anew (the server lost ours) keeps the tracks we have.
    const local = kefu.local || await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: wantVideo && opts.cameraOn ? VIDEO : false,
    });
    kefu.local = local;
    const localVideo = document.getElementById('local-video');
    if (localVideo) localVideo.srcObject = local;

    // STUN/TURN (with short-lived credentials) and the relay-only switch come from the
    // server with `joined`.
    const pc = new RTCPeerConnection({
      bundlePolicy: 'max-bundle',
      iceServers: opts.iceServers || [],
      iceTransportPolicy: opts.iceTransportPolicy || 'all',
    });
    kefu.pc = pc;
    // One sendrecv line per kind: the SFU sends the other participant's media back on it.
    // A video line without a camera track still receives, and takes the camera later
    // through replaceTrack, without renegotiation.
    const kinds = wantVideo ? ['audio', 'video'] : ['audio'];
    kefu.videoTransceiver = null;
    for (const kind of kinds) {
      const track = local.getTracks().find((t) => t.kind === kind);
      const transceiver = pc.addTransceiver(track || kind, { direction: 'sendrecv', streams: [local] });
      if (kind === 'video') kefu.videoTransceiver = transceiver;
    }
    const remote = new MediaStream();
    const remoteVideo = document.getElementById('remote-video');
    const remoteAudio = document.getElementById('remote-audio');
    if (remoteVideo) remoteVideo.srcObject = remote;
    remoteAudio.srcObject = remote;
    pc.ontrack = (e) => {
      remote.addTrack(e.track);
      remoteAudio.play().catch(() => showUnmute());
    };
    pc.onicecandidate = (e) => {
      send({
        type: 'candidate',
        candidate: e.candidate ? e.candidate.candidate : null,
        sdp_mid: e.candidate ? e.candidate.sdpMid : null,
        sdp_m_line_index: e.candidate ? e.candidate.sdpMLineIndex : null,
      });
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed') setStatus('call.media_failed', 'error');
    };
    // No path to the SFU any more (Wi-Fi gone, 4G instead): find a new one at once.
    pc.oniceconnectionstatechange = () => {
      const s = pc.iceConnectionState;
      kefu.iceLog.push({ state: s, at: Date.now() });
      if (pc === kefu.pc && (s === 'disconnected' || s === 'failed')) restartIce();
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    send({ type: 'offer', sdp: offer.sdp });
  }

  /** ICE restart on the same peer connection, with fresh TURN credentials if given. */
  async function restartIce(iceServers) {
    const pc = kefu.pc;
    if (!pc || pc.signalingState === 'closed') return;
    if (iceServers) pc.setConfiguration({ ...pc.getConfiguration(), iceServers });
    // One offer at a time, and only over a working WebSocket: the rest waits.
    if (pc.signalingState !== 'stable' || !kefu.ws || kefu.ws.readyState !== WebSocket.OPEN) {
      kefu.restartPending = true;
      return;
    }
    kefu.restartPending = false;
    kefu.iceRestarts += 1;
    const offer = await pc.createOffer({ iceRestart: true });
    await pc.setLocalDescription(offer);
    send({ type: 'restart', sdp: offer.sdp });
  }

  /** Turns the camera on or off during a video call. */
  async function setCamera(on) {
    const t = kefu.videoTransceiver;
    if (!t) return false;
    if (on) {
      const cam = await navigator.mediaDevices.getUserMedia({ video: VIDEO });
      const track = cam.getVideoTracks()[0];
      await t.sender.replaceTrack(track);
      kefu.local.addTrack(track);
    } else if (t.sender.track) {
      const track = t.sender.track;
      await t.sender.replaceTrack(null);
      track.stop();
      kefu.local.removeTrack(track);
    }
    const localVideo = document.getElementById('local-video');
    if (localVideo) localVideo.srcObject = kefu.local;
    kefu.cameraOn = on;
    return on;
  }

  function showUnmute() {
    const b = document.getElementById('unmute');
    if (!b) return;
    b.hidden = false;
    b.onclick = () => {
      document.getElementById('remote-audio').play();
      b.hidden = true;
    };
  }

  async function onMessage(msg, opts) {
    switch (msg.type) {
      case 'joined':
        kefu.lostAt = null;
        kefu.rejoined = kefu.reconnects;
        kefu.role = msg.role;
        kefu.peers = msg.peers;
        kefu.iceConfig = { iceServers: msg.ice_servers, iceTransportPolicy: msg.ice_transport_policy };
        showCallStatus();
        // Back after the WebSocket dropped: the peer connection carries on.
        if (kefu.pc && kefu.pc.signalingState !== 'closed') {
          kefu.restartPending = false;
          if (kefu.pc.signalingState !== 'stable') await kefu.pc.setLocalDescription({ type: 'rollback' });
          await restartIce(msg.ice_servers);
          break;
        }
        try {
          await startMedia({ ...opts, ...kefu.iceConfig });
        } catch (e) {
          setStatus('call.device_unavailable', 'error');
        }
        break;
      case 'answer':
        await kefu.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
        if (kefu.restartPending) await restartIce();
        break;
      case 'peer_joined':
        kefu.peers.push({ participant: msg.participant, role: msg.role });
        showCallStatus();
        break;
      case 'peer_left':
        kefu.peers = kefu.peers.filter((p) => p.participant !== msg.participant);
        setStatus('call.other_left', 'warn');
        break;
      case 'media_connected':
        kefu.mediaUp = true;
        showCallStatus();
        break;
      case 'media_disconnected':
        kefu.mediaUp = false;
        setStatus('call.media_disconnected', 'error');
        break;
      case 'moderation':
        // Both sides hear it; `party` is whose picture moderation acted on.
        kefu.moderation = { party: msg.party, state: msg.state, at: Date.now() };
        document.body.dataset.moderation = msg.state;
        if (msg.state === 'withheld' || msg.state === 'restored') {
          kefu.withheld[msg.party] = msg.state === 'withheld';
          setStatus(moderationKey(msg.party, msg.state), msg.state === 'withheld' ? 'warn' : 'ok');
        }
        break;
      case 'call_ended':
        // The server ended the call (the other side left, a cancel, a shutdown) and
        // closes this connection next: release the camera, do not reconnect.
        kefu.ended = true;
        kefu.endReason = msg.reason;
        if (kefu.pc) kefu.pc.close();
        if (kefu.local) kefu.local.getTracks().forEach((t) => t.stop());
        setStatus(KefuStrings.has(`call.ended.${msg.reason}`) ? `call.ended.${msg.reason}` : 'call.ended');
        break;
      case 'error':
        if (msg.code === 'restart_failed') {
          // The SFU let our peer connection go: offer a new one.
          kefu.pc.close();
          kefu.pc = null;
          await startMedia({ ...opts, ...kefu.iceConfig });
          break;
        }
        kefu.errors.push(msg);
        setStatus(KefuStrings.has(`signal.error.${msg.code}`) ? `signal.error.${msg.code}` : 'signal.error.generic', 'error');
        break;
    }
    if (opts.onMessage) opts.onMessage(msg);
  }

  function hangUp() {
    // Ended by the server already (call_ended): keep the reason it showed.
    const told = kefu.ended;
    kefu.ended = true;
    send({ type: 'leave' });
    if (kefu.pc) kefu.pc.close();
    if (kefu.local) kefu.local.getTracks().forEach((t) => t.stop());
    if (!told) setStatus('call.ended');
  }

  /** Joins a call. opts: { token, kind: 'video'|'voice', cameraOn, onMessage }. */
  function join(opts) {
    kefu.kind = opts.kind;
    // A new call in the same page (the workbench) starts from nothing.
    Object.assign(kefu, { pc: null, local: null, ended: false, lostAt: null, restartPending: false, moderation: null, withheld: {} });
    delete document.body.dataset.moderation;
    setStatus('call.connecting');
    connect(opts);
  }

  function connect(opts) {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    kefu.ws = ws;
    kefu.wsLog.push({ event: 'connect', at: Date.now() });
    ws.onopen = () => {
      kefu.wsLog.push({ event: 'open', at: Date.now() });
      send({ type: 'join', token: opts.token });
    };
    ws.onmessage = (e) => onMessage(JSON.parse(e.data), opts);
    ws.onclose = (e) => {
      kefu.wsLog.push({ event: 'close', code: e.code, at: Date.now() });
      if (ws !== kefu.ws || kefu.ended) return;
      // 1006: the connection broke without a close frame (network change); 1012: the
      // signaling node is stopping and the call goes on through another one. Anything
      // else is a deliberate close, and the error message before it says why.
      // A 1012 before the first offer rejoins too: nothing was lost but the node.
      const broken = (e.code === 1006 && kefu.pc) || e.code === 1012;
      if (broken && !kefu.lostAt) kefu.lostAt = Date.now();
      if (broken && Date.now() - kefu.lostAt < RECONNECT_GIVE_UP_MS) {
        setStatus('call.reconnecting', 'warn');
        const delay = Math.min(RECONNECT_FIRST_MS * 2 ** (kefu.reconnects - kefu.rejoined), RECONNECT_MAX_MS);
        kefu.reconnects += 1;
        setTimeout(() => connect(opts), delay);
        return;
      }
      if (!kefu.ended && !kefu.errors.length) setStatus('call.disconnected', 'warn');
    };
  }

  window.KefuCall = { join, hangUp, setCamera, setStatus };

  // The demo pages (/agent, /customer) carry a room token in ?token=.
  window.addEventListener('DOMContentLoaded', () => {
    if (!document.body.dataset.demo) return;
    const token = new URLSearchParams(location.search).get('token');
    if (!token) {
      setStatus('call.no_token', 'error');
      return;
    }
    const hang = document.getElementById('hang-up');
    if (hang) hang.onclick = hangUp;
    join({ token, kind: 'video', cameraOn: true });
  });
})();
