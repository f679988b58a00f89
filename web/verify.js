// The face-verification challenge, shared by the workbench's dialog and the phone page.
//
// KefuVerify.openCamera() opens the front camera; KefuVerify.run({...}) shows it
// mirrored in a <video>, grabs a frame every `intervalMs` into a canvas (the
// unmirrored picture, 640×480 from a webcam), sends it as JPEG with the caller's `send`
// (the workbench's session or the phone's device token), one frame at a time, and
// shows what the server answers in the prompt element until the attempt passed or
// failed; then it stops the camera. The prompt carries data-state, data-turn,
// data-step-index, data-step-total, data-reason and data-detail for scripts and tests
// (never the wording). The API: /api/v1/me/verification/attempts and
// /api/v1/phone-verification (OpenAPI at /api/openapi.json).
'use strict';

(function () {
  const t = (key, vars) => KefuStrings.t(key, vars);
  /** A frame's longest side: 640×480 from a webcam, 480×640 from a phone held upright. */
  const MAX_SIDE = 640;
  /** Frames in a row that may fail for a passing reason (engine busy, network) before giving up. */
  const MAX_TRANSIENT_ERRORS = 20;

  function openCamera() {
    return navigator.mediaDevices.getUserMedia({
      video: { facingMode: 'user', width: 640, height: 480 },
      audio: false,
    });
  }

  function stopStream(stream) {
    if (stream) for (const track of stream.getTracks()) track.stop();
  }

  function reasonText(reason) {
    const key = `verify.reason.${reason}`;
    return t(KefuStrings.has(key) ? key : 'verify.reason.other');
  }

  function detailText(detail) {
    const key = `verify.detail.${detail}`;
    return detail && KefuStrings.has(key) ? t(key) : '';
  }

  function setData(el, name, value) {
    if (!el) return;
    if (value === null || value === undefined || value === '') {
      if (name in el.dataset) delete el.dataset[name];
    } else if (el.dataset[name] !== String(value)) {
      el.dataset[name] = String(value);
    }
  }

  /**
   * Shows `progress` ({state, turn, step_index, step_total, reason, detail}) in
   * `prompt` (and the finer reason or the step in `hint`).
   */
  function show(prompt, hint, progress) {
    const p = progress || { state: 'look_at_camera' };
    let text;
    let sub = '';
    if (p.state === 'step') {
      text = t(p.turn === 'turn_right' ? 'verify.turn_right' : 'verify.turn_left');
      if (p.step_total) sub = t('verify.step', { index: (p.step_index || 0) + 1, total: p.step_total });
    } else if (p.state === 'passed') {
      text = t('verify.passed');
    } else if (p.state === 'failed') {
      text = t('verify.failed', { reason: reasonText(p.reason) });
      // The finer reason, where it says more than the reason itself.
      sub = p.detail !== p.reason ? detailText(p.detail) : '';
    } else {
      text = t('verify.look_at_camera');
    }
    if (prompt) {
      prompt.textContent = text;
      // The step first, then the state: an observer of data-state sees the turn set.
      setData(prompt, 'turn', p.state === 'step' ? p.turn : null);
      setData(prompt, 'stepIndex', p.state === 'step' ? p.step_index : null);
      setData(prompt, 'stepTotal', p.state === 'step' ? p.step_total : null);
      setData(prompt, 'reason', p.state === 'failed' ? p.reason : null);
      setData(prompt, 'detail', p.state === 'failed' ? p.detail : null);
      setData(prompt, 'state', p.state);
    }
    if (hint) {
      hint.textContent = sub;
      hint.hidden = !sub;
    }
  }

  /** A message in the prompt that is no progress of the challenge (`state`: a phase name). */
  function message(prompt, hint, state, text) {
    if (prompt) {
      prompt.textContent = text;
      for (const name of ['turn', 'stepIndex', 'stepTotal', 'reason', 'detail']) setData(prompt, name, null);
      setData(prompt, 'state', state);
    }
    if (hint) {
      hint.textContent = '';
      hint.hidden = true;
    }
  }

  function toBlob(canvas, quality) {
    return new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality));
  }

  /**
   * Runs the challenge. Options: stream (from openCamera), video, prompt, hint,
   * send(blob) → Promise<{status, data}>, intervalMs, maxFrameBytes, initial (the
   * attempt's first progress), onProgress(progress).
   * Returns { done, stop() }: `done` resolves once with { outcome: 'passed' | 'failed'
   * | 'error' | 'stopped', progress?, status?, data? }; the camera is stopped then.
   */
  function run(opts) {
    const { stream, video, prompt, hint, send } = opts;
    const intervalMs = Math.max(100, opts.intervalMs || 300);
    const maxFrameBytes = opts.maxFrameBytes || 1024 * 1024;
    const canvas = document.createElement('canvas');
    const ctx = canvas.getContext('2d');
    let stopped = false;
    let timer = null;
    let transientErrors = 0;
    let resolveDone;
    const done = new Promise((resolve) => { resolveDone = resolve; });

    if (video) {
      video.muted = true;
      video.playsInline = true;
      video.srcObject = stream;
      video.play().catch(() => {});
    }
    show(prompt, hint, opts.initial);

    function finish(result) {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      stopStream(stream);
      if (video) video.srcObject = null;
      resolveDone(result);
    }

    async function grab() {
      if (!video || video.readyState < 2 || !video.videoWidth) return null;
      const scale = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
      const w = Math.round(video.videoWidth * scale);
      const h = Math.round(video.videoHeight * scale);
      if (canvas.width !== w || canvas.height !== h) {
        canvas.width = w;
        canvas.height = h;
      }
      // The picture as the camera sees it: only the preview is mirrored.
      ctx.drawImage(video, 0, 0, w, h);
      let blob = await toBlob(canvas, 0.85);
      if (blob && blob.size > maxFrameBytes) blob = await toBlob(canvas, 0.6);
      return blob && blob.size <= maxFrameBytes ? blob : null;
    }

    async function tick() {
      if (stopped) return;
      const started = performance.now();
      const blob = await grab();
      if (blob && !stopped) {
        let answer;
        try {
          answer = await send(blob);
        } catch (_) {
          answer = { status: 0, data: null };
        }
        if (stopped) return;
        const p = answer.data;
        if (answer.status === 200 && p && typeof p === 'object' && p.state) {
          transientErrors = 0;
          show(prompt, hint, p);
          if (opts.onProgress) opts.onProgress(p);
          if (p.state === 'passed' || p.state === 'failed') {
            finish({ outcome: p.state, progress: p });
            return;
          }
        } else if ([0, 413, 422, 502, 503, 504].includes(answer.status) && ++transientErrors < MAX_TRANSIENT_ERRORS) {
          // A frame lost on the way or refused while the engine is busy: the next one goes.
        } else {
          finish({ outcome: 'error', status: answer.status, data: answer.data });
          return;
        }
      }
      if (stopped) return;
      timer = setTimeout(tick, Math.max(0, intervalMs - (performance.now() - started)));
    }

    timer = setTimeout(tick, 0);
    return {
      done,
      /** Stops sending frames and the camera; `done` resolves with outcome 'stopped'. */
      stop() {
        finish({ outcome: 'stopped' });
      },
    };
  }

  window.KefuVerify = { openCamera, stopStream, run, show, message, reasonText, detailText };

  // The phone page (/verify/<token>, web/verify.html): the agent scanned the
  // workbench's QR code. A tap opens the camera (phones want a gesture first), then
  // opens the single-use link, then runs the challenge with the device token it got.
  // body[data-phase] and #verify-error[data-error] name where it stands, for tests.
  function phonePage() {
    const $ = (id) => document.getElementById(id);
    const body = document.body;
    const token = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '');
    const prompt = $('verify-prompt');
    const hint = $('verify-hint');
    const start = $('verify-start');

    function phase(name, code) {
      body.dataset.phase = name;
      const err = $('verify-error');
      if (code) err.dataset.error = code;
      else delete err.dataset.error;
    }

    function showError(name, code, text) {
      phase(name, code);
      message(prompt, hint, name, '');
      prompt.hidden = true;
      $('verify-error').textContent = text;
      $('verify-error').hidden = false;
    }

    async function post(path, headers, payload) {
      const res = await fetch(`/api/v1${path}`, { method: 'POST', headers, body: payload });
      let data = null;
      try {
        data = await res.json();
      } catch (_) {}
      return { status: res.status, data };
    }

    async function begin() {
      start.disabled = true;
      start.hidden = true;
      $('verify-error').hidden = true;
      prompt.hidden = false;
      phase('starting');
      message(prompt, hint, 'starting', t('verify.starting'));
      let stream;
      try {
        stream = await openCamera();
      } catch (_) {
        // Nothing used up yet: the link still works once the camera is allowed.
        showError('camera_unavailable', 'camera_unavailable', t('verify.phone_camera_unavailable'));
        start.hidden = false;
        start.disabled = false;
        return;
      }
      let claim;
      try {
        claim = await post(`/phone-verification/${encodeURIComponent(token)}`, {});
      } catch (_) {
        claim = { status: 0, data: null };
      }
      if (claim.status !== 200) {
        stopStream(stream);
        const code = (claim.data && claim.data.error) || (claim.status === 404 ? 'not_found' : 'error');
        // An unknown link says nothing about why: it is simply not (or no longer) valid.
        const text = code === 'not_found' ? t('verify.link_invalid') : KefuStrings.errorText(claim.data, 'verify.link_invalid');
        showError('link_error', code, text);
        $('verify-intro').hidden = true;
        return;
      }
      const session = claim.data;
      $('verify-agent').textContent = t('verify.phone_for', { name: session.agent_name });
      $('verify-agent').hidden = false;
      phase('running');
      const result = await run({
        stream,
        video: $('verify-video'),
        prompt,
        hint,
        intervalMs: session.frame_interval_ms,
        maxFrameBytes: session.max_frame_bytes,
        initial: session.progress,
        send: (blob) => post('/phone-verification/frames',
          { 'content-type': 'image/jpeg', 'x-kefu-device': session.device_token }, blob),
      }).done;
      if (result.outcome === 'passed') {
        phase('passed');
        $('verify-intro').textContent = t('verify.phone_passed');
      } else if (result.outcome === 'failed') {
        phase('failed', result.progress.reason);
        $('verify-intro').textContent = t('verify.phone_failed');
      } else {
        // 401: the attempt is over (expired, or ended on the workbench).
        const code = (result.data && result.data.error) || 'attempt_over';
        showError('error', code, result.status === 401 ? t('verify.attempt_over') : KefuStrings.errorText(result.data));
        $('verify-intro').textContent = t('verify.phone_failed');
      }
    }

    phase('ready');
    message(prompt, hint, 'ready', '');
    start.onclick = begin;
  }

  if (document.body && document.body.dataset.page === 'phone-verification') phonePage();
})();
