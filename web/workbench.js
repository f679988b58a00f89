// Agent workbench: sign in, presence, the verification gate, outgoing calls.
'use strict';

(function () {
  const wb = (window.workbench = { token: sessionStorage.getItem('kefu.session'), me: null, call: null, lastError: null });
  const $ = (id) => document.getElementById(id);

  async function api(method, path, body) {
    const res = await fetch(`/api/v1${path}`, {
      method,
      headers: {
        ...(wb.token ? { authorization: `Bearer ${wb.token}` } : {}),
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = text;
    }
    if (res.status === 401 && path !== '/auth/login') signOut();
    return { status: res.status, data };
  }

  function signOut() {
    sessionStorage.removeItem('kefu.session');
    wb.token = null;
    if (wb.events) wb.events.close();
    wb.events = null;
    $('desk').hidden = true;
    $('login-panel').hidden = false;
  }

  async function refreshGate() {
    const { status, data } = await api('GET', '/me/verification-gate');
    if (status !== 200) return;
    $('gate').textContent = KefuStrings.t(data.verification_required ? 'wb.gate_required' : 'wb.gate_ok');
    $('gate').dataset.kind = data.verification_required ? 'warn' : 'ok';
  }

  async function loadDesk() {
    const { status, data } = await api('GET', '/me');
    if (status !== 200) return;
    wb.me = data;
    $('who').textContent = `${data.real_name} (${data.login})`;
    $('login-panel').hidden = true;
    $('desk').hidden = false;
    $('accepting').checked = data.status === 'online' && data.accepting;
    // Without the video service there are no call buttons at all.
    $('call-buttons').hidden = !data.video_enabled;
    $('no-service').hidden = data.video_enabled;
    KefuCall.setStatus('wb.signed_in');
    await refreshGate();
    listen();
    pollRecordings();
  }

  // The agent's recordings (calls it took part in), newest first. Processing ones show
  // a loading state and turn playable by themselves.
  async function loadRecordings() {
    const { status, data } = await api('GET', '/recordings');
    if (status !== 200) return [];
    const list = $('recording-list');
    list.replaceChildren();
    for (const r of data.slice(0, 20)) {
      const li = document.createElement('li');
      li.dataset.id = r.id;
      li.dataset.state = r.state;
      const label = document.createElement('span');
      label.textContent = `${r.name} ${r.duration || ''} `;
      li.append(label);
      if (r.state === 'ready') {
        const b = document.createElement('button');
        b.textContent = KefuStrings.t('wb.play');
        b.onclick = async () => {
          const link = await api('POST', `/recordings/${r.id}/play`);
          if (link.status !== 200) return;
          const player = $('record-player');
          player.hidden = false;
          player.src = link.data.url;
          player.play().catch(() => {});
        };
        li.append(b);
      } else {
        const s = document.createElement('span');
        s.className = `state-${r.state}`;
        s.textContent = KefuStrings.t(`wb.rec.${r.state}`);
        li.append(s);
      }
      list.append(li);
    }
    return data;
  }

  async function pollRecordings() {
    while (wb.token) {
      const data = await loadRecordings();
      // Poll quickly only while something is on its way.
      const busy = data.some((r) => r.state === 'recording' || r.state === 'processing');
      await new Promise((r) => setTimeout(r, busy ? 1000 : 5000));
    }
  }

  function showError(text) {
    wb.lastError = text;
    $('call-error').textContent = text;
    $('call-error').hidden = !text;
  }

  async function startCall(kind) {
    showError('');
    const { status, data } = await api('POST', '/calls', { kind });
    if (status !== 201) {
      showError(KefuStrings.errorText(data));
      await refreshGate();
      return;
    }
    wb.call = data;
    $('invite').hidden = false;
    $('cancel-call').hidden = false;
    $('invite-url').value = data.invite_url;
    const qr = await fetch(`/api/v1/calls/${data.id}/invite.svg`, { headers: { authorization: `Bearer ${wb.token}` } });
    $('invite-qr').src = URL.createObjectURL(await qr.blob());
    $('call-buttons').hidden = true;
    $('tiles').hidden = false;
    $('hang-up').hidden = false;
    const ticket = await api('GET', `/calls/${data.id}/room-token`);
    KefuCall.join({ token: ticket.data.room_token, kind, cameraOn: kind === 'video' });
    await refreshGate();
  }

  // The event channel (/ws/events): the server pushes the queue and this agent's
  // calls as they change; nothing is polled. A dropped channel comes back after a
  // second and starts with a fresh snapshot (and the current call re-read once).
  function listen() {
    if (!wb.token || (wb.events && wb.events.readyState <= 1)) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws/events`);
    wb.events = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'subscribe', session: wb.token }));
    ws.onmessage = (e) => onEvent(JSON.parse(e.data));
    ws.onclose = () => {
      if (wb.events !== ws || !wb.token || wb.eventsRefused) return;
      wb.events = null;
      setTimeout(async () => {
        listen();
        if (wb.call) {
          const { status, data } = await api('GET', `/calls/${wb.call.id}`);
          if (status === 200) showCall(data);
        }
      }, 1000);
    };
  }

  function onEvent(msg) {
    // A refused subscription: an ended session signs out; nothing else is retried.
    if (msg.type === 'error') {
      if (msg.code === 'unauthorized') signOut();
      else wb.eventsRefused = msg.code;
      return;
    }
    if (msg.type === 'queue') showQueue(msg);
    else if (msg.type === 'call' && wb.call && msg.call.id === wb.call.id) showCall(msg.call);
  }

  function showQueue(data) {
    $('queue-count').textContent = data.waiting;
    const ring = !wb.call && data.ringing[0];
    wb.ringing = ring || null;
    $('incoming').hidden = !ring;
    if (ring) $('incoming-kind').textContent = KefuStrings.t(`wb.kind.${ring.kind}`);
  }

  function showCall(data) {
    if (!wb.call) return;
    $('call-state').textContent = KefuStrings.t(`wb.state.${data.state}`);
    $('call-state').dataset.state = data.state;
    if (data.state === 'connected' && wb.call.state !== 'connected') showRecordingNotice();
    wb.call.state = data.state;
    // Cancelling only makes sense before the call connects.
    $('cancel-call').hidden = data.direction !== 'agent_initiated' || !['inviting', 'ringing', 'connecting'].includes(data.state);
    if (['ended', 'cancelled', 'rejected', 'timed_out', 'failed'].includes(data.state)) endCall();
  }

  async function answer() {
    const ring = wb.ringing;
    if (!ring) return;
    const { status, data } = await api('POST', `/calls/${ring.id}/accept`);
    if (status !== 200) {
      showError(KefuStrings.errorText(data));
      return;
    }
    wb.call = data;
    $('incoming').hidden = true;
    $('call-buttons').hidden = true;
    $('tiles').hidden = false;
    $('hang-up').hidden = false;
    const ticket = await api('GET', `/calls/${data.id}/room-token`);
    KefuCall.join({ token: ticket.data.room_token, kind: data.kind, cameraOn: data.kind === 'video' });
  }

  // Beauty dialog: opens on the last confirmed settings (natural the first time);
  // cancel sends nothing; confirm saves and applies at once (also to a live call);
  // reset goes back to natural.
  const BEAUTY_KEYS = ['smoothing', 'whitening', 'ruddiness', 'sharpness'];

  function showBeauty(view) {
    wb.beautyPresets = view.presets;
    $('beauty-preset').value = view.preset;
    for (const k of BEAUTY_KEYS) $(`beauty-${k}`).value = String(view.params[k]);
    $('beauty-error').hidden = true;
  }

  async function openBeauty() {
    const { status, data } = await api('GET', '/me/beauty');
    if (status !== 200) return;
    showBeauty(data);
    $('beauty-dialog').showModal();
    openPreview();
  }

  /** What the dialog shows now (tried, not yet confirmed). */
  function beautyDraft() {
    const params = Object.fromEntries(BEAUTY_KEYS.map((k) => [k, Number($(`beauty-${k}`).value)]));
    return { preset: $('beauty-preset').value, params };
  }

  function beautyPresetChanged() {
    const p = (wb.beautyPresets || []).find((x) => x.name === $('beauty-preset').value);
    if (p) for (const k of BEAUTY_KEYS) $(`beauty-${k}`).value = String(p.params[k]);
    tryInPreview();
  }

  // The preview is the server-processed stream, not the local camera: the camera goes
  // to the SFU in the agent's own preview room and comes back through the beauty
  // pipeline with the settings being tried, so what the dialog shows is what a
  // customer would get. Closing the dialog closes it; nothing tried here is saved.
  const preview = (window.kefuPreview = { pc: null, ws: null, camera: null, tries: 0 });

  async function openPreview() {
    closePreview();
    const note = $('beauty-preview-note');
    const { status, data } = await api('POST', '/me/beauty/preview', beautyDraft());
    if (status !== 201) {
      note.textContent = KefuStrings.t('wb.beauty_preview_unavailable');
      return;
    }
    let camera;
    try {
      camera = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
      });
    } catch (e) {
      note.textContent = KefuStrings.t('wb.beauty_camera_unavailable');
      return;
    }
    let pc = null;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    Object.assign(preview, { ws, camera });
    const send = (msg) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg)); };
    ws.onopen = () => send({ type: 'join', token: data.room_token });
    ws.onmessage = async (e) => {
      const msg = JSON.parse(e.data);
      if (msg.type === 'joined') {
        // The same ICE servers and policy as a call.
        pc = new RTCPeerConnection({
          bundlePolicy: 'max-bundle',
          iceServers: msg.ice_servers || [],
          iceTransportPolicy: msg.ice_transport_policy || 'all',
        });
        preview.pc = pc;
        pc.addTransceiver(camera.getVideoTracks()[0], { direction: 'sendrecv', streams: [camera] });
        pc.ontrack = (ev) => { $('beauty-preview').srcObject = new MediaStream([ev.track]); };
        pc.onicecandidate = (ev) => send({
          type: 'candidate',
          candidate: ev.candidate ? ev.candidate.candidate : null,
          sdp_mid: ev.candidate ? ev.candidate.sdpMid : null,
          sdp_m_line_index: ev.candidate ? ev.candidate.sdpMLineIndex : null,
        });
        const offer = await pc.createOffer();
        await pc.setLocalDescription(offer);
        send({ type: 'offer', sdp: offer.sdp });
      } else if (msg.type === 'answer') {
        await pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
      } else if (msg.type === 'error') {
        note.textContent = KefuStrings.t('wb.beauty_preview_error');
      }
    };
  }

  function closePreview() {
    if (!preview.ws) return;
    if (preview.ws.readyState === WebSocket.OPEN) preview.ws.send(JSON.stringify({ type: 'leave' }));
    preview.ws.close();
    if (preview.pc) preview.pc.close();
    preview.camera.getTracks().forEach((t) => t.stop());
    $('beauty-preview').srcObject = null;
    Object.assign(preview, { pc: null, ws: null, camera: null });
    api('DELETE', '/me/beauty/preview');
  }

  // Sliders move many times a second: send the newest settings at most every 150 ms.
  let tryTimer = null;
  function tryInPreview() {
    if (tryTimer) return;
    tryTimer = setTimeout(async () => {
      tryTimer = null;
      const { status } = await api('PUT', '/me/beauty/preview', beautyDraft());
      if (status === 204) preview.tries += 1;
    }, 150);
  }

  async function confirmBeauty() {
    const { status, data } = await api('PUT', '/me/beauty', beautyDraft());
    if (status !== 200) {
      $('beauty-error').textContent = KefuStrings.errorText(data, 'wb.beauty_not_saved');
      $('beauty-error').hidden = false;
      return;
    }
    $('beauty-dialog').close();
  }

  async function resetBeauty() {
    const { status, data } = await api('POST', '/me/beauty/reset');
    if (status === 200) {
      showBeauty(data);
      tryInPreview();
    }
  }

  // Every connected call is recorded; the agent is told for one second.
  function showRecordingNotice() {
    const n = $('recording-notice');
    n.hidden = false;
    wb.recordingNoticeShownAt = Date.now();
    setTimeout(() => { n.hidden = true; }, 1000);
  }

  function endCall() {
    KefuCall.hangUp();
    wb.call = null;
    $('invite').hidden = true;
    $('hang-up').hidden = true;
    $('tiles').hidden = true;
    $('call-buttons').hidden = !(wb.me && wb.me.video_enabled);
  }

  window.addEventListener('DOMContentLoaded', () => {
    $('beauty-open').onclick = openBeauty;
    $('beauty-preset').onchange = beautyPresetChanged;
    $('beauty-confirm').onclick = confirmBeauty;
    $('beauty-cancel').onclick = () => $('beauty-dialog').close();
    $('beauty-reset').onclick = resetBeauty;
    for (const k of BEAUTY_KEYS) $(`beauty-${k}`).oninput = tryInPreview;
    // Confirm, cancel and Esc all close the dialog, and the preview with it.
    $('beauty-dialog').addEventListener('close', closePreview);
    $('login-form').onsubmit = async (e) => {
      e.preventDefault();
      const { status, data } = await api('POST', '/auth/login', { login: $('login').value, password: $('password').value });
      if (status !== 200) {
        $('login-error').textContent = KefuStrings.t(status === 429 ? 'error.too_many_requests' : 'wb.wrong_login');
        return;
      }
      wb.token = data.token;
      sessionStorage.setItem('kefu.session', data.token);
      await loadDesk();
    };
    $('accepting').onchange = async (e) => {
      const on = e.target.checked;
      await api('PUT', '/me/presence', { status: on ? 'online' : 'away', accepting: on });
    };
    $('video-call').onclick = () => startCall('video');
    $('voice-call').onclick = () => startCall('voice');
    $('cancel-call').onclick = async () => {
      if (wb.call) await api('POST', `/calls/${wb.call.id}/cancel`);
    };
    $('hang-up').onclick = endCall;
    $('answer').onclick = answer;
    $('decline').onclick = async () => {
      if (wb.ringing) await api('POST', `/calls/${wb.ringing.id}/cancel`);
    };
    if (wb.token) loadDesk();
  });
})();
