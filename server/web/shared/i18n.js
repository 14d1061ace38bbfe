// The pages' texts: Danish first, then Swedish and English (words from GLOSSARY.md).
// Elements carry data-i18n (text), data-i18n-aria (aria-label) or data-i18n-placeholder.

const TEXTS = {
  da: {
    offensive_act: 'Krænkende handling', near_miss: 'Nærved-hændelse', description: 'Hvad skete der?', send: 'Send', report_sent: 'Hændelsen er rapporteret',
    app_title: 'Makker', board_title: 'Makker – vagthavende',
    username: 'Brugernavn', password: 'Adgangskode', sign_in: 'Log ind', sign_out: 'Log ud',
    sign_in_failed: 'Forkert brugernavn eller adgangskode', locked: 'For mange forsøg – prøv igen senere',
    start_shift: 'Start vagt', end_shift: 'Slut vagt', on_shift: 'På vagt', off_shift: 'Ikke på vagt',
    start_visit: 'Start besøg', place: 'Sted', nearby_places: 'Steder i nærheden', no_position: 'Ingen GPS – viser alle teamets steder',
    kind: 'Type', partner: 'Makker', alone: 'Alene', my_role: 'Min rolle', talker: 'Samtalsfører', observer: 'Observatør',
    risk_assessment: 'Risikovurdering', yes: 'Ja', no: 'Nej', planned: 'Planlagt varighed', minutes: 'min',
    lone_reason: 'Begrundelse for at gå alene', tell_colleague: 'Kollega der får besked når jeg går', warnings: 'Advarsler på stedet',
    street_contact: 'Kontakt på gaden', home_visit_announced: 'Hjemmebesøg (anmeldt)', home_visit_unannounced: 'Hjemmebesøg (uanmeldt)',
    drop_in: 'Værested', shelter: 'Herberg', park: 'Park', other: 'Andet', street: 'Gade', home: 'Hjem',
    dog: 'Hund', threat: 'Trusler', violence: 'Vold', weapon: 'Våben',
    low: 'lav', medium: 'middel', high: 'høj', very_high: 'meget høj', risk: 'Risiko',
    check_out: 'Tjek ud', check_in: 'Jeg er OK', extend: 'Forlæng', time_left: 'Tid tilbage', overdue: 'Overskredet',
    pin: 'PIN-kode', pin_prompt: 'Indtast din PIN for at tjekke ud', confirm: 'Bekræft', cancel: 'Fortryd',
    checked_out: 'Du er tjekket ud. Godt arbejde.', wrong_pin: 'Forkert PIN – prøv igen',
    sos_hold: 'Hold for SOS', sos_sent: 'SOS sendt – hjælpen er på vej', sos_hint: 'Hold knappen i 3 sekunder',
    leave_now: 'Vi går nu', withdrawn: 'Tilbagetrækning registreret – vagthavende er informeret',
    check_in_due: 'Tid til at tjekke ind', check_in_done: 'Tjekket ind',
    offline: 'Ingen forbindelse. Handlinger gemmes og sendes senere.', sms_fallback: 'Send SMS: "OK" for at tjekke ind, "OUT <pin>" for at tjekke ud.',
    queued: 'i kø', sent_later: 'sendes når der er net',
    alarm_raised: 'Alarm udløst – vagthavende er informeret', stand_down: 'Afblæst – medarbejderen er i sikkerhed',
    notifications_on: 'Slå notifikationer til', notifications_ok: 'Notifikationer er slået til',
    free: 'Fri', in_visit: 'På besøg', alarm: 'Alarm', state: 'Status', worker: 'Medarbejder', last_check_in: 'Sidst tjekket ind',
    battery: 'Batteri', people_on_shift: 'På vagt', alarms: 'Alarmer', no_alarms: 'Ingen åbne alarmer',
    acknowledge: 'Jeg tager den', acknowledged_by: 'Kvitteret af', resolve: 'Afslut', outcome: 'Udfald', note: 'Note',
    worker_safe: 'Medarbejderen er i sikkerhed', police_called: 'Politi tilkaldt', false_alarm: 'Falsk alarm',
    trail: 'Eskaleringsforløb', pending: 'venter', sent: 'sendt', failed: 'fejlet', cancelled: 'annulleret', delivered: 'leveret',
    live_lost: 'Forbindelsen til serveren er tabt – genopretter…', sound_on: 'Slå alarmlyd til', sound_playing: 'Alarmlyd til',
    missed_check_in: 'Manglende tjek ind', missed_check_out: 'Manglende tjek ud', sos: 'SOS', duress: 'Tvangskode', lost_heartbeat: 'Mistet forbindelse',
    drill: 'Øvelse', open: 'Åben', acknowledged: 'Kvitteret', not_supervisor: 'Tavlen er for vagthavende og administratorer.',
    map: 'Kort', language: 'Sprog', ago: 'siden', none: '–', report_incident: 'Rapportér hændelse',
    refused: 'Kan ikke startes', error: 'Noget gik galt', retry: 'Prøv igen',
  },
  sv: {
    offensive_act: 'Kränkning', near_miss: 'Tillbud', description: 'Vad hände?', send: 'Skicka', report_sent: 'Händelsen är rapporterad',
    app_title: 'Makker', board_title: 'Makker – arbetsledare i tjänst',
    username: 'Användarnamn', password: 'Lösenord', sign_in: 'Logga in', sign_out: 'Logga ut',
    sign_in_failed: 'Fel användarnamn eller lösenord', locked: 'För många försök – försök igen senare',
    start_shift: 'Starta pass', end_shift: 'Avsluta pass', on_shift: 'I tjänst', off_shift: 'Inte i tjänst',
    start_visit: 'Starta besök', place: 'Plats', nearby_places: 'Platser i närheten', no_position: 'Ingen GPS – visar teamets alla platser',
    kind: 'Typ', partner: 'Kollega', alone: 'Ensam', my_role: 'Min roll', talker: 'Samtalsledare', observer: 'Observatör',
    risk_assessment: 'Riskbedömning', yes: 'Ja', no: 'Nej', planned: 'Planerad tid', minutes: 'min',
    lone_reason: 'Skäl att gå ensam', tell_colleague: 'Kollega som får besked när jag går', warnings: 'Varningar för platsen',
    street_contact: 'Kontakt på gatan', home_visit_announced: 'Hembesök (aviserat)', home_visit_unannounced: 'Hembesök (oanmält)',
    drop_in: 'Träffpunkt', shelter: 'Härbärge', park: 'Park', other: 'Annat', street: 'Gata', home: 'Hem',
    dog: 'Hund', threat: 'Hot', violence: 'Våld', weapon: 'Vapen',
    low: 'låg', medium: 'medel', high: 'hög', very_high: 'mycket hög', risk: 'Risk',
    check_out: 'Checka ut', check_in: 'Jag är OK', extend: 'Förläng', time_left: 'Tid kvar', overdue: 'Försenad',
    pin: 'PIN-kod', pin_prompt: 'Ange din PIN för att checka ut', confirm: 'Bekräfta', cancel: 'Avbryt',
    checked_out: 'Du är utcheckad. Bra jobbat.', wrong_pin: 'Fel PIN – försök igen',
    sos_hold: 'Håll för SOS', sos_sent: 'SOS skickat – hjälp är på väg', sos_hint: 'Håll knappen i 3 sekunder',
    leave_now: 'Vi går nu', withdrawn: 'Reträtt registrerad – arbetsledaren är informerad',
    check_in_due: 'Dags att checka in', check_in_done: 'Incheckad',
    offline: 'Ingen anslutning. Åtgärder sparas och skickas senare.', sms_fallback: 'Skicka SMS: "OK" för att checka in, "OUT <pin>" för att checka ut.',
    queued: 'i kö', sent_later: 'skickas när nätet är tillbaka',
    alarm_raised: 'Larm utlöst – arbetsledaren är informerad', stand_down: 'Avblåst – medarbetaren är i säkerhet',
    notifications_on: 'Slå på aviseringar', notifications_ok: 'Aviseringar är på',
    free: 'Ledig', in_visit: 'På besök', alarm: 'Larm', state: 'Status', worker: 'Medarbetare', last_check_in: 'Senast incheckad',
    battery: 'Batteri', people_on_shift: 'I tjänst', alarms: 'Larm', no_alarms: 'Inga öppna larm',
    acknowledge: 'Jag tar det', acknowledged_by: 'Kvitterat av', resolve: 'Avsluta', outcome: 'Utfall', note: 'Anteckning',
    worker_safe: 'Medarbetaren är i säkerhet', police_called: 'Polis tillkallad', false_alarm: 'Falskt larm',
    trail: 'Eskaleringsförlopp', pending: 'väntar', sent: 'skickat', failed: 'misslyckat', cancelled: 'avbrutet', delivered: 'levererat',
    live_lost: 'Anslutningen till servern är bruten – återansluter…', sound_on: 'Slå på larmljud', sound_playing: 'Larmljud på',
    missed_check_in: 'Missad incheckning', missed_check_out: 'Missad utcheckning', sos: 'SOS', duress: 'Tvångskod', lost_heartbeat: 'Tappad anslutning',
    drill: 'Övning', open: 'Öppet', acknowledged: 'Kvitterat', not_supervisor: 'Tavlan är för arbetsledare och administratörer.',
    map: 'Karta', language: 'Språk', ago: 'sedan', none: '–', report_incident: 'Rapportera händelse',
    refused: 'Kan inte startas', error: 'Något gick fel', retry: 'Försök igen',
  },
  en: {
    offensive_act: 'Offensive act', near_miss: 'Near miss', description: 'What happened?', send: 'Send', report_sent: 'The incident is reported',
    app_title: 'Makker', board_title: 'Makker – supervisor on duty',
    username: 'Username', password: 'Password', sign_in: 'Sign in', sign_out: 'Sign out',
    sign_in_failed: 'Wrong username or password', locked: 'Too many attempts – try again later',
    start_shift: 'Start shift', end_shift: 'End shift', on_shift: 'On shift', off_shift: 'Off shift',
    start_visit: 'Start visit', place: 'Place', nearby_places: 'Places nearby', no_position: 'No GPS – showing all the team’s places',
    kind: 'Kind', partner: 'Partner', alone: 'Alone', my_role: 'My role', talker: 'Talker', observer: 'Observer',
    risk_assessment: 'Risk assessment', yes: 'Yes', no: 'No', planned: 'Planned duration', minutes: 'min',
    lone_reason: 'Reason for going alone', tell_colleague: 'Colleague told when I leave', warnings: 'Place warnings',
    street_contact: 'Street contact', home_visit_announced: 'Home visit (announced)', home_visit_unannounced: 'Home visit (unannounced)',
    drop_in: 'Drop-in centre', shelter: 'Shelter', park: 'Park', other: 'Other', street: 'Street', home: 'Home',
    dog: 'Dog', threat: 'Threat', violence: 'Violence', weapon: 'Weapon',
    low: 'low', medium: 'medium', high: 'high', very_high: 'very high', risk: 'Risk',
    check_out: 'Check out', check_in: 'I’m OK', extend: 'Extend', time_left: 'Time left', overdue: 'Overdue',
    pin: 'PIN', pin_prompt: 'Enter your PIN to check out', confirm: 'Confirm', cancel: 'Cancel',
    checked_out: 'You are checked out. Well done.', wrong_pin: 'Wrong PIN – try again',
    sos_hold: 'Hold for SOS', sos_sent: 'SOS sent – help is on its way', sos_hint: 'Hold the button for 3 seconds',
    leave_now: 'We leave now', withdrawn: 'Withdrawal recorded – the supervisor is told',
    check_in_due: 'Time to check in', check_in_done: 'Checked in',
    offline: 'No connection. Actions are saved and sent later.', sms_fallback: 'Send an SMS: "OK" to check in, "OUT <pin>" to check out.',
    queued: 'queued', sent_later: 'sent when back online',
    alarm_raised: 'Alarm raised – the supervisor is told', stand_down: 'Stand-down – the worker is safe',
    notifications_on: 'Turn on notifications', notifications_ok: 'Notifications are on',
    free: 'Free', in_visit: 'In a visit', alarm: 'Alarm', state: 'State', worker: 'Worker', last_check_in: 'Last check-in',
    battery: 'Battery', people_on_shift: 'On shift', alarms: 'Alarms', no_alarms: 'No open alarms',
    acknowledge: 'I’m on it', acknowledged_by: 'Acknowledged by', resolve: 'Resolve', outcome: 'Outcome', note: 'Note',
    worker_safe: 'The worker is safe', police_called: 'Police called', false_alarm: 'False alarm',
    trail: 'Escalation trail', pending: 'pending', sent: 'sent', failed: 'failed', cancelled: 'cancelled', delivered: 'delivered',
    live_lost: 'Lost the connection to the server – reconnecting…', sound_on: 'Turn on the alarm sound', sound_playing: 'Alarm sound on',
    missed_check_in: 'Missed check-in', missed_check_out: 'Missed check-out', sos: 'SOS', duress: 'Duress PIN', lost_heartbeat: 'Lost heartbeat',
    drill: 'Drill', open: 'Open', acknowledged: 'Acknowledged', not_supervisor: 'The board is for supervisors and administrators.',
    map: 'Map', language: 'Language', ago: 'ago', none: '–', report_incident: 'Report an incident',
    refused: 'Cannot start', error: 'Something went wrong', retry: 'Try again',
  },
};

export const LANGS = ['da', 'sv', 'en'];

/// Adds a page's own texts (per language) to the shared ones.
export function addTexts(more) {
  for (const l of LANGS) Object.assign(TEXTS[l], more[l]);
  translate(document);
}

let current = pickLang();

function pickLang() {
  const saved = localStorage.getItem('makker.lang');
  if (LANGS.includes(saved)) return saved;
  const browser = (navigator.language || '').slice(0, 2);
  return browser === 'sv' || browser === 'en' ? browser : 'da';
}

export function lang() {
  return current;
}

/// Chooses the language (the person's own once signed in) and retranslates the page.
export function setLang(l) {
  if (!LANGS.includes(l)) return;
  current = l;
  localStorage.setItem('makker.lang', l);
  document.documentElement.lang = l;
  translate(document);
}

export function t(key) {
  return TEXTS[current][key] ?? TEXTS.da[key] ?? key;
}

export function translate(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
}

/// A time of day in the page's language.
export function clock(iso) {
  return iso ? new Date(iso).toLocaleTimeString(current, { hour: '2-digit', minute: '2-digit' }) : t('none');
}

/// "12:05" for a duration in seconds, with a minus when it is past.
export function countdown(seconds) {
  const s = Math.abs(Math.round(seconds));
  const text = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  return seconds < 0 ? `−${text}` : text;
}
