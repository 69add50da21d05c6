//! Routes: which node serves an authority, and which node receives a
//! country's alerts and notifications. Filled from the directory.

use imi_protocol::{AuthorityId, Country, NodeAddress};
use redb::TableDefinition;

use super::CaseApp;
use crate::node::Node;
use crate::store::StoreError;

/// Routes: `a:` ++ authority id, or `c:` ++ country code → node address.
pub(crate) const ROUTES: TableDefinition<'_, &[u8], &str> = TableDefinition::new("routes-1");

pub(crate) fn authority_route_key(authority: AuthorityId) -> Vec<u8> {
    let mut key = b"a:".to_vec();
    key.extend_from_slice(&authority.to_bytes());
    key
}

pub(crate) fn country_route_key(country: Country) -> Vec<u8> {
    let mut key = b"c:".to_vec();
    key.extend_from_slice(country.code().as_bytes());
    key
}

impl Node<CaseApp> {
    /// Records that `node` serves `authority`.
    pub async fn set_authority_route(
        &self,
        authority: AuthorityId,
        node: &NodeAddress,
    ) -> Result<(), StoreError> {
        let node = node.to_string();
        self.store()
            .write(move |tx| {
                tx.open_table(ROUTES)?
                    .insert(authority_route_key(authority).as_slice(), node.as_str())?;
                Ok(())
            })
            .await
    }

    /// Records that `node` receives the alerts and notifications of `country`.
    pub async fn set_country_route(
        &self,
        country: Country,
        node: &NodeAddress,
    ) -> Result<(), StoreError> {
        let node = node.to_string();
        self.store()
            .write(move |tx| {
                tx.open_table(ROUTES)?
                    .insert(country_route_key(country).as_slice(), node.as_str())?;
                Ok(())
            })
            .await
    }
}

/// A static route: an authority or a country.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKey {
    /// The node serving an authority.
    Authority(AuthorityId),
    /// The node receiving a country's alerts and notifications.
    Country(Country),
}

/// Sets a route in the store of a stopped node.
pub fn set_route_offline(
    store: &std::path::Path,
    key: RouteKey,
    node: &NodeAddress,
) -> Result<(), StoreError> {
    if let Some(parent) = store.parent() {
        std::fs::create_dir_all(parent).map_err(|e| StoreError::corrupt("store directory", e))?;
    }
    let db = crate::wal::open(store, true).map_err(|reason| StoreError::Open {
        path: store.to_owned(),
        reason: Box::new(reason),
    })?;
    let tx = db.begin_write()?;
    {
        let mut routes = tx.open_table(ROUTES)?;
        let key = match key {
            RouteKey::Authority(a) => authority_route_key(a),
            RouteKey::Country(c) => country_route_key(c),
        };
        routes.insert(key.as_slice(), node.to_string().as_str())?;
    }
    tx.commit()?;
    Ok(())
}

/// Sets (or, with `None`, removes) the routes of authorities, as the
/// directory publishes them.
///
/// Lazily (see `Store::write_lazy`): routes are derived from the directory,
/// and the node sets them all again from it at every start.
pub(crate) async fn set_routes(
    store: &crate::store::Store,
    routes: Vec<(AuthorityId, Option<NodeAddress>)>,
) -> Result<(), StoreError> {
    if routes.is_empty() {
        return Ok(());
    }
    store
        .write_lazy(move |tx| {
            let mut table = tx.open_table(ROUTES)?;
            for (authority, node) in routes {
                let key = authority_route_key(authority);
                match node {
                    Some(node) => {
                        table.insert(key.as_slice(), node.to_string().as_str())?;
                    }
                    None => {
                        table.remove(key.as_slice())?;
                    }
                }
            }
            Ok(())
        })
        .await
}
