//! `store::Error`: one opaque type; callers ask what it is with predicates.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The database could not be reached or is busy beyond the timeout.
    Unavailable,
    /// A row could not be decoded: the database holds something this version cannot read.
    Corrupt,
    /// A list was asked for after a cursor that no list of its kind returned.
    BadCursor,
    /// Anything else the database reported.
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: Kind,
    message: String,
}

impl Error {
    pub fn unavailable(message: impl Into<String>) -> Error {
        Error { kind: Kind::Unavailable, message: message.into() }
    }

    pub fn corrupt(message: impl Into<String>) -> Error {
        Error { kind: Kind::Corrupt, message: message.into() }
    }

    pub fn bad_cursor(cursor: &str) -> Error {
        Error { kind: Kind::BadCursor, message: format!("'{cursor}' is not a cursor of this list; pass the `next` of a page") }
    }

    /// The caller passed a cursor that is not one: their mistake, not the store's.
    pub fn is_bad_cursor(&self) -> bool {
        self.kind == Kind::BadCursor
    }

    pub fn other(message: impl Into<String>) -> Error {
        Error { kind: Kind::Other, message: message.into() }
    }

    /// Trying again later may succeed.
    pub fn is_unavailable(&self) -> bool {
        self.kind == Kind::Unavailable
    }

    pub fn is_corrupt(&self) -> bool {
        self.kind == Kind::Corrupt
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            Kind::Unavailable => "store unavailable",
            Kind::Corrupt => "store data cannot be read",
            Kind::BadCursor => "bad cursor",
            Kind::Other => "store error",
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl std::error::Error for Error {}
