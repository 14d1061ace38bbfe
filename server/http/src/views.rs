//! Domain and store records → wire types.

use chrono::Duration;
use makker_domain::alarm::{Alarm, AlarmState};
use makker_domain::geo::Shape;
use makker_domain::place::{Place, Warning};
use makker_domain::visit::{Visit, VisitState};
use makker_engine::{Colleague, NearbyPlace};
use makker_mobile_api::{
    AlarmView, AttemptView, ColleagueView, DeliveryView, LatLon, NearbyPlaceView, ParticipantView,
    PersonView, PhoneStatusView, PlaceView, ShiftView, VisitView, WarningView,
};
use makker_store::{Person, PhoneStatus, Shift};

pub fn person(p: &Person) -> PersonView {
    PersonView {
        id: p.id.0,
        username: p.username.clone(),
        display_name: p.display_name.clone(),
        role: p.role,
        lang: p.lang,
        teams: p.teams.iter().map(|t| t.0).collect(),
    }
}

pub fn shift(s: &Shift) -> ShiftView {
    ShiftView {
        id: s.id.0,
        team_id: s.team.0,
        started_at: s.started_at,
        ended_at: s.ended_at,
    }
}

pub fn phone_status(s: &PhoneStatus) -> PhoneStatusView {
    PhoneStatusView {
        person_id: s.person.0,
        battery_pct: s.battery_pct,
        charging: s.charging,
        reported_at: s.reported_at,
    }
}

pub fn visit(v: &Visit) -> VisitView {
    VisitView {
        id: v.id.0,
        kind: v.kind,
        place_id: v.place.0,
        state: match v.state {
            VisitState::Active => "active",
            VisitState::Ended => "ended",
        }
        .to_owned(),
        risk_level: v.risk.level,
        risk_points: v.risk.points,
        started_at: v.started_at,
        planned_end: v.planned_end,
        max_end: v.started_at + Duration::minutes(i64::from(v.terms.max_minutes)),
        last_check_in_at: v.last_check_in_at,
        check_in_due: v.check_in_due(),
        ended_at: v.ended_at,
        participants: v
            .participants
            .iter()
            .map(|p| ParticipantView {
                person_id: p.person.0,
                role: p.role,
                joined_at: p.joined_at,
                left_at: p.left_at,
            })
            .collect(),
        min_participants: v.terms.min_participants,
        lone_reason: v.lone_reason.clone(),
    }
}

pub fn nearby(n: &NearbyPlace) -> NearbyPlaceView {
    let p = place(&n.place, &n.warnings);
    NearbyPlaceView {
        id: p.id,
        name: p.name,
        kind: p.kind,
        center: p.center,
        distance_m: (n.distance_m * 10.0).round() / 10.0,
        warnings: p.warnings,
    }
}

pub fn place(place: &Place, warnings: &[Warning]) -> PlaceView {
    let c = place.shape.center();
    PlaceView {
        id: place.id.0,
        name: place.name.clone(),
        kind: place.kind,
        center: LatLon {
            lat: c.lat,
            lon: c.lon,
        },
        radius_m: match place.shape {
            Shape::Circle { radius_m, .. } => Some(radius_m),
            _ => None,
        },
        warnings: warnings
            .iter()
            .map(|w| WarningView {
                kind: w.kind,
                text: w.text.clone(),
                expires_at: w.expires_at,
            })
            .collect(),
    }
}

pub fn colleague(c: &Colleague) -> ColleagueView {
    ColleagueView {
        person_id: c.person.id.0,
        display_name: c.person.display_name.clone(),
        team_id: c.shift.team.0,
        shift_started_at: c.shift.started_at,
        visit_id: c.visit.map(|v| v.0),
    }
}

pub fn alarm(a: &Alarm) -> AlarmView {
    AlarmView {
        id: a.id.0,
        kind: a.kind,
        state: match a.state {
            AlarmState::Open => "open",
            AlarmState::Acknowledged => "acknowledged",
            AlarmState::Resolved => "resolved",
        }
        .to_owned(),
        person_id: a.person.0,
        raised_at: a.raised_at,
        visit_id: a.visit.map(|v| v.0),
        acknowledged_by: a.acknowledged_by.map(|p| p.0),
        acknowledged_at: a.acknowledged_at,
        outcome: a.outcome.clone(),
        note: a.note.clone(),
        drill: a.drill,
    }
}

pub fn delivery(d: &makker_engine::Delivery) -> DeliveryView {
    let m = &d.message;
    DeliveryView {
        id: m.message.id,
        recipient_id: d.recipient.id.0,
        recipient_name: d.recipient.display_name.clone(),
        channel: m.message.channel.as_str().to_owned(),
        kind: m.message.kind.clone(),
        state: m.state.clone(),
        provider: m.provider.clone(),
        receipt: m.receipt.clone(),
        last_error: m.last_error.clone(),
        queued_at: m.created_at,
        sent_at: m.sent_at,
        drill: m.message.drill,
        attempts: d
            .attempts
            .iter()
            .map(|a| AttemptView {
                attempt: a.attempt,
                provider: a.provider.clone(),
                outcome: a.outcome.clone(),
                detail: a.detail.clone(),
                at: a.at,
            })
            .collect(),
    }
}
