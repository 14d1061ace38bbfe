//! Configuration: defaults compiled in, then `makker.toml` (or `--config`), then `MAKKER_*`
//! environment variables. Loaded once, validated at start; a bad value stops the start with
//! a message that names the setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use makker_domain::policy::Policy;
use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `sqlite://makker.db` (embedded, created on first run) or `postgres://user:pw@host/db`.
    pub database_url: String,
    /// Address and port to listen on.
    #[schemars(with = "String")]
    pub listen: SocketAddr,
    /// A municipality's own policy file; the compiled-in default policy when left out.
    pub policy: Option<PathBuf>,
    /// `pretty` for a terminal, `json` for production log collection.
    pub log_format: LogFormat,
    /// How long a phone's device token lives, in days.
    pub token_days: u32,
    /// The address people open from links in messages, e.g. `https://makker.aarhus.dk`.
    pub public_url: String,
    /// The SMS provider: `log` (the demo: messages go to the log), `gatewayapi`, `46elks`, `twilio`.
    pub sms_primary: SmsProvider,
    /// A second provider tried when the primary fails.
    pub sms_failover: Option<SmsProvider>,
    /// The sender name or number shown on the phone.
    pub sms_sender: String,
    /// The secret our SMS webhook URLs carry (46elks) or sign with (GatewayAPI).
    pub sms_webhook_secret: Option<String>,
    /// GatewayAPI's API token (secret).
    pub gatewayapi_token: Option<String>,
    /// GatewayAPI's address; its public API when left out (tests point it elsewhere).
    pub gatewayapi_base_url: Option<String>,
    /// 46elks' API username.
    pub elks46_username: Option<String>,
    /// 46elks' API password (secret).
    pub elks46_password: Option<String>,
    /// 46elks' address; its public API when left out.
    pub elks46_base_url: Option<String>,
    /// Twilio's account SID.
    pub twilio_account_sid: Option<String>,
    /// Twilio's auth token (secret); it also signs Twilio's webhooks.
    pub twilio_auth_token: Option<String>,
    /// Twilio's address; its public API when left out.
    pub twilio_base_url: Option<String>,
    /// The VAPID private key (base64url, or PEM) for Web Push; push is off without it.
    pub vapid_private_key: Option<String>,
    /// Who push services may contact about our pushes: a real `mailto:` or `https:` URL.
    pub vapid_subject: Option<String>,
    /// Development only: accept push endpoints on http and loopback addresses.
    pub push_allow_insecure: bool,
    /// Positions are forgotten after this many days (a daily job at 03:15 UTC).
    pub position_retention_days: u32,
    /// Visit details are pseudonymised after this many days (the same daily job): free text,
    /// risk-assessment answers and message texts are blanked and home visits lose their home;
    /// kinds, times and counts stay for the statistics. At least `position_retention_days`.
    pub visit_detail_retention_days: u32,
    /// Audit log lines are deleted after this many days (the same daily job). At least 365:
    /// the database itself refuses to delete a younger line.
    pub audit_retention_days: u32,
    /// Single sign-on: the OpenID Connect issuer (e.g. `https://login.microsoftonline.com/<tenant>/v2.0`
    /// or a Keycloak realm's URL). Single sign-on is off when left out.
    pub oidc_issuer_url: Option<String>,
    /// Single sign-on: Makker's client id at the identity provider.
    pub oidc_client_id: Option<String>,
    /// Single sign-on: Makker's client secret at the identity provider (secret).
    pub oidc_client_secret: Option<String>,
    /// Single sign-on: the callback registered at the identity provider; `<public_url>/auth/oidc/callback`
    /// when left out.
    pub oidc_redirect_url: Option<String>,
    /// Single sign-on: the ID token claim that holds the Makker username (e.g. `preferred_username`,
    /// `email`, `upn`). Nobody is created: the username must exist in Makker.
    pub oidc_username_claim: String,
    /// How long a process holds the due deadlines it claimed: if it dies, another replica
    /// fires them after this many seconds.
    pub deadline_lease_seconds: u32,
    /// How long a process holds the messages it claimed for sending (longer than the slowest
    /// provider's answer, or a slow send is tried twice).
    pub outbox_lease_seconds: u32,
    /// PostgreSQL connections of the deadline loop, a pool apart from the HTTP handlers' so a
    /// busy web front cannot delay a deadline; the dispatcher has half as many of its own
    /// (SQLite shares one pool).
    pub background_connections: u32,
    /// SMS, and as many pushes, that the dispatcher sends at once, each on a connection of its
    /// own (kept alive for the next): a burst of alarms goes out this many at a time. At most a
    /// quarter of the process's open-file limit each (the soft limit is raised to the hard one at
    /// start).
    pub sends_in_flight: u32,
    /// An outside watchdog (e.g. a Healthchecks or Uptime Kuma push URL) that this process
    /// calls while it is healthy, so someone learns when Makker itself is down.
    pub watchdog_url: Option<String>,
    /// How often the watchdog is called, in seconds.
    pub watchdog_interval_seconds: u32,
    /// The map tiles of the board and the app (`{z}/{x}/{y}`; `{s}` for subdomains); empty for
    /// maps without a background (places and workers still show). The pages may load images
    /// from this origin only.
    pub map_tile_url: String,
    /// Where the board's map opens (latitude); the teams' places within 5 km are shown.
    pub map_center_lat: f64,
    /// Where the board's map opens (longitude).
    pub map_center_lon: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum SmsProvider {
    #[serde(rename = "log")]
    Log,
    #[serde(rename = "gatewayapi")]
    GatewayApi,
    #[serde(rename = "46elks")]
    Elks46,
    #[serde(rename = "twilio")]
    Twilio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://makker.db".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            policy: None,
            log_format: LogFormat::Pretty,
            token_days: 90,
            public_url: "http://localhost:8080".into(),
            sms_primary: SmsProvider::Log,
            sms_failover: None,
            sms_sender: "Makker".into(),
            sms_webhook_secret: None,
            gatewayapi_token: None,
            gatewayapi_base_url: None,
            elks46_username: None,
            elks46_password: None,
            elks46_base_url: None,
            twilio_account_sid: None,
            twilio_auth_token: None,
            twilio_base_url: None,
            vapid_private_key: None,
            vapid_subject: None,
            push_allow_insecure: false,
            position_retention_days: 30,
            visit_detail_retention_days: 180,
            audit_retention_days: 730,
            oidc_issuer_url: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            oidc_redirect_url: None,
            oidc_username_claim: "preferred_username".into(),
            deadline_lease_seconds: 10,
            outbox_lease_seconds: 30,
            background_connections: 8,
            sends_in_flight: 4096,
            watchdog_url: None,
            watchdog_interval_seconds: 60,
            map_tile_url: makker_http::web::OSM_TILES.into(),
            map_center_lat: makker_http::web::WebConfig::default().center[0],
            map_center_lon: makker_http::web::WebConfig::default().center[1],
        }
    }
}

/// The configuration reference (`ops/CONFIG.md`), generated from this type's documentation
/// and defaults, so it cannot go stale.
pub fn reference() -> String {
    let schema = schemars::schema_for!(Config);
    let defaults = serde_json::to_value(Config::default()).expect("BUG: the defaults serialize");
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated by `makker config reference` from the configuration type; do not edit.\n\n\
         Settings come from the compiled-in defaults, then `makker.toml` (or `--config FILE`), \
         then environment variables. `makker config check` validates them and prints the \
         result with secrets hidden.\n\n\
         | setting | environment variable | default | meaning |\n|---|---|---|---|\n",
    );
    let properties = schema
        .get("properties")
        .and_then(serde_json::Value::as_object)
        .expect("BUG: the configuration is an object");
    for (name, property) in properties {
        let meaning = property
            .get("description")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .replace('\n', " ");
        let default = match &defaults[name] {
            serde_json::Value::Null => "(none)".to_owned(),
            v => format!("`{v}`"),
        };
        out.push_str(&format!(
            "| `{name}` | `MAKKER_{}` | {default} | {meaning} |\n",
            name.to_uppercase()
        ));
    }
    out
}

/// Hides the password of a database URL.
fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((credentials, host)) => {
                let user = credentials.split(':').next().unwrap_or("");
                let hidden = if credentials.contains(':') { ":***" } else { "" };
                format!("{scheme}://{user}{hidden}@{host}")
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("listen", &self.listen)
            .field("policy", &self.policy)
            .field("log_format", &self.log_format)
            .field("token_days", &self.token_days)
            .field("public_url", &self.public_url)
            .field("sms_primary", &self.sms_primary)
            .field("sms_failover", &self.sms_failover)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Load(Box<figment::Error>),
    #[error("invalid configuration: database_url must start with sqlite:// or postgres:// (got {0:?})")]
    DatabaseUrl(String),
    #[error("invalid configuration: vapid_private_key and vapid_subject: {0}")]
    Vapid(String),
    #[error("invalid configuration: the SMS provider {provider} needs {setting}")]
    Missing { provider: String, setting: String },
    #[error("invalid configuration: public_url must be an http(s) URL (got {0:?})")]
    PublicUrl(String),
    #[error("invalid configuration: token_days must be between 1 and 365 (got {0})")]
    TokenDays(u32),
    #[error("invalid configuration: {name} must be between 1 and 600 seconds (got {seconds})")]
    Lease { name: &'static str, seconds: u32 },
    #[error("invalid configuration: {0}")]
    Retention(String),
    #[error("invalid configuration: single sign-on: {0}")]
    Oidc(String),
    #[error("invalid configuration: {name} must be between 1 and {most} (got {got})")]
    Count { name: &'static str, most: u32, got: u32 },
    #[error("invalid configuration: watchdog_url must be an http or https URL (got {0})")]
    WatchdogUrl(String),
    #[error("invalid configuration: watchdog_interval_seconds must be between 1 and 3600 (got {0})")]
    WatchdogInterval(u32),
    #[error("invalid configuration: cannot read the policy file {path}: {source}")]
    PolicyFile { path: PathBuf, source: std::io::Error },
    #[error("invalid configuration: the policy file {path} is not valid: {source}")]
    Policy {
        path: PathBuf,
        source: makker_domain::policy::PolicyError,
    },
}

impl Config {
    /// Loads the configuration: defaults, then the TOML file if it exists, then the environment.
    ///
    /// # Errors
    /// A value of the wrong type, an unknown setting, or a value out of range.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let keys = Self::keys();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        Self::from_figment(
            Figment::from(Serialized::defaults(Config::default()))
                .merge(Toml::file(file))
                .merge(Env::prefixed("MAKKER_").only(&keys)),
        )
    }

    /// The settings' names. Other `MAKKER_*` variables (the log filter, test settings) are not
    /// configuration and are left alone.
    fn keys() -> Vec<String> {
        let defaults = serde_json::to_value(Config::default()).expect("BUG: the configuration serializes");
        defaults
            .as_object()
            .expect("BUG: the configuration is a table")
            .keys()
            .cloned()
            .collect()
    }

    /// # Errors
    /// See [`Config::load`].
    pub fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment.extract().map_err(|e| ConfigError::Load(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let url = &self.database_url;
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::DatabaseUrl(redact_url(url)));
        }
        if !(self.public_url.starts_with("https://") || self.public_url.starts_with("http://")) {
            return Err(ConfigError::PublicUrl(self.public_url.clone()));
        }
        if !(1..=365).contains(&self.token_days) {
            return Err(ConfigError::TokenDays(self.token_days));
        }
        for (name, seconds) in [
            ("deadline_lease_seconds", self.deadline_lease_seconds),
            ("outbox_lease_seconds", self.outbox_lease_seconds),
        ] {
            if !(1..=600).contains(&seconds) {
                return Err(ConfigError::Lease { name, seconds });
            }
        }
        if let Some(url) = &self.watchdog_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(ConfigError::WatchdogUrl(url.clone()));
        }
        for (name, most, got) in [
            ("background_connections", 64, self.background_connections),
            ("sends_in_flight", 65_536, self.sends_in_flight),
        ] {
            if !(1..=most).contains(&got) {
                return Err(ConfigError::Count { name, most, got });
            }
        }
        if !(1..=3600).contains(&self.watchdog_interval_seconds) {
            return Err(ConfigError::WatchdogInterval(self.watchdog_interval_seconds));
        }
        self.vapid()?;
        self.validate_retention()?;
        self.oidc()?;
        for provider in std::iter::once(self.sms_primary).chain(self.sms_failover) {
            let needs: &[(&str, &Option<String>)] = match provider {
                SmsProvider::Log => &[],
                SmsProvider::GatewayApi => &[("gatewayapi_token", &self.gatewayapi_token)],
                SmsProvider::Elks46 => &[
                    ("elks46_username", &self.elks46_username),
                    ("elks46_password", &self.elks46_password),
                    ("sms_webhook_secret", &self.sms_webhook_secret),
                ],
                SmsProvider::Twilio => &[
                    ("twilio_account_sid", &self.twilio_account_sid),
                    ("twilio_auth_token", &self.twilio_auth_token),
                ],
            };
            if let Some((name, _)) = needs.iter().find(|(_, v)| v.as_deref().is_none_or(str::is_empty)) {
                return Err(ConfigError::Missing {
                    provider: format!("{provider:?}"),
                    setting: (*name).to_owned(),
                });
            }
        }
        self.load_policy()?;
        Ok(())
    }

    /// Details may not outlive positions' purpose less than positions do, and the audit log
    /// must outlive both (the database refuses to delete younger lines anyway).
    fn validate_retention(&self) -> Result<(), ConfigError> {
        if self.visit_detail_retention_days < self.position_retention_days.max(1) {
            return Err(ConfigError::Retention(format!(
                "visit_detail_retention_days ({}) must be at least position_retention_days ({})",
                self.visit_detail_retention_days, self.position_retention_days
            )));
        }
        if self.audit_retention_days < makker_engine::maintenance::AUDIT_MIN_DAYS {
            return Err(ConfigError::Retention(format!(
                "audit_retention_days must be at least {} (got {})",
                makker_engine::maintenance::AUDIT_MIN_DAYS,
                self.audit_retention_days
            )));
        }
        Ok(())
    }

    /// Single sign-on, when an identity provider is configured.
    ///
    /// # Errors
    /// An issuer without a client id or secret, or a URL that does not parse.
    pub fn oidc(&self) -> Result<Option<makker_http::oidc::OidcConfig>, ConfigError> {
        let Some(issuer_url) = self.oidc_issuer_url.clone() else {
            return Ok(None);
        };
        let needed = |name: &str, v: &Option<String>| {
            v.clone()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ConfigError::Oidc(format!("oidc_issuer_url needs {name}")))
        };
        let config = makker_http::oidc::OidcConfig {
            issuer_url,
            client_id: needed("oidc_client_id", &self.oidc_client_id)?,
            client_secret: needed("oidc_client_secret", &self.oidc_client_secret)?,
            redirect_url: self
                .oidc_redirect_url
                .clone()
                .unwrap_or_else(|| format!("{}/auth/oidc/callback", self.public_url.trim_end_matches('/'))),
            username_claim: self.oidc_username_claim.clone(),
        };
        for (name, url) in [
            ("oidc_issuer_url", &config.issuer_url),
            ("oidc_redirect_url", &config.redirect_url),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError::Oidc(format!(
                    "{name} must be an http(s) URL (got {url:?})"
                )));
            }
        }
        Ok(Some(config))
    }

    /// The Web Push identity, when push is configured.
    ///
    /// # Errors
    /// A key without a subject, or a key or subject that is not valid.
    pub fn vapid(&self) -> Result<Option<makker_notify::push::VapidConfig>, ConfigError> {
        let Some(key) = &self.vapid_private_key else {
            return Ok(None);
        };
        let subject = self.vapid_subject.as_deref().unwrap_or_default();
        makker_notify::push::VapidConfig::parse(key, subject)
            .map(Some)
            .map_err(|e| ConfigError::Vapid(e.to_string()))
    }

    /// The policy in force: the configured file, or the compiled-in default.
    ///
    /// # Errors
    /// The file cannot be read or is not a valid policy.
    pub fn load_policy(&self) -> Result<Policy, ConfigError> {
        let Some(path) = &self.policy else {
            return Ok(Policy::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::PolicyFile {
            path: path.clone(),
            source,
        })?;
        Policy::from_toml(&text).map_err(|source| ConfigError::Policy {
            path: path.clone(),
            source,
        })
    }

    /// The effective configuration as TOML, secrets redacted (`makker config check`).
    pub fn redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = redact_url(&self.database_url);
        let hide = |s: &mut Option<String>| {
            if s.is_some() {
                *s = Some("***".into());
            }
        };
        hide(&mut shown.sms_webhook_secret);
        hide(&mut shown.gatewayapi_token);
        hide(&mut shown.elks46_password);
        hide(&mut shown.twilio_auth_token);
        hide(&mut shown.vapid_private_key);
        hide(&mut shown.oidc_client_secret);
        hide(&mut shown.watchdog_url); // a ping URL is as good as a password
        toml::to_string(&shown).expect("BUG: the configuration serializes to TOML")
    }
}

#[cfg(test)]
#[allow(
    clippy::result_large_err,
    reason = "figment's Jail closures return figment::Error"
)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_then_file_then_environment() {
        Jail::expect_with(|jail| {
            jail.create_file("makker.toml", "listen = \"0.0.0.0:9000\"\ntoken_days = 30\n")?;
            jail.set_env("MAKKER_TOKEN_DAYS", "7");
            let c = Config::load(Path::new("makker.toml")).map_err(|e| e.to_string())?;
            assert_eq!(
                c.listen,
                "0.0.0.0:9000".parse().unwrap(),
                "the file overrides the default"
            );
            assert_eq!(c.token_days, 7, "the environment overrides the file");
            assert_eq!(
                c.database_url, "sqlite://makker.db",
                "the default stays where nothing overrides it"
            );
            Ok(())
        });
    }

    #[test]
    fn a_missing_file_means_defaults() {
        Jail::expect_with(|_| {
            assert_eq!(
                Config::load(Path::new("nowhere.toml")).unwrap(),
                Config::default()
            );
            Ok(())
        });
    }

    #[test]
    fn invalid_values_stop_the_start_with_the_setting_named() {
        Jail::expect_with(|jail| {
            jail.set_env("MAKKER_DATABASE_URL", "mysql://x");
            let e = Config::load(Path::new("makker.toml")).unwrap_err().to_string();
            assert!(e.contains("database_url"), "{e}");
            jail.set_env("MAKKER_DATABASE_URL", "sqlite://x.db");
            jail.set_env("MAKKER_TOKEN_DAYS", "ninety");
            let e = Config::load(Path::new("makker.toml"))
                .unwrap_err()
                .to_string()
                .to_lowercase();
            assert!(e.contains("token_days"), "{e}");
            jail.set_env("MAKKER_TOKEN_DAYS", "0");
            let e = Config::load(Path::new("makker.toml")).unwrap_err().to_string();
            assert!(e.contains("token_days must be between 1 and 365"), "{e}");
            jail.set_env("MAKKER_TOKEN_DAYS", "90");
            jail.set_env("MAKKER_SENDS_IN_FLIGHT", "0");
            let e = Config::load(Path::new("makker.toml")).unwrap_err().to_string();
            assert!(
                e.contains("sends_in_flight must be between 1 and 65536 (got 0)"),
                "{e}"
            );
            Ok(())
        });
    }

    #[test]
    fn an_unknown_setting_is_refused() {
        Jail::expect_with(|jail| {
            jail.create_file("makker.toml", "listne = \"0.0.0.0:9000\"\n")?;
            let e = Config::load(Path::new("makker.toml")).unwrap_err().to_string();
            assert!(e.contains("listne"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn a_broken_policy_file_is_named() {
        Jail::expect_with(|jail| {
            jail.create_file("policy.toml", "[clock]\nmax_client_lag_minutes = 1\n")?;
            jail.set_env("MAKKER_POLICY", "policy.toml");
            let e = Config::load(Path::new("makker.toml")).unwrap_err().to_string();
            assert!(e.contains("policy.toml is not valid"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn single_sign_on_and_retention_are_checked_at_start() {
        Jail::expect_with(|jail| {
            jail.set_env("MAKKER_OIDC_ISSUER_URL", "https://idp.kommune.dk/realms/makker");
            let e = Config::load(Path::new("makker.toml")).unwrap_err().to_string();
            assert!(e.contains("needs oidc_client_id"), "{e}");
            jail.set_env("MAKKER_OIDC_CLIENT_ID", "makker");
            jail.set_env("MAKKER_OIDC_CLIENT_SECRET", "s3cret");
            let c = Config::load(Path::new("makker.toml")).map_err(|e| e.to_string())?;
            let oidc = c.oidc().unwrap().expect("single sign-on is on");
            assert_eq!(oidc.redirect_url, "http://localhost:8080/auth/oidc/callback");
            assert!(!c.redacted_toml().contains("s3cret"));
            jail.set_env("MAKKER_AUDIT_RETENTION_DAYS", "90");
            let e = Config::load(Path::new("makker.toml")).unwrap_err().to_string();
            assert!(e.contains("audit_retention_days must be at least 365"), "{e}");
            jail.set_env("MAKKER_AUDIT_RETENTION_DAYS", "730");
            jail.set_env("MAKKER_VISIT_DETAIL_RETENTION_DAYS", "7");
            let e = Config::load(Path::new("makker.toml")).unwrap_err().to_string();
            assert!(e.contains("visit_detail_retention_days (7)"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn config_check_hides_the_database_password() {
        let c = Config {
            database_url: "postgres://makker:s3cret@db:5432/makker".into(),
            ..Config::default()
        };
        let shown = c.redacted_toml();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://makker:***@db:5432/makker"), "{shown}");
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
