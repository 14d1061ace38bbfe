//! The safety policy (TOML), as a municipality writes it: parsing never panics, and a policy
//! that parses is usable: every kind and level has a rule, a risk assessment scores, a visit
//! started at the longest allowed duration has timers, and the policy survives TOML and back.
#![no_main]

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use makker_domain::policy::Policy;
use makker_domain::risk::{RiskLevel, assess};
use makker_domain::visit::{ParticipantRole, StartVisit, Visit, VisitKind};
use makker_domain::{PersonId, PlaceId, TeamId, VisitId};
use uuid::Uuid;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = Policy::from_toml(text) else {
        return;
    };
    let again = toml::to_string(&policy).expect("a parsed policy serializes");
    assert_eq!(Policy::from_toml(&again).expect("and parses again"), policy);

    for yes in [false, true] {
        let answers: BTreeMap<String, bool> = policy
            .assessment
            .questions
            .iter()
            .map(|q| (q.id.clone(), yes))
            .collect();
        let _ = assess(&policy, &answers, usize::MAX);
    }
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 13, 0, 0).unwrap();
    for kind in VisitKind::ALL {
        for level in RiskLevel::ALL {
            let rule = policy.rule_for(kind, level);
            let start = StartVisit {
                id: VisitId(Uuid::nil()),
                team: TeamId(Uuid::nil()),
                kind,
                place: PlaceId(Uuid::nil()),
                risk: Some(makker_domain::risk::Assessed {
                    points: u32::MAX,
                    level,
                }),
                participants: vec![(PersonId(Uuid::from_u128(1)), ParticipantRole::Talker)],
                planned_minutes: rule.max_minutes,
                lone_reason: Some("fuzz".into()),
                approved_by: Some(PersonId(Uuid::from_u128(2))),
                tell_colleague: Some(PersonId(Uuid::from_u128(3))),
            };
            if let Ok((visit, _)) = Visit::start(&policy, start, now) {
                let t = &policy.timers;
                let _ = visit.timers(t.reminder_before_minutes, t.heartbeat_silence_minutes);
            }
        }
    }
});
