//! Why a request was refused, with a stable code for machines and a sentence for the worker.

use crate::risk::RiskLevel;
use crate::text::{Lang, Texts};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message(Lang::En))]
pub enum Refusal {
    // Risk assessment (rule 2, 3).
    AssessmentMissing,
    AssessmentIncomplete { missing: Vec<String> },
    UnknownQuestion { id: String },
    Declined { reason: Texts },
    // Participants (rules 1, 4, 5, 6, 7).
    TooFewParticipants { min: u8, level: RiskLevel },
    LoneReasonRequired,
    LoneApprovalRequired,
    ColleagueToTellRequired,
    OneTalker,
    DuplicateParticipant,
    // Timing.
    BadDuration { max_minutes: u32 },
    TooLong { max_minutes: u32 },
    // Lifecycle.
    NotParticipant,
    AlreadyParticipant,
    AlreadyCheckedOut,
    VisitEnded,
    OnlyObserverWithdraws,
    AlreadyInVisit,
    NotOnShift,
    AlreadyOnShift,
    WrongPin,
    // Alarms.
    OwnAlarm,
    AlarmTaken,
    AlarmResolved,
    AcknowledgeFirst,
}

impl Refusal {
    /// A stable, machine-readable code (also the problem type's last segment).
    pub fn code(&self) -> &'static str {
        use Refusal::*;
        match self {
            AssessmentMissing => "assessment-missing",
            AssessmentIncomplete { .. } => "assessment-incomplete",
            UnknownQuestion { .. } => "unknown-question",
            Declined { .. } => "contact-declined",
            TooFewParticipants { .. } => "too-few-participants",
            LoneReasonRequired => "lone-reason-required",
            LoneApprovalRequired => "lone-approval-required",
            ColleagueToTellRequired => "colleague-to-tell-required",
            OneTalker => "one-talker",
            DuplicateParticipant => "duplicate-participant",
            BadDuration { .. } => "bad-duration",
            TooLong { .. } => "too-long",
            NotParticipant => "not-participant",
            AlreadyParticipant => "already-participant",
            AlreadyCheckedOut => "already-checked-out",
            VisitEnded => "visit-ended",
            OnlyObserverWithdraws => "only-observer-withdraws",
            AlreadyInVisit => "already-in-visit",
            NotOnShift => "not-on-shift",
            AlreadyOnShift => "already-on-shift",
            WrongPin => "wrong-pin",
            OwnAlarm => "own-alarm",
            AlarmTaken => "alarm-taken",
            AlarmResolved => "alarm-resolved",
            AcknowledgeFirst => "acknowledge-first",
        }
    }

    /// What the worker reads on the phone.
    pub fn message(&self, lang: Lang) -> String {
        use Refusal::*;
        let t = |da: &str, sv: &str, en: &str| {
            match lang {
                Lang::Da => da,
                Lang::Sv => sv,
                Lang::En => en,
            }
            .to_owned()
        };
        match self {
            AssessmentMissing => t(
                "Lav en risikovurdering før kontakt.",
                "Gör en riskbedömning före kontakt.",
                "Make a risk assessment before contact.",
            ),
            AssessmentIncomplete { missing } => {
                let list = missing.join(", ");
                match lang {
                    Lang::Da => format!("Risikovurderingen mangler svar: {list}."),
                    Lang::Sv => format!("Riskbedömningen saknar svar: {list}."),
                    Lang::En => format!("The risk assessment is missing answers: {list}."),
                }
            }
            UnknownQuestion { id } => match lang {
                Lang::Da => format!("Ukendt spørgsmål i risikovurderingen: {id}."),
                Lang::Sv => format!("Okänd fråga i riskbedömningen: {id}."),
                Lang::En => format!("Unknown question in the risk assessment: {id}."),
            },
            Declined { reason } => reason.get(lang).to_owned(),
            TooFewParticipants { min, level } => {
                let level = level_name(*level, lang);
                match lang {
                    Lang::Da => format!(
                        "Dette besøg kræver mindst {min} medarbejdere (risiko {level}). Tag en makker med."
                    ),
                    Lang::Sv => format!(
                        "Detta besök kräver minst {min} medarbetare (risk {level}). Ta med en kollega."
                    ),
                    Lang::En => {
                        format!("This visit needs at least {min} workers (risk {level}). Bring a partner.")
                    }
                }
            }
            LoneReasonRequired => t(
                "Skriv en begrundelse for at gå alene.",
                "Skriv en motivering för att gå ensam.",
                "Write a reason for going alone.",
            ),
            LoneApprovalRequired => t(
                "At gå alene kræver godkendelse fra vagthavende.",
                "Att gå ensam kräver godkännande av arbetsledaren i tjänst.",
                "Going alone needs approval from the supervisor on duty.",
            ),
            ColleagueToTellRequired => t(
                "Vælg en kollega, der får besked, når du forlader hjemmet.",
                "Välj en kollega som får besked när du lämnar hemmet.",
                "Choose a colleague to be told when you leave the home.",
            ),
            OneTalker => t(
                "Én er samtalefører, de andre observerer.",
                "En är samtalsledare, de andra observerar.",
                "One worker talks, the others observe.",
            ),
            DuplicateParticipant => t(
                "Samme medarbejder er valgt to gange.",
                "Samma medarbetare är vald två gånger.",
                "The same worker is chosen twice.",
            ),
            BadDuration { max_minutes } => match lang {
                Lang::Da => format!("Varigheden skal være mellem 1 og {max_minutes} minutter."),
                Lang::Sv => format!("Längden ska vara mellan 1 och {max_minutes} minuter."),
                Lang::En => format!("The duration must be between 1 and {max_minutes} minutes."),
            },
            TooLong { max_minutes } => match lang {
                Lang::Da => format!("Besøget må højst vare {max_minutes} minutter. Tjek ud og start et nyt."),
                Lang::Sv => {
                    format!("Besöket får vara högst {max_minutes} minuter. Checka ut och starta ett nytt.")
                }
                Lang::En => format!(
                    "The visit may last at most {max_minutes} minutes. Check out and start a new one."
                ),
            },
            NotParticipant => t(
                "Du er ikke med i dette besøg.",
                "Du är inte med i detta besök.",
                "You are not in this visit.",
            ),
            AlreadyParticipant => t(
                "Du er allerede med i besøget.",
                "Du är redan med i besöket.",
                "You are already in this visit.",
            ),
            AlreadyCheckedOut => t(
                "Du er allerede tjekket ud.",
                "Du har redan checkat ut.",
                "You have already checked out.",
            ),
            VisitEnded => t(
                "Besøget er afsluttet.",
                "Besöket är avslutat.",
                "The visit has ended.",
            ),
            OnlyObserverWithdraws => t(
                "Kun observatøren beslutter, at I går.",
                "Bara observatören bestämmer att ni går.",
                "Only the observer decides that you leave.",
            ),
            AlreadyInVisit => t(
                "Du er allerede i et aktivt besøg. Tjek ud først.",
                "Du är redan i ett aktivt besök. Checka ut först.",
                "You are already in an active visit. Check out first.",
            ),
            NotOnShift => t(
                "Start din vagt først.",
                "Starta ditt pass först.",
                "Start your shift first.",
            ),
            AlreadyOnShift => t(
                "Din vagt er allerede startet.",
                "Ditt pass är redan startat.",
                "Your shift has already started.",
            ),
            WrongPin => t("Forkert PIN.", "Fel PIN.", "Wrong PIN."),
            OwnAlarm => t(
                "Du kan ikke kvittere for din egen alarm.",
                "Du kan inte kvittera ditt eget larm.",
                "You cannot acknowledge your own alarm.",
            ),
            AlarmTaken => t(
                "En kollega har allerede taget alarmen.",
                "En kollega har redan tagit larmet.",
                "A colleague has already taken this alarm.",
            ),
            AlarmResolved => t(
                "Alarmen er afsluttet.",
                "Larmet är avslutat.",
                "The alarm is resolved.",
            ),
            AcknowledgeFirst => t(
                "Kvitter for alarmen, før du afslutter den.",
                "Kvittera larmet innan du avslutar det.",
                "Acknowledge the alarm before resolving it.",
            ),
        }
    }
}

fn level_name(level: RiskLevel, lang: Lang) -> &'static str {
    use RiskLevel::*;
    match (lang, level) {
        (Lang::Da, Low) => "lav",
        (Lang::Da, Medium) => "middel",
        (Lang::Da, High) => "høj",
        (Lang::Da, VeryHigh) => "meget høj",
        (Lang::Sv, Low) => "låg",
        (Lang::Sv, Medium) => "medel",
        (Lang::Sv, High) => "hög",
        (Lang::Sv, VeryHigh) => "mycket hög",
        (Lang::En, Low) => "low",
        (Lang::En, Medium) => "medium",
        (Lang::En, High) => "high",
        (Lang::En, VeryHigh) => "very high",
    }
}
