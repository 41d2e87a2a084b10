//! How an injected fault behaves (shared by the in-memory backends: `testing` and
//! `authz::memory`).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The write does not happen and the call reports an error.
    Lost,
    /// The write happens, then the call reports an error (a timeout after the commit).
    LandedButFailed,
}
