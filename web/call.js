// kefu call client, shared by every page that joins a call.
//
// KefuCall.join({ token, kind, cameraOn }) joins the room named in a room token through
// the signaling WebSocket, publishes the microphone (and camera, for video calls) to
// the SFU and plays what the other participant sends. Protocol: docs/signaling.md.
// State is exposed on window.kefu for tests.
'use strict';

(function () {
  const kefu = (window.kefu = {
    pc: null, ws: null, state: 'idle', peers: [], errors: [], kind: null, mediaUp: false,
  });

  function setStatus(text, kind) {
    kefu.state = text;
    const el = document.getElementById('status');
    if (el) {
      el.textContent = text;
      el.dataset.kind = kind || 'info';
    }
  }

  // The call status follows from two facts the server tells us: whether our media
  // reached the SFU (media_connected) and whether the other side is in the room.
  function showCallStatus() {
    if (!kefu.peers.length) setStatus('Waiting for the other side…');
    else if (kefu.mediaUp) setStatus('In call', 'ok');
    else setStatus('Connecting…');
  }

  function send(msg) {
    if (kefu.ws && kefu.ws.readyState === WebSocket.OPEN) kefu.ws.send(JSON.stringify(msg));
  }

  const VIDEO = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };

  async function startMedia(opts) {
    const wantVideo = opts.kind === 'video';
    // A voice call never asks for the camera; a video call may start with it off.
    const local = await navigator.mediaDevices.getUserMedia({
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
      if (pc.connectionState === 'failed') setStatus('Media connection failed', 'error');
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    send({ type: 'offer', sdp: offer.sdp });
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
        kefu.peers = msg.peers;
        showCallStatus();
        try {
          await startMedia({ ...opts, iceServers: msg.ice_servers, iceTransportPolicy: msg.ice_transport_policy });
        } catch (e) {
          setStatus('Camera or microphone unavailable: ' + e.message, 'error');
        }
        break;
      case 'answer':
        await kefu.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
        break;
      case 'peer_joined':
        kefu.peers.push({ participant: msg.participant, role: msg.role });
        showCallStatus();
        break;
      case 'peer_left':
        kefu.peers = kefu.peers.filter((p) => p.participant !== msg.participant);
        setStatus('The other side left', 'warn');
        break;
      case 'media_connected':
        kefu.mediaUp = true;
        showCallStatus();
        break;
      case 'media_disconnected':
        kefu.mediaUp = false;
        setStatus('Media disconnected', 'error');
        break;
      case 'error':
        kefu.errors.push(msg);
        setStatus(msg.message, 'error');
        break;
    }
    if (opts.onMessage) opts.onMessage(msg);
  }

  function hangUp() {
    send({ type: 'leave' });
    if (kefu.pc) kefu.pc.close();
    if (kefu.local) kefu.local.getTracks().forEach((t) => t.stop());
    setStatus('Call ended');
  }

  /** Joins a call. opts: { token, kind: 'video'|'voice', cameraOn, onMessage }. */
  function join(opts) {
    kefu.kind = opts.kind;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    kefu.ws = ws;
    setStatus('Connecting…');
    ws.onopen = () => send({ type: 'join', token: opts.token });
    ws.onmessage = (e) => onMessage(JSON.parse(e.data), opts);
    ws.onclose = () => {
      if (kefu.state !== 'Call ended' && !kefu.errors.length) setStatus('Disconnected from the server', 'warn');
    };
  }

  window.KefuCall = { join, hangUp, setCamera, setStatus };

  // The demo pages (/agent, /customer) carry a room token in ?token=.
  window.addEventListener('DOMContentLoaded', () => {
    if (!document.body.dataset.demo) return;
    const token = new URLSearchParams(location.search).get('token');
    if (!token) {
      setStatus('This link has no room token. Ask for a new link.', 'error');
      return;
    }
    const hang = document.getElementById('hang-up');
    if (hang) hang.onclick = hangUp;
    join({ token, kind: 'video', cameraOn: true });
  });
})();
