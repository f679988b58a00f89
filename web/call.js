// kefu call client, shared by the agent and customer pages.
//
// Joins the room named in the page's ?token= through the signaling WebSocket,
// publishes camera + microphone to the SFU and plays what the other participant
// sends. Protocol: docs/signaling.md. State is exposed on window.kefu for tests.
'use strict';

(function () {
  const kefu = (window.kefu = { pc: null, ws: null, state: 'idle', peers: [], errors: [] });

  function setStatus(text, kind) {
    kefu.state = text;
    const el = document.getElementById('status');
    if (el) {
      el.textContent = text;
      el.dataset.kind = kind || 'info';
    }
  }

  function send(msg) {
    if (kefu.ws && kefu.ws.readyState === WebSocket.OPEN) kefu.ws.send(JSON.stringify(msg));
  }

  async function startMedia() {
    const local = await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
    });
    document.getElementById('local-video').srcObject = local;

    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', iceServers: [] });
    kefu.pc = pc;
    // One sendrecv line per kind: the SFU sends the other participant's media back on it.
    for (const kind of ['audio', 'video']) {
      const track = local.getTracks().find((t) => t.kind === kind);
      if (track) pc.addTransceiver(track, { direction: 'sendrecv', streams: [local] });
      else pc.addTransceiver(kind, { direction: 'recvonly' });
    }
    const remote = new MediaStream();
    const remoteVideo = document.getElementById('remote-video');
    const remoteAudio = document.getElementById('remote-audio');
    remoteVideo.srcObject = remote;
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

  function showUnmute() {
    const b = document.getElementById('unmute');
    if (!b) return;
    b.hidden = false;
    b.onclick = () => {
      document.getElementById('remote-audio').play();
      b.hidden = true;
    };
  }

  async function onMessage(msg) {
    switch (msg.type) {
      case 'joined':
        kefu.peers = msg.peers;
        setStatus(msg.peers.length ? 'Connecting…' : 'Waiting for the other side…');
        try {
          await startMedia();
        } catch (e) {
          setStatus('Camera or microphone unavailable: ' + e.message, 'error');
        }
        break;
      case 'answer':
        await kefu.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
        break;
      case 'peer_joined':
        kefu.peers.push({ participant: msg.participant, role: msg.role });
        setStatus('Connecting…');
        break;
      case 'peer_left':
        kefu.peers = kefu.peers.filter((p) => p.participant !== msg.participant);
        setStatus('The other side left', 'warn');
        break;
      case 'media_connected':
        setStatus(kefu.peers.length ? 'In call' : 'Waiting for the other side…', 'ok');
        break;
      case 'media_disconnected':
        setStatus('Media disconnected', 'error');
        break;
      case 'error':
        kefu.errors.push(msg);
        setStatus(msg.message, 'error');
        break;
    }
    if (msg.type === 'peer_joined' && kefu.pc && kefu.pc.connectionState === 'connected') {
      setStatus('In call', 'ok');
    }
  }

  function hangUp() {
    send({ type: 'leave' });
    if (kefu.pc) kefu.pc.close();
    for (const id of ['local-video', 'remote-video']) {
      const v = document.getElementById(id);
      if (v.srcObject) v.srcObject.getTracks().forEach((t) => t.stop());
    }
    setStatus('Call ended');
  }

  window.addEventListener('DOMContentLoaded', () => {
    const token = new URLSearchParams(location.search).get('token');
    if (!token) {
      setStatus('This link has no room token. Ask for a new link.', 'error');
      return;
    }
    const hang = document.getElementById('hang-up');
    if (hang) hang.onclick = hangUp;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    kefu.ws = ws;
    setStatus('Connecting…');
    ws.onopen = () => send({ type: 'join', token });
    ws.onmessage = (e) => onMessage(JSON.parse(e.data));
    ws.onclose = (e) => {
      if (kefu.state !== 'Call ended' && !kefu.errors.length) setStatus('Disconnected from the server', 'warn');
    };
  });
})();
