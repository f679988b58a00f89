// Agent workbench: sign in, presence, the verification gate and its face check,
// outgoing calls.
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
    if ($('verify-dialog').open) closeVerification();
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

  /**
   * Calls a customer out. A call the gate refuses (a face check is due) opens the
   * verification dialog, which asks again by itself once the check passed;
   * `verified` says this is that second ask.
   */
  async function startCall(kind, verified = false) {
    showError('');
    const { status, data } = await api('POST', '/calls', { kind });
    if (status === 403 && data && data.error === 'verification_required' && !verified) {
      await openVerification(kind);
      return;
    }
    if (status !== 201) {
      showError(KefuStrings.errorText(data));
      await refreshGate();
      return;
    }
    wb.call = data;
    // The call a face check asked for is out: the dialog has done its part.
    if (verified) closeVerification();
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

  // The face check before an outgoing call (the dialog). The gate says whether one can
  // be taken at all (enrolled, not locked); an attempt then runs the challenge on this
  // computer's camera (verify.js), or on the agent's phone through a single-use link,
  // after which this page sends no frames and learns the result from the event channel
  // (`verification`), with a slow poll in case the channel missed it. A pass asks for
  // the call again by itself. The dialog's data-phase names where it stands, for tests.
  const verify = (wb.verify = {
    kind: null, attempt: null, run: null, finished: false, gen: 0, timer: null, poll: null,
  });

  function verifyPhase(phase, errorCode) {
    const d = $('verify-dialog');
    d.dataset.phase = phase;
    if (errorCode) d.dataset.error = errorCode;
    else delete d.dataset.error;
  }

  function verifyButtons({ retry = false, phone = false } = {}) {
    $('verify-retry').hidden = !retry;
    $('verify-retry').disabled = false;
    $('verify-use-phone').hidden = !phone;
    $('verify-use-phone').disabled = false;
  }

  function verifyMessage(phase, key, errorCode) {
    verifyPhase(phase, errorCode);
    KefuVerify.message($('verify-prompt'), $('verify-hint'), phase, KefuStrings.t(key));
  }

  function stopVerifyWork() {
    clearTimeout(verify.timer);
    clearInterval(verify.poll);
    verify.timer = null;
    verify.poll = null;
    if (verify.run) verify.run.stop();
    verify.run = null;
  }

  async function openVerification(kind) {
    verify.kind = kind;
    const d = $('verify-dialog');
    $('verify-phone').hidden = true;
    $('verify-qr').replaceChildren();
    $('verify-phone-url').value = '';
    if (!d.open) d.showModal();
    await beginVerification();
  }

  /** One attempt: the gate's facts, a new attempt, the camera, the challenge. */
  async function beginVerification() {
    stopVerifyWork();
    const gen = ++verify.gen;
    verify.attempt = null;
    verify.finished = false;
    $('verify-phone').hidden = true;
    verifyButtons();
    verifyMessage('starting', 'verify.starting');

    const gate = await api('GET', '/me/verification-gate');
    if (gen !== verify.gen) return;
    if (gate.status === 200) {
      if (!gate.data.verification_required) return verificationPassed();
      if (!gate.data.enrolled) return verifyBlocked('not_enrolled');
      if (gate.data.locked) return verifyBlocked('locked');
    }
    const res = await api('POST', '/me/verification/attempts');
    if (gen !== verify.gen) return;
    if (res.status !== 201) return attemptRefused(res);
    verify.attempt = res.data;

    let stream;
    try {
      stream = await KefuVerify.openCamera();
    } catch (_) {
      if (gen !== verify.gen) return;
      // No camera here: the phone can still take the check.
      verifyMessage('camera_unavailable', 'verify.camera_unavailable');
      verifyButtons({ retry: true, phone: true });
      return;
    }
    if (gen !== verify.gen) {
      KefuVerify.stopStream(stream);
      return;
    }
    verifyPhase('running');
    verifyButtons({ phone: true });
    const attempt = res.data;
    verify.run = KefuVerify.run({
      stream,
      video: $('verify-video'),
      prompt: $('verify-prompt'),
      hint: $('verify-hint'),
      intervalMs: attempt.frame_interval_ms,
      maxFrameBytes: attempt.max_frame_bytes,
      initial: attempt.progress,
      send: (blob) => postFrame(attempt.id, blob),
    });
    const result = await verify.run.done;
    if (gen !== verify.gen || result.outcome === 'stopped') return;
    verify.run = null;
    if (result.outcome === 'error') {
      if (result.status === 404 || !(result.data && result.data.error)) {
        // The attempt is over (ran out its time, or another page of this agent began one).
        verifyMessage('error', 'verify.attempt_over', 'attempt_over');
      } else {
        verifyPhase('error', result.data.error);
        KefuVerify.message($('verify-prompt'), $('verify-hint'), 'error', KefuStrings.errorText(result.data));
      }
      verifyButtons({ retry: true });
      return;
    }
    verificationEnded(attempt.id, result);
  }

  /** One JPEG frame of attempt `id`; resolves with the answer. */
  async function postFrame(id, blob) {
    const res = await fetch(`/api/v1/me/verification/attempts/${id}/frames`, {
      method: 'POST',
      headers: { authorization: `Bearer ${wb.token}`, 'content-type': 'image/jpeg' },
      body: blob,
    });
    let data = null;
    try {
      data = await res.json();
    } catch (_) {}
    if (res.status === 401) signOut();
    return { status: res.status, data };
  }

  function verifyBlocked(why) {
    stopVerifyWork();
    verifyMessage(why, why === 'locked' ? 'verify.locked' : 'verify.not_enrolled', why);
    verifyButtons();
    $('verify-cancel').textContent = KefuStrings.t('verify.close');
  }

  function attemptRefused({ status, data }) {
    const code = data && data.error;
    if (code === 'no_face_reference') return verifyBlocked('not_enrolled');
    if (code === 'verification_locked') return verifyBlocked('locked');
    if (code === 'verification_backoff') {
      // Shortly after a failure: count down, then try again by itself.
      const until = Date.now() + Math.max(0, Number(data.detail && data.detail.retry_after_ms) || 1000);
      const gen = verify.gen;
      verifyPhase('backoff', code);
      verifyButtons({ retry: true });
      $('verify-retry').disabled = true;
      const step = () => {
        if (gen !== verify.gen) return;
        const left = until - Date.now();
        if (left <= 0) {
          beginVerification();
          return;
        }
        KefuVerify.message($('verify-prompt'), $('verify-hint'), 'backoff',
          KefuStrings.t('verify.retry_in', { seconds: Math.ceil(left / 1000) }));
        verify.timer = setTimeout(step, Math.min(left, 250));
      };
      step();
      return;
    }
    if (status === 401) return;
    verifyPhase('error', code || `http_${status}`);
    KefuVerify.message($('verify-prompt'), $('verify-hint'), 'error', KefuStrings.errorText(data));
    verifyButtons({ retry: true });
  }

  /** The phone takes over the attempt: this page stops its own frames and waits. */
  async function useVerifyPhone() {
    const attempt = verify.attempt;
    if (!attempt || verify.finished) return;
    const gen = verify.gen;
    $('verify-use-phone').disabled = true;
    const { status, data } = await api('POST', `/me/verification/attempts/${attempt.id}/phone-link`);
    if (gen !== verify.gen || verify.finished) return;
    if (status !== 200) {
      stopVerifyWork();
      if (status === 404) verifyMessage('error', 'verify.attempt_over', 'attempt_over');
      else {
        verifyPhase('error', data && data.error);
        KefuVerify.message($('verify-prompt'), $('verify-hint'), 'error', KefuStrings.errorText(data));
      }
      verifyButtons({ retry: true });
      return;
    }
    stopVerifyWork();
    // The server's own rendering of the link (SVG markup it generated).
    $('verify-qr').innerHTML = data.qr_svg;
    $('verify-phone-url').value = data.url;
    $('verify-phone').hidden = false;
    verifyButtons();
    verifyMessage('phone', 'verify.phone_waiting');
    // The event channel says when the phone is done; this catches a missed event and
    // an attempt that ran out without a single frame (it ends without a result).
    verify.poll = setInterval(() => pollAttempt(gen, attempt.id), 3000);
  }

  async function pollAttempt(gen, id) {
    if (gen !== verify.gen || verify.finished) return;
    const { status, data } = await api('GET', `/me/verification/attempts/${id}`);
    if (gen !== verify.gen || verify.finished) return;
    if (status === 200 && data && ['passed', 'failed'].includes(data.progress.state)) {
      verificationEnded(id, { outcome: data.progress.state, progress: data.progress });
    } else if (status === 404) {
      // Over: a pass shows in the gate; anything else means a new attempt.
      const gate = await api('GET', '/me/verification-gate');
      if (gen !== verify.gen || verify.finished) return;
      if (gate.status === 200 && !gate.data.verification_required) {
        verificationEnded(id, { outcome: 'passed', progress: { state: 'passed' } });
      } else {
        verify.finished = true;
        stopVerifyWork();
        verifyMessage('error', 'verify.attempt_over', 'attempt_over');
        verifyButtons({ retry: true });
      }
    }
  }

  /** Attempt `id` ended (answered a frame here, or the event channel said so). */
  function verificationEnded(id, result) {
    if (!verify.attempt || verify.attempt.id !== id || verify.finished) return;
    verify.finished = true;
    stopVerifyWork();
    KefuVerify.show($('verify-prompt'), $('verify-hint'), result.progress);
    if (result.outcome === 'passed') {
      verificationPassed();
    } else {
      verifyPhase('failed', result.progress && result.progress.reason);
      verifyButtons({ retry: true });
    }
  }

  /** Passed: the dialog closes and the call asked for goes out, without another click. */
  async function verificationPassed() {
    verifyPhase('passed');
    const kind = verify.kind;
    refreshGate();
    if (kind) await startCall(kind, true);
    closeVerification();
  }

  function closeVerification() {
    verify.gen += 1;
    stopVerifyWork();
    verify.attempt = null;
    verify.kind = null;
    $('verify-cancel').textContent = KefuStrings.t('wb.cancel');
    if ($('verify-dialog').open) $('verify-dialog').close();
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
    else if (msg.type === 'verification') verificationEnded(msg.attempt_id, {
      outcome: msg.passed ? 'passed' : 'failed',
      progress: { state: msg.passed ? 'passed' : 'failed', reason: msg.reason, detail: msg.detail },
    });
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
    $('verify-cancel').onclick = closeVerification;
    $('verify-retry').onclick = () => beginVerification();
    $('verify-use-phone').onclick = useVerifyPhone;
    // Cancel and Esc both end the check and its camera.
    $('verify-dialog').addEventListener('close', closeVerification);
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
