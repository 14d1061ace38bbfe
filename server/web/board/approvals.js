// Lone-visit approvals on the board (rule 5): workers waiting at a door for a supervisor's
// approval, on top, with the place's warnings and the assessed risk, and one click to approve
// or decline; and "Approve lone visit" from a person's row, with a place picker. The asks and
// answers come on the live stream (`approval_request`, `approval_answer`); a click's result
// comes back the same way, so every supervisor's board clears the ask at once.

import { api } from '/shared/api.js';
import { t, addTexts, clock } from '/shared/i18n.js';
import { h, $ } from '/shared/dom.js';

addTexts({
  da: {
    approval_requests: 'Venter på godkendelse', asks_alone: 'beder om at gå alene', approve: 'Godkend', decline: 'Afvis',
    approve_lone: 'Godkend alenebesøg', waiting_since: 'venter siden', risk_unknown: 'risiko ikke vurderet',
    approved_until: 'Godkendt indtil',
  },
  sv: {
    approval_requests: 'Väntar på godkännande', asks_alone: 'ber om att gå ensam', approve: 'Godkänn', decline: 'Avslå',
    approve_lone: 'Godkänn ensambesök', waiting_since: 'väntar sedan', risk_unknown: 'risk ej bedömd',
    approved_until: 'Godkänt till',
  },
  en: {
    approval_requests: 'Waiting for approval', asks_alone: 'asks to go alone', approve: 'Approve', decline: 'Decline',
    approve_lone: 'Approve lone visit', waiting_since: 'waiting since', risk_unknown: 'risk not assessed',
    approved_until: 'Approved until',
  },
});

const asks = new Map();
/// The board's places by id (the team's places, homes included), read when needed.
let placesOf = () => new Map();

/// `places()` gives the board's places by id (for the picker).
export function initApprovals(places) {
  placesOf = places;
  if ($('#approval-requests')) return;
  const section = h('section', { id: 'approval-requests', class: 'approval-requests', 'aria-live': 'assertive', hidden: true },
    h('h2', { 'data-i18n': 'approval_requests' }, t('approval_requests')), h('ol', { id: 'asks' }));
  $('[data-screen=board] .left').prepend(section);
  document.body.append(pickerDialog());
  $('#lang').addEventListener('change', renderAsks);
  // Asks run out with the approval window.
  setInterval(renderAsks, 15000);
}

/// The open asks of a snapshot replace what the board had.
export function snapshotAsks(list) {
  asks.clear();
  for (const a of list) asks.set(a.request_id, a);
  renderAsks();
}

export function asked(a) {
  asks.set(a.request_id, a);
  renderAsks();
}

/// An answer settles every ask of the worker for the place (see the engine's approval.rs).
export function answered(answer) {
  for (const [id, a] of asks) {
    if (a.worker_id === answer.worker_id && a.place_id === answer.place_id) asks.delete(id);
  }
  renderAsks();
}

export function renderAsks() {
  const now = Date.now();
  for (const [id, a] of asks) if (Date.parse(a.expires_at) <= now) asks.delete(id);
  const list = [...asks.values()].sort((a, b) => a.requested_at.localeCompare(b.requested_at));
  const section = $('#approval-requests');
  if (!section) return;
  section.hidden = list.length === 0;
  document.body.dataset.asks = String(list.length);
  $('#asks').replaceChildren(...list.map(card));
}

function card(a) {
  const risk = a.risk_level ? `${t('risk')}: ${t(a.risk_level)}` : t('risk_unknown');
  const title = `${a.worker_name} ${t('asks_alone')}`;
  return h('li', { class: 'ask-card', dataset: { request: a.request_id, worker: a.worker_id }, 'aria-label': title },
    h('h3', {}, title),
    h('p', {}, h('strong', {}, a.place_name), a.kind ? ` · ${t(a.kind)}` : '',
      ' · ', h('span', { class: `risk ${a.risk_level ?? 'unknown'}` }, risk),
      ` · ${t('waiting_since')} ${clock(a.requested_at)}`),
    ...a.warnings.map((w) => h('p', { class: 'warning' }, `⚠ ${t(w.kind)}: ${w.text}`)),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'ok approve', onclick: (e) => act(e.target, () => approve(a.worker_id, a.place_id)) }, t('approve')),
      h('button', { type: 'button', class: 'danger decline', onclick: (e) => act(e.target, () => api('POST', `/api/v1/lone-approvals/requests/${a.request_id}/decline`)) }, t('decline'))));
}

function approve(worker, place) {
  return api('POST', '/api/v1/lone-approvals', { worker_id: worker, place_id: place });
}

/// A button's call; the ask leaves the board when the answer comes back on the stream.
async function act(button, call) {
  button.disabled = true;
  button.parentElement.querySelector('.error')?.remove();
  try {
    await call();
  } catch (e) {
    button.parentElement.append(h('p', { class: 'error', role: 'alert' }, e.message));
    button.disabled = false;
  }
}

// --- from a person's row -------------------------------------------------------------------

/// "Approve lone visit" for a person's row.
export function approveButton(person, name) {
  return h('button', {
    type: 'button', class: 'approve-lone', 'aria-label': `${t('approve_lone')}: ${name}`,
    onclick: () => openPicker(person, name),
  }, t('approve_lone'));
}

function pickerDialog() {
  return h('dialog', { id: 'approve-dialog', 'aria-labelledby': 'approve-title' },
    h('form', { id: 'approve-form', method: 'dialog' },
      h('h2', { id: 'approve-title' }),
      h('label', { for: 'approve-place', id: 'approve-place-label' }),
      h('select', { id: 'approve-place', required: true }),
      h('div', { id: 'approve-warnings' }),
      h('p', { role: 'alert', class: 'error', id: 'approve-error' }),
      h('p', { role: 'status', id: 'approve-done' }),
      h('div', { class: 'actions' },
        h('button', { type: 'button', id: 'approve-cancel', onclick: () => $('#approve-dialog').close() }),
        h('button', { type: 'submit', class: 'ok', id: 'approve-ok' }))));
}

function openPicker(person, name) {
  const dialog = $('#approve-dialog');
  const places = [...placesOf().values()];
  const select = $('#approve-place');
  $('#approve-title').textContent = `${t('approve_lone')}: ${name}`;
  $('#approve-place-label').textContent = t('place');
  $('#approve-cancel').textContent = t('cancel');
  $('#approve-ok').textContent = t('approve');
  $('#approve-error').textContent = '';
  $('#approve-done').textContent = '';
  $('#approve-ok').disabled = false;
  select.replaceChildren(...places.map((p) => h('option', { value: p.id }, `${p.name} · ${t(p.kind)}`)));
  const warnings = () => {
    const p = placesOf().get(select.value);
    $('#approve-warnings').replaceChildren(...(p?.warnings ?? []).map((w) => h('p', { class: 'warning' }, `⚠ ${t(w.kind)}: ${w.text}`)));
  };
  select.onchange = warnings;
  warnings();
  $('#approve-form').onsubmit = async (e) => {
    e.preventDefault();
    $('#approve-ok').disabled = true;
    try {
      const approval = await approve(person, select.value);
      $('#approve-done').textContent = `${t('approved_until')} ${clock(approval.expires_at)}`;
      setTimeout(() => dialog.close(), 1500);
    } catch (err) {
      $('#approve-error').textContent = err.message;
      $('#approve-ok').disabled = false;
    }
  };
  dialog.showModal();
  select.focus();
}
