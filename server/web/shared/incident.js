// Incident reports (issue 4.5) from the worker's app and the supervisors' board: the kinds, the
// kind picker and the request body, so both pages send the same report. The server ties a
// report without a place to its visit's place, and defaults a place warning to 12 months.

import { t } from './i18n.js';
import { h } from './dom.js';

export const INCIDENT_KINDS = ['threat', 'violence', 'offensive_act', 'near_miss'];
/// How long a place warning lasts unless the reporter says otherwise (the server's default).
export const WARNING_MONTHS = 12;

/// Fills `container` with one radio button per kind; returns a function that reads the choice.
export function kindPicker(container, first = INCIDENT_KINDS[0]) {
  let chosen = first;
  const render = () => container.replaceChildren(...INCIDENT_KINDS.map((k) => h('button', {
    type: 'button', role: 'radio', 'aria-checked': String(chosen === k), dataset: { kind: k },
    onclick: () => { chosen = k; render(); },
  }, t(k))));
  render();
  return () => chosen;
}

/// The local date `months` after `from`, as a date input's value (yyyy-mm-dd).
export function monthsAhead(months, from = new Date()) {
  const d = new Date(from);
  d.setMonth(d.getMonth() + months);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/// The body of `POST /api/v1/incidents`. `warning` ({ text, until: yyyy-mm-dd }) puts a warning
/// on the place until the end of that local day; left out, the place gets none.
export function incidentBody({ kind, description, visit_id, place_id, occurred_at, warning }) {
  const body = { kind, description: description.trim() };
  if (visit_id) body.visit_id = visit_id;
  if (place_id) body.place_id = place_id;
  if (occurred_at) body.occurred_at = occurred_at;
  if (warning) {
    body.warning = {};
    if (warning.text?.trim()) body.warning.text = warning.text.trim();
    if (warning.until) body.warning.expires_at = new Date(`${warning.until}T23:59:59`).toISOString();
  }
  return body;
}
