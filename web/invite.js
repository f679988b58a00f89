// Customer H5 for an agent's invite: consent, then microphone (camera off at first), then the call.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const code = location.pathname.split('/').pop();
  const page = (window.invitePage = { kind: null, cameraOn: false });

  window.addEventListener('DOMContentLoaded', async () => {
    const res = await fetch(`/api/v1/invites/${encodeURIComponent(code)}`);
    if (res.status !== 200) {
      $('consent-error').textContent = KefuStrings.t('invite.invalid');
      return;
    }
    const invite = await res.json();
    page.kind = invite.kind;
    $('title').textContent = KefuStrings.t(invite.kind === 'video' ? 'invite.title_video' : 'invite.title_voice', { name: invite.enterprise_name });
    $('camera-note').hidden = invite.kind !== 'video';
    $('agree').onchange = (e) => ($('accept').disabled = !e.target.checked);
    // Ticked while the invite was still loading: that change came before the handler.
    $('accept').disabled = !$('agree').checked;
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
      $('consent-error').textContent = KefuStrings.errorText(body, 'invite.cannot_connect');
      $('accept').disabled = false;
      return;
    }
    $('consent').hidden = true;
    $('call').hidden = false;
    $('controls').hidden = false;
    $('camera').hidden = page.kind !== 'video';
    $('camera').onclick = async () => {
      page.cameraOn = await KefuCall.setCamera(!page.cameraOn);
      $('camera').textContent = KefuStrings.t(page.cameraOn ? 'camera.off' : 'camera.on');
      $('camera').setAttribute('aria-pressed', String(page.cameraOn));
    };
    $('hang-up').onclick = () => KefuCall.hangUp();
    // The customer's camera starts off; the microphone permission is asked now.
    KefuCall.join({ token: body.room_token, kind: page.kind, cameraOn: false });
  }
})();
