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
    /// A row changed since the writer read it: someone else wrote it meanwhile.
    Conflict,
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

    pub fn conflict(message: impl Into<String>) -> Error {
        Error { kind: Kind::Conflict, message: message.into() }
    }

    /// Instance `id` was read when the store held its version `stored`, and the store now holds `held`.
    pub fn instance_changed(id: &str, stored: Option<u64>, held: Option<u64>) -> Error {
        let version = |v: Option<u64>| v.map_or_else(|| "not there".to_string(), |v| format!("version {v}"));
        Error::conflict(format!("instance {id} changed since it was read ({} then, {} now)", version(stored), version(held)))
    }

    /// The row changed since it was read; reading it again and retrying may succeed.
    pub fn is_conflict(&self) -> bool {
        self.kind == Kind::Conflict
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

    /// Trying again later may succeed (a conflict too: the retry reads the new row).
    pub fn is_unavailable(&self) -> bool {
        matches!(self.kind, Kind::Unavailable | Kind::Conflict)
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
            Kind::Conflict => "store conflict",
            Kind::Other => "store error",
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl std::error::Error for Error {}
