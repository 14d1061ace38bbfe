//! Nobody watching (DESIGN §3): while people of a team are on shift and no supervisor board of
//! the team has been connected for `unwatched_board_minutes`, its supervisors and managers are
//! told. Each process records the teams whose boards it serves; any process may then notice a
//! gap, and the outbox's dedup key (team and start of the gap) lets only one message through
//! per person, channel and gap.

use chrono::{DateTime, Duration, Utc};
use makker_domain::policy::Channel;
use makker_domain::{Role, TeamId};
use makker_store::{Changes, WatchStatus};

use crate::alarms::Occasion;
use crate::error::Result;
use crate::messages::Text;
use crate::service::Engine;

impl Engine {
    /// Boards of `teams` are connected now.
    ///
    /// # Errors
    /// The store fails.
    pub async fn boards_connected(&self, teams: &[TeamId]) -> Result<()> {
        if teams.is_empty() {
            return Ok(());
        }
        Ok(self.store.boards_seen(teams, self.now()).await?)
    }

    /// Tells supervisors and managers of every team nobody has watched for too long. Returns
    /// how many teams that concerned (told now or before, in this gap).
    ///
    /// # Errors
    /// The store fails.
    pub async fn check_watched(&self) -> Result<usize> {
        let minutes = self.policy.timers.unwatched_board_minutes;
        if minutes == 0 {
            return Ok(0);
        }
        let now = self.now();
        let mut unwatched = 0;
        for status in self.store.watch_status().await? {
            let since = unwatched_since(&status);
            if now - since < Duration::minutes(i64::from(minutes)) {
                continue;
            }
            unwatched += 1;
            self.tell_unwatched(status.team, since, now).await?;
        }
        Ok(unwatched)
    }

    async fn tell_unwatched(&self, team: TeamId, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<()> {
        let name = self.store.team(team).await?.name;
        let mut to = self.supervisors(team).await?;
        let members = self.store.team_members(team).await?;
        to.extend(members.into_iter().filter(|p| p.role == Role::Manager));
        let occasion = Occasion {
            key: format!("unwatched:{}:{}", team.0, since.timestamp_millis()),
            alarm: None,
            visit: None,
            text: Text::Unwatched {
                team: &name,
                minutes: (now - since).num_minutes(),
            },
            drill: false,
        };
        let changes = Changes {
            outbox: self
                .messages(&to, &[Channel::Push, Channel::Sms], &occasion)
                .await?,
            ..Changes::default()
        };
        self.store.apply(&changes, now).await?;
        self.committed(&changes);
        Ok(())
    }
}

/// When the current gap began: the later of the shift's start and the last board seen.
fn unwatched_since(s: &WatchStatus) -> DateTime<Utc> {
    s.board_seen_at
        .map_or(s.on_shift_since, |seen| seen.max(s.on_shift_since))
}
