//! The safety policy: what each kind of visit at each risk level requires, the risk
//! questions, and the escalation chains. Written in TOML by a municipality; the default
//! (`default-policy.toml`, compiled in) implements the seven rules of DESIGN.md §1.
//!
//! Invariants after [`Policy::from_toml`]: every (visit kind, risk level) pair matches exactly
//! one rule's first match; every rule names an existing chain; question ids are unique.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::risk::RiskLevel;
use crate::text::Texts;
use crate::visit::VisitKind;

pub const DEFAULT_POLICY_TOML: &str = include_str!("../default-policy.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub clock: ClockPolicy,
    pub assessment: AssessmentPolicy,
    pub timers: Timers,
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
    #[serde(rename = "chain")]
    pub chains: BTreeMap<String, Chain>,
}

/// How far a phone's clock may be from the server's for an event it queued offline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockPolicy {
    pub max_client_lag_minutes: u32,
    pub max_client_lead_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssessmentPolicy {
    pub reuse_minutes: u32,
    pub warning_points: u32,
    pub levels: Levels,
    #[serde(rename = "question")]
    pub questions: Vec<Question>,
}

/// The points at which medium, high and very high begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Levels {
    pub medium: u32,
    pub high: u32,
    pub very_high: u32,
}

impl Levels {
    pub fn level(&self, points: u32) -> RiskLevel {
        match points {
            p if p >= self.very_high => RiskLevel::VeryHigh,
            p if p >= self.high => RiskLevel::High,
            p if p >= self.medium => RiskLevel::Medium,
            _ => RiskLevel::Low,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub text: Texts,
    /// Points added by a "yes".
    pub points: u32,
    /// When set, a "yes" refuses the visit with this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse: Option<Texts>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timers {
    /// A reminder this long before a check-in or check-out falls due.
    pub reminder_before_minutes: u32,
    /// An acknowledged alarm not resolved within this time escalates again.
    pub ack_follow_up_minutes: u32,
    /// The escalation chain of an SOS (and a duress alarm outside a visit).
    pub sos_chain: String,
    /// Phones send heartbeats during a visit; this long without any sign of life raises an
    /// alarm. Zero: silence never alarms (phones in bad coverage would cry wolf).
    #[serde(default)]
    pub heartbeat_silence_minutes: u32,
    /// When a partner leaves a visit that needs two, the one left behind must check in this
    /// often until they leave too (their lone timer).
    #[serde(default = "default_break_check_in")]
    pub break_check_in_minutes: u32,
    /// While someone of a team is on shift and no supervisor board of the team has been
    /// connected for this long, the team's supervisors and managers are told: nobody is
    /// watching. Zero: never.
    #[serde(default = "default_unwatched_board")]
    pub unwatched_board_minutes: u32,
}

fn default_break_check_in() -> u32 {
    10
}

fn default_unwatched_board() -> u32 {
    15
}

/// What to do when fewer than `min_participants` start a visit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Lone {
    #[default]
    Refused,
    /// Allowed with a written reason.
    Reason,
    /// Allowed with a supervisor's approval.
    Approval,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub kinds: Vec<VisitKind>,
    pub levels: Vec<RiskLevel>,
    pub min_participants: u8,
    #[serde(default)]
    pub lone: Lone,
    pub check_in_minutes: u32,
    pub max_minutes: u32,
    pub grace_minutes: u32,
    /// A worker alone tells a colleague when leaving (rule 6).
    #[serde(default)]
    pub tell_colleague_on_exit: bool,
    pub chain: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Chain {
    pub steps: Vec<Step>,
    /// After the last step, everyone on duty is told again this often until acknowledged.
    pub repeat_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub after_minutes: u32,
    pub notify: Vec<Recipient>,
    pub channels: Vec<Channel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    Worker,
    Partner,
    ColleaguesOnShift,
    Supervisor,
    Manager,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Push,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Push => "push",
            Channel::Sms => "sms",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy is not valid TOML for Makker: {0}")]
    Syntax(String),
    #[error("no rule covers {kind} visits at {level} risk")]
    Uncovered { kind: &'static str, level: &'static str },
    #[error("rule {index} names the escalation chain {chain:?}, which is not defined")]
    UnknownChain { index: usize, chain: String },
    #[error("the risk question {0:?} is defined twice")]
    DuplicateQuestion(String),
    #[error("{0}")]
    Invalid(String),
}

impl Default for Policy {
    fn default() -> Self {
        Policy::from_toml(DEFAULT_POLICY_TOML).expect("BUG: the compiled-in default policy is valid")
    }
}

impl Policy {
    /// Parses and validates a policy.
    ///
    /// # Errors
    /// TOML that does not fit the schema, or a policy that leaves a gap or contradicts itself.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// The JSON Schema of the policy file (written to `schemas/policy.schema.json`).
    pub fn json_schema() -> schemars::Schema {
        schemars::schema_for!(Policy)
    }

    /// The rule that decides `kind` at `level`: the first that matches.
    pub fn rule_for(&self, kind: VisitKind, level: RiskLevel) -> &Rule {
        self.rules
            .iter()
            .find(|r| r.kinds.contains(&kind) && r.levels.contains(&level))
            .expect("BUG: a validated policy covers every kind and level")
    }

    fn validate(&self) -> Result<(), PolicyError> {
        let invalid = |m: &str| Err(PolicyError::Invalid(m.to_owned()));
        for kind in VisitKind::ALL {
            for level in RiskLevel::ALL {
                if !self
                    .rules
                    .iter()
                    .any(|r| r.kinds.contains(&kind) && r.levels.contains(&level))
                {
                    return Err(PolicyError::Uncovered {
                        kind: kind.as_str(),
                        level: level.as_str(),
                    });
                }
            }
        }
        for (index, rule) in self.rules.iter().enumerate() {
            if !self.chains.contains_key(&rule.chain) {
                return Err(PolicyError::UnknownChain {
                    index,
                    chain: rule.chain.clone(),
                });
            }
            if rule.min_participants == 0 || rule.check_in_minutes == 0 || rule.max_minutes == 0 {
                return invalid(
                    "a rule needs at least one participant, a check-in interval and a maximum duration",
                );
            }
        }
        if !self.chains.contains_key(&self.timers.sos_chain) {
            return invalid("timers.sos_chain names an escalation chain that is not defined");
        }
        let mut seen = std::collections::BTreeSet::new();
        for q in &self.assessment.questions {
            if q.id.trim().is_empty() {
                return invalid("a risk question needs an id");
            }
            if !seen.insert(q.id.as_str()) {
                return Err(PolicyError::DuplicateQuestion(q.id.clone()));
            }
        }
        let l = self.assessment.levels;
        if !(0 < l.medium && l.medium < l.high && l.high < l.very_high) {
            return invalid("risk levels must start at rising points: 0 < medium < high < very_high");
        }
        for (name, chain) in &self.chains {
            if chain.steps.is_empty() || chain.repeat_minutes == 0 {
                return Err(PolicyError::Invalid(format!(
                    "the escalation chain {name:?} needs steps and a repeat interval"
                )));
            }
            if chain
                .steps
                .windows(2)
                .any(|w| w[0].after_minutes > w[1].after_minutes)
            {
                return Err(PolicyError::Invalid(format!(
                    "the steps of chain {name:?} must be in time order"
                )));
            }
            if chain
                .steps
                .iter()
                .any(|s| s.notify.is_empty() || s.channels.is_empty())
            {
                return Err(PolicyError::Invalid(format!(
                    "every step of chain {name:?} needs recipients and channels"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_valid() {
        let p = Policy::default();
        assert_eq!(p.assessment.questions.len(), 7);
        assert!(p.chains.contains_key("standard"));
    }

    #[test]
    fn a_policy_with_a_gap_is_refused_with_the_gap_named() {
        let text = DEFAULT_POLICY_TOML.replacen("kinds = [\"home_visit_unannounced\"]", "kinds = []", 1);
        assert_eq!(
            Policy::from_toml(&text),
            Err(PolicyError::Uncovered {
                kind: "home_visit_unannounced",
                level: "low"
            })
        );
    }

    #[test]
    fn a_rule_naming_a_missing_chain_is_refused() {
        let text = DEFAULT_POLICY_TOML.replacen("\nchain = \"urgent\"", "\nchain = \"nobody\"", 1);
        assert!(matches!(
            Policy::from_toml(&text),
            Err(PolicyError::UnknownChain { .. })
        ));
    }

    #[test]
    fn unknown_fields_are_syntax_errors() {
        let text = format!("{DEFAULT_POLICY_TOML}\nsurprise = 1\n");
        assert!(matches!(Policy::from_toml(&text), Err(PolicyError::Syntax(_))));
    }

    #[test]
    fn levels_begin_at_their_thresholds() {
        let l = Levels {
            medium: 3,
            high: 6,
            very_high: 9,
        };
        let got: Vec<_> = [0, 2, 3, 5, 6, 8, 9, 100].map(|p| l.level(p)).to_vec();
        use RiskLevel::*;
        assert_eq!(
            got,
            vec![Low, Low, Medium, Medium, High, High, VeryHigh, VeryHigh]
        );
    }
}
