//! The mobile API v1 handlers. Each is annotated for the OpenAPI document; the router and
//! the document are built from the same list, so neither can drift from the other.

pub mod account;
pub mod alarms;
pub mod approvals;
pub mod coverage;
pub mod incidents;
pub mod push;
pub mod team;
pub mod visits;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(account::login))
        .routes(routes!(
            account::start_session,
            account::session,
            account::end_session
        ))
        .routes(routes!(alarms::list))
        .routes(routes!(alarms::drill))
        .routes(routes!(push::key))
        .routes(routes!(push::subscribe))
        .routes(routes!(push::unsubscribe))
        .routes(routes!(alarms::acknowledge))
        .routes(routes!(alarms::resolve))
        .routes(routes!(alarms::deliveries))
        .routes(routes!(crate::live::live))
        .routes(routes!(account::logout))
        .routes(routes!(account::me))
        .routes(routes!(account::location_views))
        .routes(routes!(account::export))
        .routes(routes!(account::revoke_device))
        .routes(routes!(team::start_shift))
        .routes(routes!(team::end_shift))
        .routes(routes!(team::report_status))
        .routes(routes!(team::colleagues))
        .routes(routes!(team::places_near))
        .routes(routes!(team::team_places))
        .routes(routes!(team::questions))
        .routes(routes!(team::approve_lone))
        .routes(routes!(approvals::ask))
        .routes(routes!(approvals::get))
        .routes(routes!(approvals::decline))
        .routes(routes!(team::sos))
        .routes(routes!(visits::start))
        .routes(routes!(visits::active))
        .routes(routes!(visits::get))
        .routes(routes!(visits::join))
        .routes(routes!(visits::check_in))
        .routes(routes!(visits::heartbeat))
        .routes(routes!(visits::extend))
        .routes(routes!(visits::check_out))
        .routes(routes!(visits::withdraw))
        // Routes, areas, coverage and incidents (issue 4).
        .routes(routes!(coverage::areas))
        .routes(coverage::large_body(routes!(coverage::import_areas)))
        .routes(routes!(coverage::delete_area))
        .routes(routes!(coverage::routes, coverage::create_route))
        .routes(routes!(coverage::update_route))
        .routes(routes!(coverage::export_routes))
        .routes(coverage::large_body(routes!(coverage::import_routes)))
        .routes(routes!(coverage::coverage))
        .routes(routes!(coverage::compare))
        .routes(routes!(coverage::map))
        .routes(routes!(coverage::csv))
        .routes(routes!(incidents::report))
        .routes(routes!(incidents::list))
        .routes(routes!(incidents::done))
        .routes(routes!(incidents::absence))
}
