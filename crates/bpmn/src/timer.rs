//! Timer definitions and the forms they take: ISO 8601 durations (`PT1H`),
//! dates (`2026-01-02T09:00:00Z`) and repeating cycles (`R3/PT1H`,
//! `R/2026-01-01T00:00:00Z/P1D`), and cron cycles as Camunda 8 accepts them
//! (Spring's six fields, seconds first: `0 0 9 * * MON-FRI`, in UTC). Pure
//! functions of their text and `now`.

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

    /// The text of a timer that has no variables to read (a timer start event):
    /// literal text, or an expression evaluated without variables, as Camunda 8 does at deployment.
    pub fn text_without_variables(&self) -> Result<String, String> {
        match self.property() {
            Property::Literal(text) => Ok(text.clone()),
            Property::Expression(expression) => match expression.evaluate(&feel::NoVariables) {
                Ok(serde_json::Value::String(text)) => Ok(text),
                Ok(other) => Err(format!("the timer expression '{}' gave {other}, not a date, duration or cycle", expression.source())),
                Err(error) => Err(format!("the timer expression '{}' failed: {error}", expression.source())),
            },
        }
    }

    /// When the timer first falls due, given its (evaluated) text and the time it starts.
    pub fn schedule(&self, text: &str, now_ms: i64) -> Result<Schedule, String> {
        match self {
            TimerDefinition::Duration(_) => {
                let span = parse_duration(text)?;
                Ok(Schedule { due_ms: add(now_ms, span)?, repeat: None })
            }
            TimerDefinition::Date(_) => Ok(Schedule { due_ms: parse_date(text)?.as_millisecond(), repeat: None }),
            TimerDefinition::Cycle(_) if !text.trim_start().starts_with('R') => {
                let every = text.trim().to_string();
                let due_ms = next_due(&every, now_ms)?;
                Ok(Schedule { due_ms, repeat: Some(Repeat { remaining: None, every }) })
            }
            TimerDefinition::Cycle(_) => {
                let cycle = parse_cycle(text)?;
                let due_ms = match cycle.start {
                    Some(start) => start.as_millisecond().max(now_ms),
                    None => add(now_ms, cycle.interval)?,
                };
                // The first firing uses one repetition.
                let remaining = cycle.repetitions.map(|r| r.saturating_sub(1));
                Ok(Schedule { due_ms, repeat: Some(Repeat { remaining, every: cycle.interval.to_string() }) })
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
    /// An ISO 8601 duration or a cron pattern; see [`next_due`].
    pub every: String,
}

/// When a repeating timer falls due next after `after_ms`: `every` is an ISO
/// 8601 duration (`PT10M`) or a cron pattern.
pub fn next_due(every: &str, after_ms: i64) -> Result<i64, String> {
    if every.starts_with(['P', 'p']) {
        return add(after_ms, parse_duration(every)?);
    }
    let cron = parse_cron(every)?;
    let after = Timestamp::from_millisecond(after_ms).map_err(|e| e.to_string())?.to_zoned(TimeZone::UTC);
    let next = cron.find_next_occurrence(&after, false).map_err(|e| format!("'{every}' has no next occurrence: {e}"))?;
    Ok(next.timestamp().as_millisecond())
}

/// A cron pattern with six fields, seconds first, as Spring and Camunda 8 read it.
pub fn parse_cron(text: &str) -> Result<croner::Cron, String> {
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build();
    parser.parse(&with_start_steps(text.trim())).map_err(|e| {
        format!("'{}' is neither an ISO 8601 repeating interval (R3/PT1H) nor a cron expression with six fields (0 0 9 * * MON-FRI): {e}", text.trim())
    })
}

/// Spring's (and Camunda 8's) `N/step` in a field (`0/5`: from 0, every 5)
/// written as the range croner takes (`0-59/5`); each field's own maximum.
fn with_start_steps(text: &str) -> String {
    const MAXIMA: [&str; 6] = ["59", "59", "23", "31", "12", "7"];
    text.split_whitespace()
        .enumerate()
        .map(|(i, field)| match field.split_once('/') {
            Some((start, step)) if !start.is_empty() && start.bytes().all(|b| b.is_ascii_digit()) && i < MAXIMA.len() => {
                format!("{start}-{}/{step}", MAXIMA[i])
            }
            _ => field.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
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
    if add(0, interval).map_or(true, |ms| ms < MIN_CYCLE_MS) {
        return Err(format!("the interval of '{text}' is shorter than one second, the shortest cycle Baton runs"));
    }
    Ok(Cycle { repetitions, start, interval })
}

/// The shortest interval of a repeating timer: a cycle of a millisecond
/// would fire a thousand times a second for ever.
pub const MIN_CYCLE_MS: i64 = 1_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_shorter_than_a_second_is_refused() {
        assert!(parse_cycle("R/PT0.001S").unwrap_err().contains("shorter than one second"));
        assert!(parse_cycle("R5/PT0.5S").is_err());
        assert!(parse_cycle("R/PT0S").is_err());
        assert!(parse_cycle("R/PT1S").is_ok());
    }

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

    #[test]
    fn cron_cycles_fall_due_at_their_next_occurrence() {
        let monday_8am = parse_date("2026-11-23T08:00:00Z").unwrap().as_millisecond();
        let next = next_due("0 0 9 * * MON-FRI", monday_8am).unwrap();
        assert_eq!(Timestamp::from_millisecond(next).unwrap().to_string(), "2026-11-23T09:00:00Z");
        let friday_10am = parse_date("2026-11-27T10:00:00Z").unwrap().as_millisecond();
        let next = next_due("0 0 9 * * MON-FRI", friday_10am).unwrap();
        assert_eq!(Timestamp::from_millisecond(next).unwrap().to_string(), "2026-11-30T09:00:00Z");
        assert!(parse_cron("0 9 * * *").is_err(), "five fields lack the seconds Camunda 8 requires");
        assert!(parse_cron("every day").is_err());
        // `0/5` as Spring writes it: from second 0, every 5 seconds.
        let next = next_due("0/5 * * * * ?", monday_8am + 1_000).unwrap();
        assert_eq!(next - monday_8am, 5_000);
        let cycle = TimerDefinition::Cycle(Property::Literal("0 */15 * * * *".into()));
        let schedule = cycle.schedule("0 */15 * * * *", 0).unwrap();
        assert_eq!(schedule.due_ms, 15 * 60_000);
        assert_eq!(next_due(&schedule.repeat.unwrap().every, schedule.due_ms), Ok(30 * 60_000));
    }
}
