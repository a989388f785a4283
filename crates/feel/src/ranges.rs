//! FEEL's range functions (`before`, `meets`, `overlaps`, `includes`, ...)
//! over points and ranges, and `range("[1..10]")`. An endpoint that is null
//! is unbounded.

use std::cmp::Ordering;

use crate::eval::compare;
use crate::value::{Range, Value};

/// A range, or a point as the range of itself.
enum Arg<'a> {
    Point(&'a Value),
    Range(&'a Range),
}

fn arg(value: &Value) -> Arg<'_> {
    match value {
        Value::Range(range) => Arg::Range(range),
        point => Arg::Point(point),
    }
}

/// `a` against `b`; an unbounded end is beyond everything on its side.
fn cmp(a: &Value, b: &Value, a_unbounded_low: bool, b_unbounded_low: bool) -> Option<Ordering> {
    match (a, b) {
        (Value::Null, Value::Null) => Some(if a_unbounded_low == b_unbounded_low { Ordering::Equal } else if a_unbounded_low { Ordering::Less } else { Ordering::Greater }),
        (Value::Null, _) => Some(if a_unbounded_low { Ordering::Less } else { Ordering::Greater }),
        (_, Value::Null) => Some(if b_unbounded_low { Ordering::Greater } else { Ordering::Less }),
        _ => compare(a, b),
    }
}

// Shorthands over endpoints: s = start (unbounded low), e = end (unbounded high), p = a point.
fn ss(a: &Range, b: &Range) -> Option<Ordering> {
    cmp(&a.start, &b.start, true, true)
}
fn ee(a: &Range, b: &Range) -> Option<Ordering> {
    cmp(&a.end, &b.end, false, false)
}
fn es(a: &Range, b: &Range) -> Option<Ordering> {
    cmp(&a.end, &b.start, false, true)
}
fn se(a: &Range, b: &Range) -> Option<Ordering> {
    cmp(&a.start, &b.end, true, false)
}
fn ps(p: &Value, r: &Range) -> Option<Ordering> {
    cmp(p, &r.start, false, true)
}
fn pe(p: &Value, r: &Range) -> Option<Ordering> {
    cmp(p, &r.end, false, false)
}

use Ordering::{Equal, Greater, Less};

fn before(a: &Value, b: &Value) -> Option<bool> {
    Some(match (arg(a), arg(b)) {
        (Arg::Point(p), Arg::Point(q)) => compare(p, q)? == Less,
        (Arg::Point(p), Arg::Range(r)) => {
            let o = ps(p, r)?;
            o == Less || (o == Equal && !r.start_included)
        }
        (Arg::Range(r), Arg::Point(p)) => {
            let o = pe(p, r)?;
            o == Greater || (o == Equal && !r.end_included)
        }
        (Arg::Range(r1), Arg::Range(r2)) => {
            let o = es(r1, r2)?;
            o == Less || (o == Equal && (!r1.end_included || !r2.start_included))
        }
    })
}

fn meets(a: &Value, b: &Value) -> Option<bool> {
    let (Arg::Range(r1), Arg::Range(r2)) = (arg(a), arg(b)) else { return None };
    Some(r1.end_included && r2.start_included && es(r1, r2)? == Equal)
}

fn overlaps(a: &Value, b: &Value) -> Option<bool> {
    let (Arg::Range(r1), Arg::Range(r2)) = (arg(a), arg(b)) else { return None };
    let end_after_start = match es(r1, r2)? {
        Greater => true,
        Equal => r1.end_included && r2.start_included,
        Less => false,
    };
    let start_before_end = match se(r1, r2)? {
        Less => true,
        Equal => r1.start_included && r2.end_included,
        Greater => false,
    };
    Some(end_after_start && start_before_end)
}

fn overlaps_before(a: &Value, b: &Value) -> Option<bool> {
    let (Arg::Range(r1), Arg::Range(r2)) = (arg(a), arg(b)) else { return None };
    let starts_first = match ss(r1, r2)? {
        Less => true,
        Equal => r1.start_included && !r2.start_included,
        Greater => false,
    };
    let reaches = match es(r1, r2)? {
        Greater => true,
        Equal => r1.end_included && r2.start_included,
        Less => false,
    };
    let ends_first = match ee(r1, r2)? {
        Less => true,
        Equal => !r1.end_included || r2.end_included,
        Greater => false,
    };
    Some(starts_first && reaches && ends_first)
}

fn finishes(a: &Value, b: &Value) -> Option<bool> {
    Some(match (arg(a), arg(b)) {
        (Arg::Point(p), Arg::Range(r)) => r.end_included && pe(p, r)? == Equal,
        (Arg::Range(r1), Arg::Range(r2)) => {
            r1.end_included == r2.end_included
                && ee(r1, r2)? == Equal
                && match ss(r1, r2)? {
                    Greater => true,
                    Equal => !r1.start_included || r2.start_included,
                    Less => false,
                }
        }
        _ => return None,
    })
}

fn includes(a: &Value, b: &Value) -> Option<bool> {
    Some(match (arg(a), arg(b)) {
        (Arg::Range(r), Arg::Point(p)) => {
            let after_start = match ps(p, r)? {
                Greater => true,
                Equal => r.start_included,
                Less => false,
            };
            let before_end = match pe(p, r)? {
                Less => true,
                Equal => r.end_included,
                Greater => false,
            };
            after_start && before_end
        }
        (Arg::Range(r1), Arg::Range(r2)) => {
            let from = match ss(r1, r2)? {
                Less => true,
                Equal => r1.start_included || !r2.start_included,
                Greater => false,
            };
            let to = match ee(r1, r2)? {
                Greater => true,
                Equal => r1.end_included || !r2.end_included,
                Less => false,
            };
            from && to
        }
        _ => return None,
    })
}

fn starts(a: &Value, b: &Value) -> Option<bool> {
    Some(match (arg(a), arg(b)) {
        (Arg::Point(p), Arg::Range(r)) => r.start_included && ps(p, r)? == Equal,
        (Arg::Range(r1), Arg::Range(r2)) => {
            ss(r1, r2)? == Equal
                && r1.start_included == r2.start_included
                && match ee(r1, r2)? {
                    Less => true,
                    Equal => !r1.end_included || r2.end_included,
                    Greater => false,
                }
        }
        _ => return None,
    })
}

fn coincides(a: &Value, b: &Value) -> Option<bool> {
    Some(match (arg(a), arg(b)) {
        (Arg::Point(p), Arg::Point(q)) => compare(p, q)? == Equal,
        (Arg::Range(r1), Arg::Range(r2)) => {
            ss(r1, r2)? == Equal && ee(r1, r2)? == Equal && r1.start_included == r2.start_included && r1.end_included == r2.end_included
        }
        _ => return None,
    })
}

/// The range functions by name; `None` for another name.
pub(crate) fn call(name: &str, a: &Value, b: &Value) -> Option<Option<bool>> {
    Some(match name {
        "before" => before(a, b),
        "after" => before(b, a),
        "meets" => meets(a, b),
        "met by" => meets(b, a),
        "overlaps" => overlaps(a, b),
        "overlaps before" => overlaps_before(a, b),
        "overlaps after" => overlaps_before(b, a),
        "finishes" => finishes(a, b),
        "finished by" => finishes(b, a),
        "includes" => includes(a, b),
        "during" => includes(b, a),
        "starts" => starts(a, b),
        "started by" => starts(b, a),
        "coincides" => coincides(a, b),
        _ => return None,
    })
}

pub(crate) const NAMES: [&str; 14] = [
    "before", "after", "meets", "met by", "overlaps", "overlaps before", "overlaps after", "finishes", "finished by", "includes", "during",
    "starts", "started by", "coincides",
];
