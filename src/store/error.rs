//! What every storage call answers besides its value: [`StoreError`] and, for writes that may
//! find nothing or a conflict, [`Write`]. Apart from the traits so that storage contracts of
//! other folders (`authz::store`) can use them without an import circle through
//! `crate::store::Backend`.

/// A storage failure. Its text is logged, never sent to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl StoreError {
    pub fn new(e: impl std::fmt::Display) -> Self {
        StoreError(e.to_string())
    }
}

/// A storage failure answers 503: the store is unavailable, the request may be retried.
impl From<StoreError> for crate::error::Error {
    fn from(e: StoreError) -> Self {
        crate::error::Error::Unavailable(e.0)
    }
}

/// Result of an admin write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Done,
    /// No such record (update, delete).
    NotFound,
    /// A record with that id, or a scope with that name, already exists (create).
    Conflict,
}
