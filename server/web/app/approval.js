// Rule 5 from the door: a lone start refused for want of a supervisor's approval offers to ask
// for one. The ask reaches the supervisors' boards at once; the app looks every few seconds
// for the answer and, once approved, starts the visit by itself (the server uses the approval
// without its id). A decline says to wait for a colleague.

import { api, Offline } from '/shared/api.js';
import { t, addTexts, translate } from '/shared/i18n.js';
import { h, $ } from '/shared/dom.js';

addTexts({
  da: {
    ask_approval: 'Bed vagthavende om godkendelse',
    approval_waiting: 'Venter på svar fra vagthavende …',
    approval_given: 'Godkendt – besøget startes',
    approval_declined: 'Vagthavende har afvist. Vent på en kollega.',
    approval_expired: 'Intet svar – spørg igen',
  },
  sv: {
    ask_approval: 'Be arbetsledaren om godkännande',
    approval_waiting: 'Väntar på svar från arbetsledaren …',
    approval_given: 'Godkänt – besöket startas',
    approval_declined: 'Arbetsledaren har sagt nej. Vänta på en kollega.',
    approval_expired: 'Inget svar – fråga igen',
  },
  en: {
    ask_approval: 'Ask supervisor for approval',
    approval_waiting: 'Waiting for the supervisor’s answer…',
    approval_given: 'Approved – starting the visit',
    approval_declined: 'The supervisor declined. Wait for a colleague.',
    approval_expired: 'No answer – ask again',
  },
});

/// How often the app looks for the supervisor's answer.
const POLL_MS = 2500;

let ask = null;

function box() {
  let el = $('#approval');
  if (!el) {
    el = h('div', { id: 'approval', class: 'approval', role: 'status', 'aria-live': 'polite', hidden: true });
    $('#start-error').after(el);
  }
  return el;
}

function showState(state, ...content) {
  const el = box();
  el.dataset.state = state;
  el.hidden = false;
  el.replaceChildren(...content);
  translate(el);
}

/// Forgets any ask (a new start screen, or the visit started).
export function resetApproval() {
  clearTimeout(ask?.timer);
  ask = null;
  const el = $('#approval');
  if (el) { el.hidden = true; el.replaceChildren(); delete el.dataset.state; }
}

/// After the refusal `lone-approval-required`: offers to ask. `what` is the place, kind and
/// answers of the refused start; `start()` tries the start again.
export function offerApproval(what, start) {
  if (ask) return;
  const button = h('button', { type: 'button', id: 'ask-approval', class: 'big primary', 'data-i18n': 'ask_approval' });
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const asked = await api('POST', '/api/v1/lone-approvals/requests', what);
      ask = { id: asked.request_id, start, what };
      waiting();
    } catch (e) {
      button.disabled = false;
      $('#start-error').textContent = e instanceof Offline ? t('offline') : e.message;
    }
  });
  // The refusal above already says why (in the worker's language, from the server).
  showState('offered', button);
}

function waiting() {
  showState('open', h('p', { class: 'waiting', 'data-i18n': 'approval_waiting' }));
  ask.timer = setTimeout(look, POLL_MS);
}

/// One look at the ask; an error (no network) just waits for the next.
async function look() {
  const mine = ask;
  if (!mine) return;
  // The worker left the start screen: nobody waits any more.
  if (document.body.dataset.view !== 'start') { resetApproval(); return; }
  let answer = null;
  try {
    answer = await api('GET', `/api/v1/lone-approvals/requests/${mine.id}`);
  } catch {
    answer = null;
  }
  if (ask !== mine) return;
  if (answer?.state === 'approved') {
    showState('approved', h('p', { 'data-i18n': 'approval_given' }));
    ask = null;
    await mine.start();
  } else if (answer?.state === 'declined') {
    showState('declined', h('p', { class: 'error', 'data-i18n': 'approval_declined' }));
    ask = null;
  } else if (answer?.state === 'expired') {
    ask = null;
    offerApproval(mine.what, mine.start);
    box().prepend(h('p', { class: 'error', 'data-i18n': 'approval_expired' }));
    translate(box());
  } else {
    mine.timer = setTimeout(look, POLL_MS);
  }
}
