//! The risk assessment: yes/no questions from the policy, weighted into a level.
//! Active place warnings add points, so a warning always pushes the level up.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::policy::Policy;
use crate::refusal::Refusal;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RiskLevel {
    Low,
    Medium,
    High,
    VeryHigh,
}

impl RiskLevel {
    pub const ALL: [RiskLevel; 4] = [
        RiskLevel::Low,
        RiskLevel::Medium,
        RiskLevel::High,
        RiskLevel::VeryHigh,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
            RiskLevel::VeryHigh => "very_high",
        }
    }

    /// # Errors
    /// An unknown level name.
    pub fn parse(s: &str) -> Result<Self, crate::UnknownName> {
        RiskLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| crate::UnknownName(s.to_owned()))
    }
}

/// Answers by question id.
pub type Answers = BTreeMap<String, bool>;

/// The outcome of scoring one set of answers at one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessed {
    pub points: u32,
    pub level: RiskLevel,
}

/// Scores `answers` against the policy's questions, with `active_warnings` on the place.
///
/// # Errors
/// Unanswered or unknown questions, or a "yes" to a question that refuses the visit.
pub fn assess(policy: &Policy, answers: &Answers, active_warnings: usize) -> Result<Assessed, Refusal> {
    let questions = &policy.assessment.questions;
    if let Some(id) = answers.keys().find(|id| !questions.iter().any(|q| &q.id == *id)) {
        return Err(Refusal::UnknownQuestion { id: id.clone() });
    }
    let missing: Vec<String> = questions
        .iter()
        .filter(|q| !answers.contains_key(&q.id))
        .map(|q| q.id.clone())
        .collect();
    if !missing.is_empty() {
        return Err(Refusal::AssessmentIncomplete { missing });
    }
    let yes = questions.iter().filter(|q| answers[&q.id]);
    let mut points = 0u32;
    for q in yes {
        if let Some(reason) = &q.refuse {
            return Err(Refusal::Declined {
                reason: reason.clone(),
            });
        }
        points = points.saturating_add(q.points);
    }
    let warning_points = u32::try_from(active_warnings)
        .unwrap_or(u32::MAX)
        .saturating_mul(policy.assessment.warning_points);
    let points = points.saturating_add(warning_points);
    Ok(Assessed {
        points,
        level: policy.assessment.levels.level(points),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_no(policy: &Policy) -> Answers {
        policy
            .assessment
            .questions
            .iter()
            .map(|q| (q.id.clone(), false))
            .collect()
    }

    #[test]
    fn no_risk_factors_is_low() {
        let p = Policy::default();
        let a = assess(&p, &all_no(&p), 0).unwrap();
        assert_eq!(
            a,
            Assessed {
                points: 0,
                level: RiskLevel::Low
            }
        );
    }

    #[test]
    fn a_missing_answer_is_named() {
        let p = Policy::default();
        let mut answers = all_no(&p);
        answers.remove("intoxicated");
        assert_eq!(
            assess(&p, &answers, 0),
            Err(Refusal::AssessmentIncomplete {
                missing: vec!["intoxicated".into()]
            })
        );
    }

    #[test]
    fn an_unknown_question_is_refused() {
        let p = Policy::default();
        let mut answers = all_no(&p);
        answers.insert("moon_phase".into(), true);
        assert!(matches!(
            assess(&p, &answers, 0),
            Err(Refusal::UnknownQuestion { .. })
        ));
    }

    #[test]
    fn an_active_warning_raises_the_level() {
        let p = Policy::default();
        let calm = assess(&p, &all_no(&p), 0).unwrap().level;
        let warned = assess(&p, &all_no(&p), 1).unwrap().level;
        assert!(warned > calm, "{warned:?} should be above {calm:?}");
    }

    proptest! {
        #[test]
        fn answering_yes_or_adding_a_warning_never_lowers_the_level(
            flips in proptest::collection::vec(any::<bool>(), 7), extra in 0usize..4, pick in 0usize..7
        ) {
            let p = Policy::default();
            let mut answers = Answers::new();
            for (q, yes) in p.assessment.questions.iter().zip(&flips) {
                // The refusing question is left at "no": it stops the visit, it does not score.
                answers.insert(q.id.clone(), *yes && q.refuse.is_none());
            }
            let base = assess(&p, &answers, 0).unwrap();
            let q = &p.assessment.questions[pick % p.assessment.questions.len()];
            if q.refuse.is_none() {
                let mut more = answers.clone();
                more.insert(q.id.clone(), true);
                prop_assert!(assess(&p, &more, 0).unwrap().level >= base.level);
            }
            prop_assert!(assess(&p, &answers, extra).unwrap().level >= base.level);
        }
    }
}
