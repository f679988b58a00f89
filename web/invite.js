// Customer H5 for an agent's invite: consent, then microphone (camera off at first), then the call.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const code = location.pathname.split('/').pop();
  const page = (window.invitePage = { kind: null, cameraOn: false });

  window.addEventListener('DOMContentLoaded', async () => {
    const res = await fetch(`/api/v1/invites/${encodeURIComponent(code)}`);
    if (res.status !== 200) {
      $('consent-error').textContent = '邀请已失效 · This invite is no longer valid';
      return;
    }
    const invite = await res.json();
    page.kind = invite.kind;
    $('title').textContent = `${invite.enterprise_name} ${invite.kind === 'video' ? '视频客服' : '语音客服'}`;
    $('camera-note').hidden = invite.kind !== 'video';
    $('agree').onchange = (e) => ($('accept').disabled = !e.target.checked);
    $('accept').onclick = accept;
  });

  async function accept() {
    $('accept').disabled = true;
    const res = await fetch(`/api/v1/invites/${encodeURIComponent(code)}/accept`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ display_name: $('display-name').value, consent: $('agree').checked }),
    });
    const body = await res.json().catch(() => ({}));
    if (res.status !== 200) {
      $('consent-error').textContent = body.message || '无法接通 · Cannot connect';
      $('accept').disabled = false;
      return;
    }
    $('consent').hidden = true;
    $('call').hidden = false;
    $('controls').hidden = false;
    $('camera').hidden = page.kind !== 'video';
    $('camera').onclick = async () => {
      page.cameraOn = await KefuCall.setCamera(!page.cameraOn);
      $('camera').textContent = page.cameraOn ? '关闭摄像头' : '开启摄像头';
      $('camera').setAttribute('aria-pressed', String(page.cameraOn));
    };
    $('hang-up').onclick = () => KefuCall.hangUp();
    // The customer's camera starts off; the microphone permission is asked now.
    KefuCall.join({ token: body.room_token, kind: page.kind, cameraOn: false });
  }
})();
