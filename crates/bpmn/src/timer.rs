//! Timer definitions and the ISO 8601 forms they take: durations (`PT1H`),
//! dates (`2026-01-02T09:00:00Z`) and repeating cycles (`R3/PT1H`,
//! `R/2026-01-01T00:00:00Z/P1D`). Pure functions of their text and `now`.

use jiff::fmt::temporal::SpanParser;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

use crate::model::Property;

/// A timer event definition as written in the model.
#[derive(Clone, Debug)]
pub enum TimerDefinition {
    Duration(Property),
    Date(Property),
    Cycle(Property),
}

impl TimerDefinition {
    pub fn property(&self) -> &Property {
        match self {
            TimerDefinition::Duration(p) | TimerDefinition::Date(p) | TimerDefinition::Cycle(p) => p,
        }
    }

    /// Checks literal text at deploy time; expressions are checked when they are evaluated.
    pub fn check_literal(&self) -> Result<(), String> {
        let Property::Literal(text) = self.property() else { return Ok(()) };
        self.schedule(text, 0).map(|_| ())
    }

    /// When the timer first falls due, given its (evaluated) text and the time it starts.
    pub fn schedule(&self, text: &str, now_ms: i64) -> Result<Schedule, String> {
        match self {
            TimerDefinition::Duration(_) => {
                let span = parse_duration(text)?;
                Ok(Schedule { due_ms: add(now_ms, span)?, repeat: None })
            }
            TimerDefinition::Date(_) => Ok(Schedule { due_ms: parse_date(text)?.as_millisecond(), repeat: None }),
            TimerDefinition::Cycle(_) => {
                let cycle = parse_cycle(text)?;
                let due_ms = match cycle.start {
                    Some(start) => start.as_millisecond().max(now_ms),
                    None => add(now_ms, cycle.interval)?,
                };
                // The first firing uses one repetition.
                let remaining = cycle.repetitions.map(|r| r.saturating_sub(1));
                Ok(Schedule { due_ms, repeat: Some(Repeat { remaining, interval: cycle.interval }) })
            }
        }
    }
}

/// A computed due time, and for cycles how the timer repeats after it fires.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub due_ms: i64,
    pub repeat: Option<Repeat>,
}

#[derive(Clone, Debug)]
pub struct Repeat {
    /// Firings left after the current one; `None` repeats forever.
    pub remaining: Option<u32>,
    pub interval: Span,
}

/// A repeating interval: `R[n]/[start/]duration`.
#[derive(Clone, Debug)]
pub struct Cycle {
    pub repetitions: Option<u32>,
    pub start: Option<Timestamp>,
    pub interval: Span,
}

/// Adds an ISO 8601 span to a time in milliseconds (days are calendar days in UTC).
pub fn add(now_ms: i64, span: Span) -> Result<i64, String> {
    let now = Timestamp::from_millisecond(now_ms).map_err(|e| e.to_string())?;
    let due = now.to_zoned(TimeZone::UTC).checked_add(span).map_err(|e| format!("the due time is out of range: {e}"))?;
    Ok(due.timestamp().as_millisecond())
}

pub fn parse_duration(text: &str) -> Result<Span, String> {
    let text = text.trim();
    if !text.starts_with(['P', 'p']) {
        return Err(format!("'{text}' is not an ISO 8601 duration such as PT1H or P1DT8H"));
    }
    let span = SpanParser::new()
        .parse_span(text)
        .map_err(|_| format!("'{text}' is not an ISO 8601 duration such as PT1H or P1DT8H"))?;
    Ok(span)
}

pub fn parse_date(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    feel::parse_timestamp(text)
        .ok_or_else(|| format!("'{text}' is not an ISO 8601 date and time such as 2026-01-02T09:00:00Z"))
}

pub fn parse_cycle(text: &str) -> Result<Cycle, String> {
    let text = text.trim();
    let invalid = || format!("'{text}' is not an ISO 8601 repeating interval such as R3/PT1H or R/2026-01-01T00:00:00Z/P1D");
    let mut parts = text.split('/');
    let head = parts.next().ok_or_else(invalid)?;
    let count = head.strip_prefix('R').ok_or_else(invalid)?;
    let repetitions = if count.is_empty() { None } else { Some(count.parse::<u32>().map_err(|_| invalid())?) };
    let rest: Vec<&str> = parts.collect();
    let (start, interval) = match rest.as_slice() {
        [interval] => (None, parse_duration(interval).map_err(|_| invalid())?),
        [start, interval] => (Some(parse_date(start).map_err(|_| invalid())?), parse_duration(interval).map_err(|_| invalid())?),
        _ => return Err(invalid()),
    };
    if add(0, interval).map_or(true, |ms| ms <= 0) {
        return Err(format!("the interval of '{text}' must be longer than zero"));
    }
    Ok(Cycle { repetitions, start, interval })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_dates_and_cycles() {
        assert_eq!(add(0, parse_duration("PT1H").unwrap()), Ok(3_600_000));
        assert_eq!(add(0, parse_duration("P1DT8H").unwrap()), Ok(32 * 3_600_000));
        assert!(parse_duration("PT1X").is_err());
        assert!(parse_duration("1h").is_err());
        assert_eq!(parse_date("2026-01-02T09:00:00Z").unwrap().to_string(), "2026-01-02T09:00:00Z");
        assert_eq!(parse_date("2026-01-02T10:00:00+01:00").unwrap().to_string(), "2026-01-02T09:00:00Z");
        let cycle = parse_cycle("R2/PT30M").unwrap();
        assert_eq!((cycle.repetitions, cycle.start), (Some(2), None));
        assert_eq!(parse_cycle("R/2026-01-01T00:00:00Z/P1D").unwrap().repetitions, None);
        assert!(parse_cycle("R2/PT0S").is_err());
        assert!(parse_cycle("every day").is_err());
    }
}
