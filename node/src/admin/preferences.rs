//! Each user's notification preferences: whether they get an email when a
//! new task arrives for them or their authority (for each task at once, a
//! daily summary, or never), and to which address.
//!
//! Kept in the table `user-preferences-1` (user id → postcard
//! [`NotificationPreference`]), beside `users-1`, so accounts keep their
//! encoding. A user without a row has the default: an email for each new
//! task, to the account's address. Only the user changes their own
//! preferences, and a row is written only in the transaction that finds the
//! user's account, so no row exists without its user. Users are never
//! deleted, only deactivated; a deactivated user keeps their row (it
//! applies again if they are reactivated) and gets no email
//! ([`Admin::task_email`]).

use std::fmt;
use std::str::FromStr;

use imi_protocol::{Actor, AuthorityId, AuthorityStatus, Language, UserId};
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tracing::info;

use super::{
    AUTHORITIES, Admin, AdminError, AdminEvent, AuthorityRecord, StoredUser, Tables, USERS,
    check_email, encode, get, stored_users_of,
};
use crate::store::StoreError;

/// Notification preferences: user id → [`NotificationPreference`].
pub(crate) const PREFERENCES: TableDefinition<'_, &[u8], &[u8]> =
    TableDefinition::new("user-preferences-1");

/// How often a user hears by email of new tasks for them or their
/// authority.
///
/// Stored by variant index: new variants go at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TaskEmails {
    /// No email; the user reads My tasks.
    Never,
    /// One email for each new task, as it arrives.
    #[default]
    EachTask,
    /// One email a day listing the day's new tasks.
    DailySummary,
}

impl TaskEmails {
    /// Every choice, in the order the profile offers them.
    pub const ALL: [TaskEmails; 3] = [
        TaskEmails::EachTask,
        TaskEmails::DailySummary,
        TaskEmails::Never,
    ];

    /// The choice's stable name (`"daily-summary"`), as the web UI and the
    /// CLI speak it.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskEmails::Never => "never",
            TaskEmails::EachTask => "each-task",
            TaskEmails::DailySummary => "daily-summary",
        }
    }
}

impl fmt::Display for TaskEmails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a choice of [`TaskEmails`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a choice of task emails; choose each-task, daily-summary or never")]
pub struct UnknownTaskEmails(pub String);

impl FromStr for TaskEmails {
    type Err = UnknownTaskEmails;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        TaskEmails::ALL
            .into_iter()
            .find(|choice| choice.as_str() == name)
            .ok_or_else(|| UnknownTaskEmails(name.chars().take(40).collect()))
    }
}

/// What a user chose about email notifications.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NotificationPreference {
    /// Whether, and how often, new tasks are emailed.
    pub task_emails: TaskEmails,
    /// The address to email; `None`: the account's email address.
    pub address: Option<String>,
}

impl NotificationPreference {
    /// The address emails go to, for a user whose account email is
    /// `account_email`.
    pub fn address_or<'a>(&'a self, account_email: &'a str) -> &'a str {
        self.address.as_deref().unwrap_or(account_email)
    }
}

/// A user to email about new tasks, as the mailer needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEmail {
    /// The user.
    pub user: UserId,
    /// For each task, or a daily summary (never [`TaskEmails::Never`]).
    pub frequency: TaskEmails,
    /// Where to send them.
    pub address: String,
    /// The language the user reads IMI in.
    pub language: Language,
}

/// The stored preference of user `id`, or the default when they have none.
fn stored(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    id: UserId,
) -> Result<NotificationPreference, StoreError> {
    Ok(get(table, "notification preference", &id.to_bytes())?.unwrap_or_default())
}

/// Whom to email for `stored`, with `preference`: nobody when the account
/// is deactivated, its authority is not active or the user chose never.
fn task_email(
    stored: &StoredUser,
    authority: AuthorityStatus,
    preference: NotificationPreference,
) -> Option<TaskEmail> {
    let user = &stored.account.user;
    if !user.active
        || authority != AuthorityStatus::Active
        || preference.task_emails == TaskEmails::Never
    {
        return None;
    }
    Some(TaskEmail {
        user: user.id,
        frequency: preference.task_emails,
        address: preference.address_or(&user.email).to_owned(),
        language: user.language,
    })
}

impl Admin {
    /// The notification preferences of user `id` (the default when they
    /// never chose).
    pub fn notification_preference(
        &self,
        id: UserId,
    ) -> Result<NotificationPreference, AdminError> {
        let tx = self.store.read()?;
        let users = tx.open_table(USERS).map_err(StoreError::from)?;
        if users
            .get(id.to_bytes().as_slice())
            .map_err(StoreError::from)?
            .is_none()
        {
            return Err(AdminError::UnknownUser(id.to_string()));
        }
        let table = tx.open_table(PREFERENCES).map_err(StoreError::from)?;
        Ok(stored(&table, id)?)
    }

    /// Sets the notification preferences of user `id`: only the user
    /// themselves may, not even their administrators. An address is checked
    /// like an account's email (blank means the account's address). A
    /// refused change writes nothing.
    pub async fn set_notification_preference(
        &self,
        actor: &Actor,
        id: UserId,
        preference: NotificationPreference,
    ) -> Result<NotificationPreference, AdminError> {
        let address = match preference.address.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(address) => {
                check_email(address)?;
                Some(address.to_owned())
            }
        };
        let preference = NotificationPreference {
            task_emails: preference.task_emails,
            address,
        };
        let actor = actor.clone();
        let country = self.country;
        let saved = self
            .write(move |tx| {
                let t = Tables::open(tx)?;
                let target = t.user(id)?;
                let action = format!(
                    "change the email notifications of {}",
                    target.account.user.login
                );
                let acting = t.acting(country, &actor, &action)?;
                if acting.user().id != id {
                    return Err(AdminError::NotAllowed {
                        action,
                        reason: "each user chooses their own email notifications".into(),
                    });
                }
                tx.open_table(PREFERENCES)
                    .map_err(StoreError::from)?
                    .insert(id.to_bytes().as_slice(), encode(&preference).as_slice())
                    .map_err(StoreError::from)?;
                Ok(preference.clone())
            })
            .await?;
        info!(user = %id, task_emails = %saved.task_emails, own_address = saved.address.is_some(), "notification preference set");
        self.notify(AdminEvent::UserChanged(id));
        Ok(saved)
    }

    /// Where and how often to email user `id` about a new task for them:
    /// `None` when they chose never, their account is deactivated or their
    /// authority is not active.
    pub fn task_email(&self, id: UserId) -> Result<Option<TaskEmail>, AdminError> {
        let tx = self.store.read()?;
        let users = tx.open_table(USERS).map_err(StoreError::from)?;
        let user: StoredUser = get(&users, "user", &id.to_bytes())?
            .ok_or_else(|| AdminError::UnknownUser(id.to_string()))?;
        let authorities = tx.open_table(AUTHORITIES).map_err(StoreError::from)?;
        let status = get::<AuthorityRecord>(
            &authorities,
            "authority",
            &user.account.user.authority.to_bytes(),
        )?
        .map_or(AuthorityStatus::Deactivated, |r| r.authority.status);
        let table = tx.open_table(PREFERENCES).map_err(StoreError::from)?;
        Ok(task_email(&user, status, stored(&table, id)?))
    }

    /// Whom to email about a new task for `authority`: its active users who
    /// did not choose never, oldest account first; nobody when the
    /// authority is not active.
    pub fn task_emails_of(&self, authority: AuthorityId) -> Result<Vec<TaskEmail>, AdminError> {
        let tx = self.store.read()?;
        let authorities = tx.open_table(AUTHORITIES).map_err(StoreError::from)?;
        let record: AuthorityRecord = get(&authorities, "authority", &authority.to_bytes())?
            .ok_or(AdminError::UnknownAuthority(authority))?;
        let status = record.authority.status;
        let table = tx.open_table(PREFERENCES).map_err(StoreError::from)?;
        let mut found = Vec::new();
        for user in stored_users_of(&tx, authority)? {
            let preference = stored(&table, user.account.user.id)?;
            found.extend(task_email(&user, status, preference));
        }
        Ok(found)
    }
}
