use async_graphql::OutputType;
use async_graphql::connection::{Connection, Edge};
use tenfold_app::Page;
use uuid::Uuid;

use crate::ids::encode_cursor;

/// A Relay connection from one page of a keyset-paginated list.
pub fn connection<V, T: OutputType>(
    page: Page<V>,
    after_given: bool,
    cursor: impl Fn(&V) -> Uuid,
    node: impl Fn(V) -> T,
) -> Connection<String, T> {
    let mut conn = Connection::new(after_given, page.has_next);
    conn.edges.extend(page.rows.into_iter().map(|v| Edge::new(encode_cursor(cursor(&v)), node(v))));
    conn
}
