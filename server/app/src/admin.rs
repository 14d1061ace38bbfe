//! `makker admin …`: the administrative commands an IT department runs on the server.

use anyhow::{Context, bail};
use makker_domain::text::Lang;
use makker_domain::{PersonId, Role, TeamId};
use makker_engine::{Engine, NewPersonInput, auth};
use makker_store::{Person, Team};
use uuid::Uuid;

/// Creates a team; returns it.
///
/// # Errors
/// Storage failures.
pub async fn create_team(engine: &Engine, name: &str, time_zone: &str) -> anyhow::Result<Team> {
    let name = name.trim();
    if name.is_empty() {
        bail!("a team needs a name");
    }
    let team = Team {
        id: TeamId(Uuid::now_v7()),
        name: name.to_owned(),
        time_zone: time_zone.to_owned(),
        created_at: engine.now(),
    };
    engine.store.create_team(&team).await?;
    engine.audit_admin("create_team", None, &team.name).await?;
    Ok(team)
}

/// Finds a team by id or by exact name.
///
/// # Errors
/// No such team.
pub async fn find_team(engine: &Engine, id_or_name: &str) -> anyhow::Result<TeamId> {
    let teams = engine.store.teams().await?;
    teams
        .iter()
        .find(|t| t.id.0.to_string() == id_or_name || t.name == id_or_name)
        .map(|t| t.id)
        .with_context(|| format!("no team {id_or_name:?}"))
}

/// Options for `admin create-person`.
pub struct PersonArgs {
    pub username: String,
    pub name: String,
    pub role: String,
    pub teams: Vec<String>,
    pub phone: Option<String>,
    pub lang: String,
    pub password: Option<String>,
    pub pin: Option<String>,
    pub duress_pin: Option<String>,
}

/// # Errors
/// Unknown role, language or team, or a taken username.
pub async fn create_person(engine: &Engine, args: PersonArgs) -> anyhow::Result<Person> {
    let role = Role::parse(&args.role)
        .map_err(|_| anyhow::anyhow!("role must be worker, supervisor, manager or admin"))?;
    let lang = match args.lang.as_str() {
        "da" => Lang::Da,
        "sv" => Lang::Sv,
        "en" => Lang::En,
        other => bail!("lang must be da, sv or en (got {other:?})"),
    };
    let mut teams = Vec::new();
    for t in &args.teams {
        teams.push(find_team(engine, t).await?);
    }
    let input = NewPersonInput {
        username: args.username,
        display_name: args.name,
        role,
        teams,
        phone: args.phone,
        lang,
        password: args.password,
        pin: args.pin,
        duress_pin: args.duress_pin,
    };
    let person = engine.create_person(input).await?;
    engine
        .audit_admin("create_person", Some(person.id), &person.username)
        .await?;
    Ok(person)
}

/// # Errors
/// Unknown username.
pub async fn person(engine: &Engine, username: &str) -> anyhow::Result<Person> {
    engine
        .store
        .person_by_username(&username.trim().to_lowercase())
        .await
        .with_context(|| format!("no person {username:?}"))
}

/// # Errors
/// Unknown username or an empty password.
pub async fn set_password(engine: &Engine, username: &str, password: &str) -> anyhow::Result<PersonId> {
    if password.is_empty() {
        bail!("the password must not be empty");
    }
    let p = person(engine, username).await?;
    engine
        .store
        .set_password_hash(p.id, &auth::hash_secret(password))
        .await?;
    engine
        .audit_admin("set_password", Some(p.id), &p.username)
        .await?;
    Ok(p.id)
}

/// Issues a device token; prints it once.
///
/// # Errors
/// Unknown username.
pub async fn issue_token(
    engine: &Engine,
    username: &str,
    device_name: &str,
) -> anyhow::Result<(String, Uuid)> {
    let p = person(engine, username).await?;
    let (token, device) = engine.issue_token(p.id, device_name).await?;
    engine.audit_admin("issue_token", Some(p.id), device.id).await?;
    Ok((token, device.id))
}

/// # Errors
/// Unknown device.
pub async fn revoke_token(engine: &Engine, device: Uuid) -> anyhow::Result<()> {
    engine
        .store
        .revoke_device(device, engine.now())
        .await
        .context("no such device")?;
    engine.audit_admin("revoke_token", None, device).await?;
    Ok(())
}
