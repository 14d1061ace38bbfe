//! What people read in an SMS or a notification. Danish first, then Swedish and English
//! (GLOSSARY.md). Short: an SMS with Danish or Swedish letters holds 70 characters per part.
//! Push payloads never carry positions; SMS may carry the last known position of an alarm.

use makker_domain::alarm::AlarmKind;
use makker_domain::geo::Position;
use makker_domain::text::Lang;

/// What happened, for the text.
#[derive(Debug, Clone, PartialEq)]
pub enum Text<'a> {
    Reminder {
        minutes: u32,
    },
    Alarm {
        kind: AlarmKind,
        worker: &'a str,
        place: &'a str,
        warnings: &'a [String],
        position: Option<Position>,
        link: &'a str,
    },
    StandDown {
        worker: &'a str,
    },
    TellColleague {
        worker: &'a str,
        place: &'a str,
    },
    /// To the supervisor and the partner who left: who is alone now, where.
    TwoPersonBreak {
        worker: &'a str,
        place: &'a str,
        minutes: u32,
    },
    /// To the worker left alone: their lone timer.
    LoneTimer {
        minutes: u32,
    },
    FollowUp {
        worker: &'a str,
    },
    /// To a team's supervisors and managers: people are on shift and no board is open.
    Unwatched {
        team: &'a str,
        minutes: i64,
    },
}

impl Text<'_> {
    /// The `kind` column of the outbox.
    pub fn kind(&self) -> &'static str {
        match self {
            Text::Reminder { .. } => "reminder",
            Text::Alarm { .. } => "alarm",
            Text::StandDown { .. } => "stand_down",
            Text::TellColleague { .. } => "tell_colleague",
            Text::TwoPersonBreak { .. } => "two_person_break",
            Text::LoneTimer { .. } => "lone_timer",
            Text::FollowUp { .. } => "follow_up",
            Text::Unwatched { .. } => "unwatched",
        }
    }

    /// The text in `lang`; `with_position` only for SMS.
    pub fn render(&self, lang: Lang, with_position: bool) -> String {
        let pick = |da: String, sv: String, en: String| match lang {
            Lang::Da => da,
            Lang::Sv => sv,
            Lang::En => en,
        };
        match self {
            Text::Reminder { minutes } => pick(
                format!("Makker: Tjek ind inden {minutes} min. Svar OK."),
                format!("Makker: Checka in inom {minutes} min. Svara OK."),
                format!("Makker: Check in within {minutes} min. Reply OK."),
            ),
            Text::Alarm {
                kind,
                worker,
                place,
                warnings,
                position,
                link,
            } => {
                let what = alarm_name(*kind, lang);
                let mut text = pick(
                    format!("MAKKER ALARM: {what} – {worker}, {place}."),
                    format!("MAKKER LARM: {what} – {worker}, {place}."),
                    format!("MAKKER ALARM: {what} – {worker}, {place}."),
                );
                if !warnings.is_empty() {
                    let label = pick("Advarsel".into(), "Varning".into(), "Warning".into());
                    text.push_str(&format!(" {label}: {}.", warnings.join(", ")));
                }
                if let (true, Some(p)) = (with_position, position) {
                    text.push_str(&format!(" {:.5},{:.5}.", p.lat, p.lon));
                }
                text.push_str(&pick(
                    format!(" Kvitter: svar TAG eller {link} Ring 112 ved fare."),
                    format!(" Kvittera: svara TAR eller {link} Ring 112 vid fara."),
                    format!(" Acknowledge: reply TAKE or {link} Call 112 if in danger."),
                ));
                text
            }
            Text::StandDown { worker } => pick(
                format!("Makker: Afblæst – {worker} er i sikkerhed."),
                format!("Makker: Avblåst – {worker} är i säkerhet."),
                format!("Makker: Stand-down – {worker} is safe."),
            ),
            Text::TellColleague { worker, place } => pick(
                format!("Makker: {worker} har forladt hjemmet ({place})."),
                format!("Makker: {worker} har lämnat hemmet ({place})."),
                format!("Makker: {worker} has left the home ({place})."),
            ),
            Text::TwoPersonBreak {
                worker,
                place,
                minutes,
            } => pick(
                format!("Makker: {worker} er nu alene ved {place} og tjekker ind hvert {minutes}. min."),
                format!("Makker: {worker} är nu ensam vid {place} och checkar in var {minutes}:e min."),
                format!("Makker: {worker} is now alone at {place}, checking in every {minutes} min."),
            ),
            Text::LoneTimer { minutes } => pick(
                format!("Makker: Du er nu alene. Tjek ind inden {minutes} min. Svar OK."),
                format!("Makker: Du är nu ensam. Checka in inom {minutes} min. Svara OK."),
                format!("Makker: You are alone now. Check in within {minutes} min. Reply OK."),
            ),
            Text::FollowUp { worker } => pick(
                format!("Makker: Alarmen for {worker} er kvitteret, men ikke afsluttet."),
                format!("Makker: Larmet för {worker} är kvitterat men inte avslutat."),
                format!("Makker: The alarm for {worker} is acknowledged but not resolved."),
            ),
            Text::Unwatched { team, minutes } => pick(
                format!(
                    "Makker: Ingen tavle har været åben for {team} i {minutes} min, mens der er folk på vagt. Åbn tavlen."
                ),
                format!(
                    "Makker: Ingen tavla har varit öppen för {team} på {minutes} min medan folk är i tjänst. Öppna tavlan."
                ),
                format!(
                    "Makker: No board has been open for {team} for {minutes} min while people are on shift. Open the board."
                ),
            ),
        }
    }
}

fn alarm_name(kind: AlarmKind, lang: Lang) -> &'static str {
    match (kind, lang) {
        (AlarmKind::MissedCheckIn, Lang::Da) => "ikke tjekket ind",
        (AlarmKind::MissedCheckIn, Lang::Sv) => "inte incheckad",
        (AlarmKind::MissedCheckIn, Lang::En) => "missed check-in",
        (AlarmKind::MissedCheckOut, Lang::Da) => "ikke tjekket ud",
        (AlarmKind::MissedCheckOut, Lang::Sv) => "inte utcheckad",
        (AlarmKind::MissedCheckOut, Lang::En) => "missed check-out",
        (AlarmKind::Sos, Lang::Da) => "SOS / nødkald",
        (AlarmKind::Sos, Lang::Sv) => "SOS / nödlarm",
        (AlarmKind::Sos, Lang::En) => "SOS",
        // A duress alarm reads like any alarm to those who are told; never to the worker.
        (AlarmKind::Duress, Lang::Da) => "tvangskode",
        (AlarmKind::Duress, Lang::Sv) => "tvångskod",
        (AlarmKind::Duress, Lang::En) => "duress PIN",
        (AlarmKind::LostHeartbeat, Lang::Da) => "telefonen er tavs",
        (AlarmKind::LostHeartbeat, Lang::Sv) => "telefonen är tyst",
        (AlarmKind::LostHeartbeat, Lang::En) => "phone went silent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_alarm_never_carries_the_position_but_an_sms_does() {
        let warnings = vec!["Hund".to_owned()];
        let text = Text::Alarm {
            kind: AlarmKind::MissedCheckOut,
            worker: "Anna",
            place: "Hjem T-04",
            warnings: &warnings,
            position: Some(Position::parse(56.1719, 10.211).unwrap()),
            link: "https://makker.example/a/1",
        };
        let push = text.render(Lang::Da, false);
        let sms = text.render(Lang::Da, true);
        assert!(!push.contains("56.17"), "{push}");
        assert!(sms.contains("56.17190,10.21100"), "{sms}");
        assert!(
            sms.starts_with("MAKKER ALARM: ikke tjekket ud – Anna, Hjem T-04. Advarsel: Hund."),
            "{sms}"
        );
    }

    #[test]
    fn every_text_speaks_three_languages() {
        let t = Text::StandDown { worker: "Bo" };
        let all: Vec<String> = [Lang::Da, Lang::Sv, Lang::En]
            .iter()
            .map(|l| t.render(*l, true))
            .collect();
        assert_eq!(all[0], "Makker: Afblæst – Bo er i sikkerhed.");
        assert_ne!(all[0], all[1]);
        assert_ne!(all[1], all[2]);
    }
}
