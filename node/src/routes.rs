//! Routes: which node serves an authority, and which node receives a
//! country's alerts and notifications.
//!
//! An authority is identified by its country and its id ([`Party`]), never
//! by its id alone: two countries' documents may both name an id, and each
//! names only its own authority. A route is accepted only to a node of the
//! route's own country (a node's address carries the country its
//! certificate names, and admission checks that certificate before any
//! message reaches it), so no entry in another country's document and no
//! hand-set route can send a country's requests anywhere but to that
//! country's nodes.
//!
//! Routes come from the directory (`crate::index` follows its change feed)
//! and from the operator (`imi-node route`, [`Node::set_authority_route`]).
//! Cases read them through [`resolve`] and [`serves`].
//!
//! ```no_run
//! # async fn demo(node: &imi_node::node::Node<imi_node::cases::CaseApp>) -> anyhow::Result<()> {
//! use imi_protocol::{AuthorityId, Country, Party};
//! let party = Party { authority: AuthorityId::new(), country: Country::Pt };
//! node.set_authority_route(party, &"PT/pt-1".parse()?).await?;
//! // A Spanish node cannot serve a Portuguese authority:
//! assert!(node.set_authority_route(party, &"ES/es-1".parse()?).await.is_err());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use imi_protocol::{AuthorityId, Country, Destination, NodeAddress, Party};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use tracing::warn;

use crate::delivery::Inbound;
use crate::node::Node;
use crate::store::{Store, StoreError};

/// Routes: [`RouteKey::encode`] → node address.
///
/// Version 2 keys an authority by its country and id (version 1, keyed by
/// the id alone, let one country's entry take another's route).
pub(crate) const ROUTES: TableDefinition<'_, &[u8], &str> = TableDefinition::new("routes-2");

/// What a route is for: an authority or a country.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum RouteKey {
    /// The node serving an authority (of its country).
    Authority(Party),
    /// The node receiving a country's alerts and notifications.
    Country(Country),
}

impl RouteKey {
    /// The country whose nodes alone may serve this route.
    pub fn country(&self) -> Country {
        match self {
            RouteKey::Authority(party) => party.country,
            RouteKey::Country(country) => *country,
        }
    }

    /// The key in [`ROUTES`]: `a:` ++ country code ++ authority id (16
    /// bytes), or `c:` ++ country code.
    pub(crate) fn encode(&self) -> Vec<u8> {
        match self {
            RouteKey::Authority(party) => {
                let mut key = b"a:".to_vec();
                key.extend_from_slice(party.country.code().as_bytes());
                key.extend_from_slice(&party.authority.to_bytes());
                key
            }
            RouteKey::Country(country) => {
                let mut key = b"c:".to_vec();
                key.extend_from_slice(country.code().as_bytes());
                key
            }
        }
    }

    /// The key a stored key encodes; `None` for bytes no version 2 key has.
    pub(crate) fn decode(bytes: &[u8]) -> Option<RouteKey> {
        let country =
            |code: &[u8]| -> Option<Country> { std::str::from_utf8(code).ok()?.parse().ok() };
        match bytes {
            [b'a', b':', rest @ ..] if rest.len() == 18 => {
                let country = country(&rest[..2])?;
                let id: [u8; 16] = rest[2..].try_into().ok()?;
                Some(RouteKey::Authority(Party {
                    authority: AuthorityId::from_bytes(id),
                    country,
                }))
            }
            [b'c', b':', rest @ ..] if rest.len() == 2 => Some(RouteKey::Country(country(rest)?)),
            _ => None,
        }
    }
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteKey::Authority(party) => {
                write!(f, "authority {}/{}", party.country, party.authority)
            }
            RouteKey::Country(country) => write!(f, "country {country}"),
        }
    }
}

/// A route as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// What it is for.
    pub key: RouteKey,
    /// The node that serves it.
    pub node: NodeAddress,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.key, self.node)
    }
}

/// A route could not be set, removed or read.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The node is of another country than the authority or country it
    /// would serve.
    #[error(
        "{key} can only be served by a node of {country}, not by {node}; name a node of {country}",
        country = key.country()
    )]
    ForeignNode {
        /// The route.
        key: RouteKey,
        /// The node refused.
        node: NodeAddress,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<redb::TableError> for RouteError {
    fn from(err: redb::TableError) -> Self {
        StoreError::from(err).into()
    }
}

impl From<redb::StorageError> for RouteError {
    fn from(err: redb::StorageError) -> Self {
        StoreError::from(err).into()
    }
}

impl From<redb::TransactionError> for RouteError {
    fn from(err: redb::TransactionError) -> Self {
        StoreError::from(err).into()
    }
}

impl From<redb::CommitError> for RouteError {
    fn from(err: redb::CommitError) -> Self {
        StoreError::from(err).into()
    }
}

/// Refuses a route to a node of another country than the route's.
pub fn check(key: RouteKey, node: &NodeAddress) -> Result<(), RouteError> {
    if node.country != key.country() {
        return Err(RouteError::ForeignNode {
            key,
            node: node.clone(),
        });
    }
    Ok(())
}

/// Creates the routes table.
pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(ROUTES)?;
    Ok(())
}

/// Sets a route inside `tx`, after [`check`]ing it (nothing is written if
/// it is refused).
pub(crate) fn set(
    tx: &WriteTransaction,
    key: RouteKey,
    node: &NodeAddress,
) -> Result<(), RouteError> {
    check(key, node)?;
    Ok(insert(tx, key, node)?)
}

/// Writes a route that was checked.
fn insert(tx: &WriteTransaction, key: RouteKey, node: &NodeAddress) -> Result<(), StoreError> {
    tx.open_table(ROUTES)?
        .insert(key.encode().as_slice(), node.to_string().as_str())?;
    Ok(())
}

/// Removes a route inside `tx`; `false` if there was none.
pub(crate) fn remove(tx: &WriteTransaction, key: RouteKey) -> Result<bool, StoreError> {
    Ok(tx
        .open_table(ROUTES)?
        .remove(key.encode().as_slice())?
        .is_some())
}

/// The node of route `key` in `table`. A stored node of another country
/// than the route's is not a route (it cannot be written, but a store is
/// not trusted blindly).
pub(crate) fn lookup(
    table: &impl ReadableTable<&'static [u8], &'static str>,
    key: RouteKey,
) -> Result<Option<NodeAddress>, StoreError> {
    let Some(value) = table.get(key.encode().as_slice())? else {
        return Ok(None);
    };
    let node: Option<NodeAddress> = value.value().parse().ok();
    Ok(node.filter(|n| check(key, n).is_ok()))
}

/// Every route in `table`, in key order.
fn all(table: &impl ReadableTable<&'static [u8], &'static str>) -> Result<Vec<Route>, StoreError> {
    let mut routes = Vec::new();
    for entry in table.iter()? {
        let (key, node) = entry?;
        let (Some(key), Ok(node)) = (RouteKey::decode(key.value()), node.value().parse()) else {
            continue;
        };
        routes.push(Route { key, node });
    }
    Ok(routes)
}

/// The node a step for `destination` goes to: for an authority, the node
/// that spoke for it in the case (`known`), else its route, else its
/// country's route; for a country, the country's route. Whatever the
/// source, only a node of the destination's own country is taken.
pub(crate) fn resolve(
    table: &impl ReadableTable<&'static [u8], &'static str>,
    known: &BTreeMap<AuthorityId, NodeAddress>,
    destination: &Destination,
) -> Result<Option<NodeAddress>, StoreError> {
    match destination {
        Destination::Authority(party) => {
            if let Some(node) = known.get(&party.authority)
                && node.country == party.country
            {
                return Ok(Some(node.clone()));
            }
            if let Some(node) = lookup(table, RouteKey::Authority(*party))? {
                return Ok(Some(node));
            }
            lookup(table, RouteKey::Country(party.country))
        }
        Destination::Country(country) => lookup(table, RouteKey::Country(*country)),
    }
}

/// Sets (or, with `None`, removes) the routes of authorities as the
/// directory publishes them. A route to a node of another country is
/// refused and logged (the directory does not read such entries; this is
/// the last gate).
///
/// Lazily (see `Store::write_lazy`): routes are derived from the directory,
/// and the node sets them all again from it at every start.
pub(crate) async fn set_from_directory(
    store: &Store,
    routes: Vec<(Party, Option<NodeAddress>)>,
) -> Result<(), StoreError> {
    if routes.is_empty() {
        return Ok(());
    }
    store
        .write_lazy(move |tx| {
            let mut table = tx.open_table(ROUTES)?;
            for (party, node) in &routes {
                let key = RouteKey::Authority(*party);
                match node {
                    Some(node) => {
                        if let Err(refused) = check(key, node) {
                            warn!(reason = %refused, "route from the directory refused");
                            continue;
                        }
                        table.insert(key.encode().as_slice(), node.to_string().as_str())?;
                    }
                    None => {
                        table.remove(key.encode().as_slice())?;
                    }
                }
            }
            Ok(())
        })
        .await
}

impl<I: Inbound> Node<I> {
    /// Records that `node` serves authority `party`; refused unless `node`
    /// is of the authority's country.
    pub async fn set_authority_route(
        &self,
        party: Party,
        node: &NodeAddress,
    ) -> Result<(), RouteError> {
        self.set_route(RouteKey::Authority(party), node).await
    }

    /// Records that `node` receives the alerts and notifications of
    /// `country`; refused unless `node` is of that country.
    pub async fn set_country_route(
        &self,
        country: Country,
        node: &NodeAddress,
    ) -> Result<(), RouteError> {
        self.set_route(RouteKey::Country(country), node).await
    }

    /// Sets route `key` to `node` (refused unless `node` is of the route's
    /// country).
    pub async fn set_route(&self, key: RouteKey, node: &NodeAddress) -> Result<(), RouteError> {
        check(key, node)?;
        let node = node.clone();
        self.store().write(move |tx| insert(tx, key, &node)).await?;
        Ok(())
    }

    /// Removes route `key`; `false` if there was none.
    pub async fn remove_route(&self, key: RouteKey) -> Result<bool, StoreError> {
        self.store().write(move |tx| remove(tx, key)).await
    }

    /// The node route `key` leads to, if any.
    pub fn route(&self, key: RouteKey) -> Result<Option<NodeAddress>, StoreError> {
        let read = self.store().read()?;
        lookup(&read.open_table(ROUTES)?, key)
    }

    /// Every route, in key order.
    pub fn routes(&self) -> Result<Vec<Route>, StoreError> {
        let read = self.store().read()?;
        all(&read.open_table(ROUTES)?)
    }
}

fn open_offline(store: &Path, create: bool) -> Result<redb::Database, StoreError> {
    if create && let Some(parent) = store.parent() {
        std::fs::create_dir_all(parent).map_err(|e| StoreError::corrupt("store directory", e))?;
    }
    crate::wal::open(store, create).map_err(|reason| StoreError::Open {
        path: store.to_owned(),
        reason: Box::new(reason),
    })
}

/// Sets a route in the store of a stopped node (refused unless `node` is of
/// the route's country).
pub fn set_route_offline(
    store: &Path,
    key: RouteKey,
    node: &NodeAddress,
) -> Result<(), RouteError> {
    check(key, node)?;
    let db = open_offline(store, true)?;
    let tx = db.begin_write()?;
    create_tables(&tx)?;
    set(&tx, key, node)?;
    tx.commit()?;
    Ok(())
}

/// Removes a route from the store of a stopped node; `false` if there was
/// none.
pub fn remove_route_offline(store: &Path, key: RouteKey) -> Result<bool, RouteError> {
    let db = open_offline(store, false)?;
    let tx = db.begin_write()?;
    create_tables(&tx)?;
    let removed = remove(&tx, key)?;
    tx.commit()?;
    Ok(removed)
}

/// Every route in the store of a stopped node, in key order.
pub fn list_routes_offline(store: &Path) -> Result<Vec<Route>, RouteError> {
    use redb::ReadableDatabase;
    let db = open_offline(store, false)?;
    let read = db.begin_read().map_err(StoreError::from)?;
    match read.open_table(ROUTES) {
        Ok(table) => Ok(all(&table)?),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(vec![]),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(country: Country) -> Party {
        Party {
            authority: AuthorityId::from_parts(1, 42),
            country,
        }
    }

    #[test]
    fn a_route_to_a_node_of_another_country_is_refused() {
        let pt = party(Country::Pt);
        let spanish: NodeAddress = "ES/es-1".parse().unwrap();
        let refused = check(RouteKey::Authority(pt), &spanish).unwrap_err();
        assert!(matches!(refused, RouteError::ForeignNode { .. }));
        assert_eq!(
            refused.to_string(),
            format!(
                "authority PT/{} can only be served by a node of PT, not by ES/es-1; name a node of PT",
                pt.authority
            )
        );
        assert!(check(RouteKey::Country(Country::Pt), &spanish).is_err());
        assert!(check(RouteKey::Authority(pt), &"PT/pt-1".parse().unwrap()).is_ok());
    }

    #[test]
    fn the_routes_table_keeps_one_route_per_country_and_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store.redb");
        let (pt, es) = (party(Country::Pt), party(Country::Es));
        let pt_node: NodeAddress = "PT/pt-1".parse().unwrap();
        let es_node: NodeAddress = "ES/es-1".parse().unwrap();
        set_route_offline(&store, RouteKey::Authority(pt), &pt_node).unwrap();
        // The same id in Spain is another authority: it does not replace Portugal's.
        set_route_offline(&store, RouteKey::Authority(es), &es_node).unwrap();
        assert!(matches!(
            set_route_offline(&store, RouteKey::Authority(pt), &es_node),
            Err(RouteError::ForeignNode { .. })
        ));
        let routes = list_routes_offline(&store).unwrap();
        assert_eq!(routes.len(), 2);
        assert!(routes.contains(&Route {
            key: RouteKey::Authority(pt),
            node: pt_node.clone(),
        }));
        assert!(routes.contains(&Route {
            key: RouteKey::Authority(es),
            node: es_node,
        }));
        assert!(remove_route_offline(&store, RouteKey::Authority(es)).unwrap());
        assert!(!remove_route_offline(&store, RouteKey::Authority(es)).unwrap());
        assert_eq!(
            list_routes_offline(&store).unwrap(),
            vec![Route {
                key: RouteKey::Authority(pt),
                node: pt_node,
            }]
        );
    }

    #[test]
    fn a_case_never_resolves_an_authority_to_a_node_of_another_country() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_offline(&dir.path().join("store.redb"), true).unwrap();
        let pt = party(Country::Pt);
        let pt_node: NodeAddress = "PT/pt-1".parse().unwrap();
        let es_node: NodeAddress = "ES/es-1".parse().unwrap();
        let tx = db.begin_write().unwrap();
        create_tables(&tx).unwrap();
        // A stored value the checks would have refused (an older store, a
        // hand-edited file) is not taken either.
        tx.open_table(ROUTES)
            .unwrap()
            .insert(RouteKey::Authority(pt).encode().as_slice(), "ES/es-1")
            .unwrap();
        let table = tx.open_table(ROUTES).unwrap();
        // Within a case, a Spanish node that spoke for the id does not
        // become the Portuguese authority's node.
        let known = BTreeMap::from([(pt.authority, es_node)]);
        let to_pt = Destination::Authority(pt);
        assert_eq!(resolve(&table, &known, &to_pt).unwrap(), None);
        drop(table);
        set(&tx, RouteKey::Country(Country::Pt), &pt_node).unwrap();
        let table = tx.open_table(ROUTES).unwrap();
        assert_eq!(resolve(&table, &known, &to_pt).unwrap(), Some(pt_node));
    }
}
