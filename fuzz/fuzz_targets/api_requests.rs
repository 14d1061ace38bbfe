//! The mobile API's request bodies, as phones (or anyone) send them: reading any bytes as any
//! request type never panics, and what reads survives JSON and back unchanged. Positions and
//! `Accept-Language` headers go through the domain's checks too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use makker_domain::geo::Position;
use makker_domain::text::Lang;
use makker_mobile_api::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Reads `body` as `T`; what reads must come back the same through a JSON value.
fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(body: &[u8]) -> Option<T> {
    let request: T = serde_json::from_slice(body).ok()?;
    let value = serde_json::to_value(&request).expect("a request serializes");
    let again: T = serde_json::from_value(value).expect("and reads again");
    assert_eq!(again, request);
    Some(request)
}

fn positions(at: Option<&LatLon>) {
    if let Some(p) = at
        && let Ok(checked) = Position::parse(p.lat, p.lon)
    {
        assert!((-90.0..=90.0).contains(&checked.lat) && (-180.0..=180.0).contains(&checked.lon));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 14 {
        0 => {
            round_trip::<LoginRequest>(body);
        }
        1 => {
            round_trip::<SessionRequest>(body);
        }
        2 => {
            round_trip::<ShiftRequest>(body);
        }
        3 => positions(
            round_trip::<StartVisitRequest>(body)
                .and_then(|r| r.position)
                .as_ref(),
        ),
        4 => positions(round_trip::<EventRequest>(body).and_then(|r| r.position).as_ref()),
        5 => {
            round_trip::<JoinRequest>(body);
        }
        6 => {
            round_trip::<ExtendRequest>(body);
        }
        7 => positions(
            round_trip::<CheckOutRequest>(body)
                .and_then(|r| r.position)
                .as_ref(),
        ),
        8 => {
            round_trip::<DrillRequest>(body);
        }
        9 => {
            round_trip::<ResolveRequest>(body);
        }
        10 => {
            round_trip::<LoneApprovalRequest>(body);
        }
        11 => {
            round_trip::<PushSubscriptionRequest>(body);
        }
        12 => {
            round_trip::<PushUnsubscribeRequest>(body);
        }
        _ => {
            let _ = Lang::from_accept_language(&String::from_utf8_lossy(body));
        }
    }
});
