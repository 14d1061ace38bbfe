//! The seven rules of DESIGN.md §1 under the default policy, one allowed and one refused start
//! each, and the lifecycle transitions.

use chrono::TimeZone;
use uuid::Uuid;

use super::*;
use crate::risk::{Answers, assess};
use crate::text::Lang;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 14, 0, 0).unwrap()
}

fn person(n: u128) -> PersonId {
    PersonId(Uuid::from_u128(n))
}

const ANNA: u128 = 1;
const BO: u128 = 2;
const CARL: u128 = 3;

/// A start request built up by each test.
struct Try {
    kind: VisitKind,
    yes: Vec<&'static str>,
    warnings: usize,
    people: Vec<(PersonId, ParticipantRole)>,
    reason: Option<&'static str>,
    approved: bool,
    tell: Option<PersonId>,
    assessed: bool,
}

fn lone(kind: VisitKind) -> Try {
    Try {
        kind,
        yes: vec![],
        warnings: 0,
        people: vec![(person(ANNA), ParticipantRole::Talker)],
        reason: None,
        approved: false,
        tell: None,
        assessed: true,
    }
}

fn pair(kind: VisitKind) -> Try {
    Try {
        people: vec![
            (person(ANNA), ParticipantRole::Talker),
            (person(BO), ParticipantRole::Observer),
        ],
        ..lone(kind)
    }
}

impl Try {
    fn yes(mut self, ids: &[&'static str]) -> Self {
        self.yes.extend_from_slice(ids);
        self
    }

    fn run(self) -> Result<(Visit, Vec<Effect>), Refusal> {
        let policy = Policy::default();
        let answers: Answers = policy
            .assessment
            .questions
            .iter()
            .map(|q| (q.id.clone(), self.yes.contains(&q.id.as_str())))
            .collect();
        let risk = if self.assessed {
            Some(assess(&policy, &answers, self.warnings)?)
        } else {
            None
        };
        let req = StartVisit {
            id: VisitId(Uuid::from_u128(100)),
            team: TeamId(Uuid::from_u128(200)),
            kind: self.kind,
            place: PlaceId(Uuid::from_u128(300)),
            risk,
            participants: self.people,
            planned_minutes: 30,
            lone_reason: self.reason.map(str::to_owned),
            approved_by: self.approved.then(|| person(99)),
            tell_colleague: self.tell,
        };
        Visit::start(&policy, req, now())
    }
}

fn refused(t: Try) -> Refusal {
    t.run().expect_err("the start should be refused")
}

fn allowed(t: Try) -> Visit {
    t.run().expect("the start should be allowed").0
}

#[test]
fn rule_1_street_work_with_an_unknown_citizen_is_never_done_alone() {
    allowed(lone(VisitKind::StreetContact));
    allowed(pair(VisitKind::StreetContact).yes(&["unknown_citizen"]));
    let r = refused(lone(VisitKind::StreetContact).yes(&["unknown_citizen"]));
    assert_eq!(r.code(), "too-few-participants");
    assert_eq!(
        r.message(Lang::Da),
        "Dette besøg kræver mindst 2 medarbejdere (risiko middel). Tag en makker med."
    );
}

#[test]
fn rule_2_a_risk_assessment_comes_before_contact() {
    allowed(lone(VisitKind::DropIn));
    let r = refused(Try {
        assessed: false,
        ..lone(VisitKind::DropIn)
    });
    assert_eq!(r, Refusal::AssessmentMissing);
    assert_eq!(r.message(Lang::Da), "Lav en risikovurdering før kontakt.");
}

#[test]
fn rule_3_workers_are_guests_and_do_not_visit_a_citizen_who_declined() {
    allowed(pair(VisitKind::HomeVisitAnnounced).yes(&["intoxicated"]));
    let r = refused(pair(VisitKind::HomeVisitAnnounced).yes(&["contact_declined"]));
    assert_eq!(r.code(), "contact-declined");
    assert_eq!(
        r.message(Lang::Da),
        "Vi er gæster: borgeren har afvist kontakt. Besøget kan ikke startes."
    );
}

#[test]
fn rule_4_one_worker_talks_and_the_other_observes() {
    let v = allowed(pair(VisitKind::Park).yes(&["restless_group"]));
    assert_eq!(v.participants[1].role, ParticipantRole::Observer);
    let both_talk = Try {
        people: vec![
            (person(ANNA), ParticipantRole::Talker),
            (person(BO), ParticipantRole::Talker),
        ],
        ..pair(VisitKind::Park).yes(&["restless_group"])
    };
    let r = refused(both_talk);
    assert_eq!(r, Refusal::OneTalker);
    assert_eq!(r.message(Lang::Da), "Én er samtalefører, de andre observerer.");
}

#[test]
fn rule_5_home_visits_are_by_two_unless_assessed_safe() {
    allowed(Try {
        tell: Some(person(CARL)),
        ..lone(VisitKind::HomeVisitAnnounced)
    });
    allowed(pair(VisitKind::HomeVisitAnnounced).yes(&["violence_known"]));
    let r = refused(Try {
        tell: Some(person(CARL)),
        ..lone(VisitKind::HomeVisitAnnounced).yes(&["violence_known"])
    });
    assert_eq!(
        r.message(Lang::Da),
        "Dette besøg kræver mindst 2 medarbejdere (risiko høj). Tag en makker med."
    );
    // At medium risk a supervisor may approve going alone.
    let medium = || Try {
        tell: Some(person(CARL)),
        ..lone(VisitKind::HomeVisitAnnounced).yes(&["unknown_citizen"])
    };
    assert_eq!(refused(medium()), Refusal::LoneApprovalRequired);
    allowed(Try {
        approved: true,
        ..medium()
    });
}

#[test]
fn rule_6_a_worker_alone_in_a_home_names_a_colleague_to_tell_on_leaving() {
    let mut v = allowed(Try {
        tell: Some(person(CARL)),
        ..lone(VisitKind::HomeVisitAnnounced)
    });
    let r = refused(lone(VisitKind::HomeVisitAnnounced));
    assert_eq!(
        r.message(Lang::Da),
        "Vælg en kollega, der får besked, når du forlader hjemmet."
    );
    let effects = v.check_out(person(ANNA), Pin::Normal, now()).unwrap();
    assert!(effects.contains(&Effect::TellColleague {
        colleague: person(CARL),
        worker: person(ANNA)
    }));
}

#[test]
fn rule_7_unannounced_home_visits_are_always_by_two() {
    allowed(pair(VisitKind::HomeVisitUnannounced));
    let r = refused(Try {
        tell: Some(person(CARL)),
        reason: Some("kender ham godt"),
        ..lone(VisitKind::HomeVisitUnannounced)
    });
    assert_eq!(
        r,
        Refusal::TooFewParticipants {
            min: 2,
            level: RiskLevel::Low
        }
    );
    assert_eq!(
        r.message(Lang::Sv),
        "Detta besök kräver minst 2 medarbetare (risk låg). Ta med en kollega."
    );
}

#[test]
fn a_written_reason_allows_a_lone_visit_where_the_policy_accepts_one() {
    let high = || lone(VisitKind::DropIn).yes(&["violence_known"]);
    assert_eq!(
        refused(Try {
            reason: Some("   "),
            ..high()
        }),
        Refusal::LoneReasonRequired
    );
    let v = allowed(Try {
        reason: Some(" Personalet er til stede "),
        ..high()
    });
    assert_eq!(v.lone_reason.as_deref(), Some("Personalet er til stede"));
}

#[test]
fn a_place_warning_can_turn_an_allowed_lone_visit_into_a_refused_one() {
    allowed(lone(VisitKind::Park));
    assert_eq!(
        refused(Try {
            warnings: 1,
            ..lone(VisitKind::Park)
        })
        .code(),
        "too-few-participants"
    );
}

#[test]
fn the_same_worker_twice_is_refused() {
    let t = Try {
        people: vec![
            (person(ANNA), ParticipantRole::Talker),
            (person(ANNA), ParticipantRole::Observer),
        ],
        ..pair(VisitKind::Park)
    };
    assert_eq!(refused(t), Refusal::DuplicateParticipant);
}

#[test]
fn a_planned_duration_beyond_the_maximum_is_refused() {
    let policy = Policy::default();
    let max = policy.rule_for(VisitKind::DropIn, RiskLevel::Low).max_minutes;
    let t = lone(VisitKind::DropIn);
    let mut req_ok = t.run().unwrap().0;
    assert_eq!(req_ok.planned_end, now() + Duration::minutes(30));
    // Extending up to the maximum works, one minute beyond does not.
    req_ok.extend(person(ANNA), max - 30, now()).unwrap();
    assert_eq!(
        req_ok.extend(person(ANNA), 1, now()),
        Err(Refusal::TooLong { max_minutes: max })
    );
}

#[test]
fn a_partner_joins_and_a_second_talker_is_refused() {
    let mut v = allowed(lone(VisitKind::DropIn));
    assert_eq!(
        v.join(person(BO), ParticipantRole::Talker, now()),
        Err(Refusal::OneTalker)
    );
    assert_eq!(
        v.join(person(BO), ParticipantRole::Observer, now()).unwrap(),
        vec![Effect::Joined {
            person: person(BO),
            role: ParticipantRole::Observer
        }]
    );
    assert_eq!(
        v.join(person(BO), ParticipantRole::Observer, now()),
        Err(Refusal::AlreadyParticipant)
    );
}

#[test]
fn check_in_moves_the_next_check_in_due_time() {
    let mut v = allowed(pair(VisitKind::Park));
    let later = now() + Duration::minutes(10);
    assert_eq!(v.check_in_due(), now() + Duration::minutes(30));
    v.check_in(person(BO), later).unwrap();
    // The interval would pass the planned end, so the planned end comes first.
    assert_eq!(v.check_in_due(), v.planned_end);
    assert_eq!(v.check_in(person(CARL), later), Err(Refusal::NotParticipant));
}

#[test]
fn a_partner_leaving_early_starts_the_lone_timer_and_names_them_the_colleague_to_tell() {
    let mut v = allowed(pair(VisitKind::HomeVisitUnannounced));
    assert_eq!(v.check_in_due(), now() + Duration::minutes(20));
    let left_at = now() + Duration::minutes(15);
    let effects = v.check_out(person(BO), Pin::Normal, left_at).unwrap();
    // The lone timer counts from the break, at the policy's shorter interval (10 of 20 minutes).
    let lone_due = left_at + Duration::minutes(10);
    assert_eq!(
        effects,
        vec![
            Effect::CheckedOut { person: person(BO) },
            Effect::TwoPersonBreak {
                left: person(BO),
                remaining: vec![person(ANNA)],
                check_in_due: lone_due,
            },
        ]
    );
    assert_eq!(v.check_in_due(), lone_due);
    assert_eq!(v.state, VisitState::Active);
    assert_eq!(v.check_in(person(BO), now()), Err(Refusal::AlreadyCheckedOut));
    let later = left_at + Duration::minutes(1);
    v.check_in(person(ANNA), later).unwrap();
    assert_eq!(
        v.check_in_due(),
        later + Duration::minutes(10),
        "the lone timer keeps running"
    );
    let last = v.check_out(person(ANNA), Pin::Normal, later).unwrap();
    assert_eq!(
        last,
        vec![
            Effect::CheckedOut { person: person(ANNA) },
            Effect::TellColleague {
                colleague: person(BO),
                worker: person(ANNA)
            },
            Effect::Ended
        ]
    );
    assert_eq!(v.state, VisitState::Ended);
    assert_eq!(v.check_in(person(ANNA), now()), Err(Refusal::VisitEnded));
}

#[test]
fn a_break_keeps_a_colleague_already_named_and_a_duress_exit_tells_nobody() {
    let mut v = allowed(Try {
        tell: Some(person(CARL)),
        ..pair(VisitKind::HomeVisitUnannounced)
    });
    v.check_out(person(BO), Pin::Normal, now()).unwrap();
    assert_eq!(v.tell_colleague, Some(person(CARL)));
    let last = v.check_out(person(ANNA), Pin::Duress, now()).unwrap();
    assert!(!last.iter().any(|e| matches!(e, Effect::TellColleague { .. })));
    assert!(last.contains(&Effect::DuressAlarm { person: person(ANNA) }));
}

#[test]
fn a_duress_check_out_looks_like_a_normal_one_and_records_duress() {
    let mut v = allowed(Try {
        tell: Some(person(CARL)),
        ..lone(VisitKind::HomeVisitAnnounced)
    });
    let effects = v.check_out(person(ANNA), Pin::Duress, now()).unwrap();
    assert_eq!(
        effects,
        vec![
            Effect::CheckedOut { person: person(ANNA) },
            Effect::DuressAlarm { person: person(ANNA) },
            Effect::Ended
        ]
    );
    assert_eq!(
        v.state,
        VisitState::Ended,
        "the visit ends exactly as with the normal PIN"
    );
}

#[test]
fn only_the_observer_decides_to_withdraw_and_everyone_leaves() {
    let mut v = allowed(pair(VisitKind::Park));
    assert_eq!(
        v.withdraw(person(ANNA), now()),
        Err(Refusal::OnlyObserverWithdraws)
    );
    let effects = v.withdraw(person(BO), now()).unwrap();
    assert_eq!(effects.first(), Some(&Effect::Withdrawn { by: person(BO) }));
    assert_eq!(effects.last(), Some(&Effect::Ended));
    assert!(v.participants.iter().all(|p| p.left_at == Some(now())));
}

#[test]
fn every_refusal_has_a_message_in_every_language() {
    let all = [
        Refusal::AssessmentMissing,
        Refusal::OneTalker,
        Refusal::WrongPin,
        Refusal::NotOnShift,
        Refusal::TooLong { max_minutes: 5 },
    ];
    for r in all {
        for lang in [Lang::Da, Lang::Sv, Lang::En] {
            assert!(!r.message(lang).is_empty());
        }
        assert_ne!(r.message(Lang::Da), r.message(Lang::En));
    }
}

#[test]
fn timers_follow_the_next_check_in_and_stop_when_the_visit_ends() {
    use crate::alarm::AlarmKind;
    let mut v = allowed(lone(VisitKind::Park));
    // Park, low risk: check in every 30 minutes, 5 minutes' grace; planned 30 minutes.
    let due = now() + Duration::minutes(30);
    assert_eq!(
        v.timers(5, 0),
        vec![
            Timer {
                kind: TimerKind::Reminder,
                due: due - Duration::minutes(5)
            },
            Timer {
                kind: TimerKind::Overdue,
                due: due + Duration::minutes(5)
            },
        ]
    );
    assert_eq!(
        v.overdue_alarm(),
        AlarmKind::MissedCheckOut,
        "the planned end comes with the check-in"
    );
    v.extend(person(ANNA), 60, now()).unwrap();
    assert_eq!(v.overdue_alarm(), AlarmKind::MissedCheckIn);
    v.check_out(person(ANNA), Pin::Normal, now()).unwrap();
    assert!(v.timers(5, 0).is_empty());
}

#[test]
fn a_heartbeat_moves_only_the_silence_timer() {
    let mut v = allowed(lone(VisitKind::Park));
    assert_eq!(
        v.timers(5, 10).last(),
        Some(&Timer {
            kind: TimerKind::Silence,
            due: now() + Duration::minutes(10)
        })
    );
    let later = now() + Duration::minutes(8);
    assert_eq!(v.heartbeat(person(ANNA), later), Ok(vec![]));
    assert_eq!(v.last_check_in_at, now(), "a heartbeat is not a check-in");
    assert_eq!(
        v.timers(5, 10).last(),
        Some(&Timer {
            kind: TimerKind::Silence,
            due: later + Duration::minutes(10)
        })
    );
    assert_eq!(v.timers(5, 0).len(), 2, "silence off: no silence timer");
    assert_eq!(v.heartbeat(person(BO), later), Err(Refusal::NotParticipant));
}
