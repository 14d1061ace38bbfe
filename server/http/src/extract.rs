//! Extractors that turn bad input into problems instead of axum's plain-text rejections.

use std::marker::PhantomData;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::Method;
use axum::http::header::{ACCEPT_LANGUAGE, AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use makker_domain::VisitId;
use makker_domain::geo::Position;
use makker_domain::text::Lang;
use makker_engine::{EngineError, ToChange};
use makker_mobile_api::LatLon;
use makker_store::{Device, Person};
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};

use crate::AppState;
use crate::error::ApiError;

/// The cookie that carries a web session's token (a web session is a device of its person).
pub const SESSION_COOKIE: &str = "makker_session";
/// The header a page sends its CSRF token in, on every state-changing request.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How a request proves who sent it.
pub enum Credential<'a> {
    /// `Authorization: Bearer …`: phones and scripts. Browsers never add it by themselves,
    /// so it needs no CSRF token.
    Bearer(&'a str),
    /// The session cookie, whose CSRF token (for unsafe methods) was checked.
    Session(&'a str),
}

impl<'a> Credential<'a> {
    /// The request's credential: the bearer token if any, else the session cookie.
    ///
    /// # Errors
    /// `Csrf` when a state-changing request carries the cookie without its CSRF token.
    pub fn of(parts: &'a Parts) -> Result<Option<Self>, ApiError> {
        if let Some(token) = bearer(parts) {
            return Ok(Some(Credential::Bearer(token)));
        }
        let Some(token) = session_cookie(parts) else {
            return Ok(None);
        };
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let sent = parts.headers.get(CSRF_HEADER).and_then(|h| h.to_str().ok());
        match sent {
            _ if safe => Ok(Some(Credential::Session(token))),
            Some(sent) if csrf_matches(token, sent) => Ok(Some(Credential::Session(token))),
            _ => Err(ApiError::Csrf),
        }
    }

    pub fn token(&self) -> &'a str {
        match self {
            Credential::Bearer(t) | Credential::Session(t) => t,
        }
    }
}

/// The CSRF token of a session: derived from its secret token, so the server keeps nothing
/// more and another site, which cannot read the HttpOnly cookie, cannot compute it.
pub fn csrf_token(session_token: &str) -> String {
    makker_engine::auth::token_hash(&format!("csrf:{session_token}"))
}

/// Compares hashes of both sides, so the time taken tells nothing about the expected value.
fn csrf_matches(session_token: &str, sent: &str) -> bool {
    let hash = makker_engine::auth::token_hash;
    hash(&csrf_token(session_token)) == hash(sent)
}

fn session_cookie(parts: &Parts) -> Option<&str> {
    cookie(&parts.headers, SESSION_COOKIE)
}

/// The value of the cookie `name` the request carries, when not empty.
pub(crate) fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// The signed-in person, from `Authorization: Bearer <device token>` or the web session
/// cookie (with its CSRF token on state-changing requests).
pub struct Caller {
    pub person: Person,
    pub device: Device,
    /// `Accept-Language` when it names a language we speak, else the person's own.
    pub lang: Lang,
    /// The web session's token when signed in by cookie.
    pub session: Option<String>,
}

impl Caller {
    /// Stamps an event from this caller's phone: the server's time, the phone's time and
    /// position when given (both checked).
    ///
    /// # Errors
    /// A position out of range or a phone clock too far off.
    pub fn stamp(
        &self,
        state: &AppState,
        client_time: Option<chrono::DateTime<chrono::Utc>>,
        at: Option<LatLon>,
    ) -> Result<makker_store::Stamp, ApiError> {
        state.engine.stamp(client_time, position(at)?).map_err(self.err())
    }

    /// Wraps a service error with this caller's language.
    pub fn err(&self) -> impl Fn(EngineError) -> ApiError + '_ {
        |e| ApiError::Engine(e, self.lang)
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let credential = Credential::of(parts)?.ok_or(ApiError::Unauthorized)?;
        let signed_in = state.engine.authenticate(credential.token()).await?;
        Ok(Caller::of(parts, &credential, signed_in))
    }
}

impl Caller {
    /// The caller signed in with `credential` as `person` on `device`.
    fn of(parts: &Parts, credential: &Credential<'_>, (person, device): (Person, Device)) -> Caller {
        let session = match credential {
            Credential::Session(token) => Some((*token).to_owned()),
            Credential::Bearer(_) => None,
        };
        let lang = parts
            .headers
            .get(ACCEPT_LANGUAGE)
            .and_then(|h| h.to_str().ok())
            .and_then(Lang::from_accept_language)
            .unwrap_or(person.lang);
        Caller {
            person,
            device,
            lang,
            session,
        }
    }
}

/// The caller of a change to the visit in the path, and that visit read with the sign-in:
/// one read of the database instead of two. A path that is no visit id is not found, once
/// the caller is known.
pub struct VisitCaller {
    pub me: Caller,
    pub visit: ToChange,
}

impl FromRequestParts<AppState> for VisitCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Ok(PathId(id)) = PathId::from_request_parts(parts, state).await else {
            Caller::from_request_parts(parts, state).await?;
            return Err(ApiError::NotFound);
        };
        let credential = Credential::of(parts)?.ok_or(ApiError::Unauthorized)?;
        let (signed_in, visit) = state
            .engine
            .authenticate_to_change(credential.token(), VisitId(id))
            .await;
        let me = Caller::of(parts, &credential, signed_in?);
        Ok(VisitCaller { me, visit })
    }
}

/// `Json<T>` with problem+json rejections.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<Object<T>>::from_request(req, state).await {
            Ok(axum::Json(Object(v))) => Ok(ApiJson(v)),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::MalformedJson(e.body_text())),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::InvalidBody(e.body_text())),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(JsonRejection::BytesRejection(_)) => Err(ApiError::BodyTooLarge),
            Err(e) => Err(ApiError::InvalidBody(e.body_text())),
        }
    }
}

/// A request body that must be a JSON object: serde would also read a struct from an array
/// of its fields in order (`[]` as an empty event), which the API does not accept.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Fields(PhantomData)).map(Object)
    }
}

/// `Query<T>` with problem+json rejections.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| ApiError::InvalidQuery(e.body_text()))
    }
}

/// A path id that is not a UUID is simply not found.
pub struct PathId(pub uuid::Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<uuid::Uuid>::from_request_parts(parts, state)
            .await
            .map(|p| PathId(p.0))
            .map_err(|_| ApiError::NotFound)
    }
}

/// # Errors
/// Coordinates out of range.
pub fn position(p: Option<LatLon>) -> Result<Option<Position>, ApiError> {
    p.map(|p| Position::parse(p.lat, p.lon))
        .transpose()
        .map_err(|e| ApiError::Invalid(e.to_string()))
}

/// Trims free text and bounds its length in characters (any script is welcome).
///
/// # Errors
/// Empty (when required), longer than `max`, or holding a NUL character.
pub fn text(field: &str, value: &str, max: usize, required: bool) -> Result<String, ApiError> {
    let v = value.trim();
    // PostgreSQL cannot store U+0000 in text; refuse it on every backend alike.
    if v.contains('\0') {
        return Err(ApiError::Invalid(format!(
            "{field} must not contain a NUL character"
        )));
    }
    if required && v.is_empty() {
        return Err(ApiError::Invalid(format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(ApiError::Invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(v.to_owned())
}
