//! Publishes this node's active authorities in the replicated directory.
//!
//! Authorities live in the node's administration tables; the directory holds
//! what the rest of the federation sees. At start the two are reconciled
//! (the CLI may have changed authorities while the node was stopped), then
//! every administration change is published as it commits: an approved
//! authority appears in every country's directory and search, a deactivated
//! or rejected one disappears.

use imi_protocol::{AuthorityId, AuthorityStatus, NodeAddress};
use tokio::sync::broadcast;
use tracing::{info, warn};

use crate::admin::{Admin, AdminEvent};
use crate::directory::{Directory, PublishedAuthority};

/// Keeps `directory` in step with `admin` until the node stops.
pub(crate) async fn follow(admin: Admin, directory: Directory, me: NodeAddress) {
    // The Commission's document holds the catalogue and the roster, not
    // authorities.
    if me.country.is_commission() {
        return;
    }
    let mut events = admin.subscribe();
    reconcile(&admin, &directory, &me).await;
    loop {
        match events.recv().await {
            Ok(AdminEvent::AuthorityChanged(id)) => publish_one(&admin, &directory, &me, id).await,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => reconcile(&admin, &directory, &me).await,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn publish_one(admin: &Admin, directory: &Directory, me: &NodeAddress, id: AuthorityId) {
    let record = match admin.authority(id) {
        Ok(record) => record,
        Err(err) => {
            warn!(authority = %id, error = %err, "cannot read the authority to publish it");
            return;
        }
    };
    let authority = record.authority;
    if authority.status == AuthorityStatus::Active {
        let entry = PublishedAuthority::from_authority(&authority, me.clone());
        if directory.authority(me.country, id).as_ref() != Some(&entry) {
            match directory.upsert_authority(entry).await {
                Ok(()) => info!(authority = %id, "authority published in the directory"),
                Err(err) => warn!(authority = %id, error = %err, "authority not published"),
            }
        }
    } else if directory.authority(me.country, id).is_some() {
        match directory.remove_authority(id).await {
            Ok(_) => {
                info!(authority = %id, status = ?authority.status, "authority withdrawn from the directory")
            }
            Err(err) => warn!(authority = %id, error = %err, "authority not withdrawn"),
        }
    }
}

async fn reconcile(admin: &Admin, directory: &Directory, me: &NodeAddress) {
    let active = match admin.published_authorities().await {
        Ok(active) => active,
        Err(err) => {
            warn!(error = %err, "cannot read the authorities to publish");
            return;
        }
    };
    let entries: Vec<PublishedAuthority> = active
        .iter()
        .map(|a| PublishedAuthority::from_authority(a, me.clone()))
        .filter(|entry| directory.authority(entry.country, entry.id).as_ref() != Some(entry))
        .collect();
    if !entries.is_empty() {
        let count = entries.len();
        match directory.upsert_authorities(entries).await {
            Ok(()) => info!(count, "authorities published in the directory"),
            Err(err) => warn!(error = %err, "authorities not published"),
        }
    }
    // Withdraw what the administration no longer holds active (deactivated
    // or rejected while the node was stopped). Entries the administration
    // does not know are left alone.
    let all = match admin.list_authorities(None).await {
        Ok(all) => all,
        Err(err) => {
            warn!(error = %err, "cannot read the authorities to withdraw");
            return;
        }
    };
    for record in all {
        let authority = record.authority;
        if authority.status != AuthorityStatus::Active
            && directory
                .authority(me.country, authority.id)
                .is_some_and(|p| p.node == *me)
            && let Err(err) = directory.remove_authority(authority.id).await
        {
            warn!(authority = %authority.id, error = %err, "authority not withdrawn");
        }
    }
}

/// How often the node repeats its administration warnings in the log.
const WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Users idle this long are reported as probable leavers.
const IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

/// Logs, a minute after start and then daily, the authorities without a
/// substitute and the users who have not signed in for 90 days, so
/// coordinators act on them.
pub(crate) async fn warn_periodically(admin: Admin) {
    let first = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut tick = tokio::time::interval_at(first, WARN_EVERY);
    loop {
        tick.tick().await;
        match admin.substitute_warnings().await {
            Ok(warnings) => {
                // One line per authority, naming every area concerned.
                let mut by_authority: std::collections::BTreeMap<_, (String, Vec<String>)> =
                    std::collections::BTreeMap::new();
                for warning in warnings {
                    by_authority
                        .entry(warning.authority)
                        .or_insert_with(|| (warning.name.clone(), vec![]))
                        .1
                        .push(warning.area.to_string());
                }
                for (authority, (name, areas)) in by_authority {
                    warn!(
                        %authority,
                        areas = %areas.join(", "),
                        "{name} has fewer than two active users handling requests in some areas; give a second user the request-handler or allocator role there, so someone can stand in"
                    );
                }
            }
            Err(err) => warn!(error = %err, "cannot check the substitutes"),
        }
        match admin.inactive_users(IDLE_FOR).await {
            Ok(idle) => {
                for user in idle {
                    let u = &user.account.user;
                    warn!(login = %u.login, since = %user.idle_since, "user has not signed in for 90 days; remove the account if they left");
                }
            }
            Err(err) => warn!(error = %err, "cannot list inactive users"),
        }
    }
}
