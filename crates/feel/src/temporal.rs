//! FEEL's dates and times: date and time and time values that are local,
//! at an offset, or in a named zone (`@Europe/Paris`, from the time zone
//! database compiled into Baton, so evaluation stays pure), and the two kinds
//! of duration, days and time (kept as nanoseconds) and years and months
//! (kept as months), so `P1D = PT24H` and `P14M = P1Y2M`.

use std::cmp::Ordering;
use std::fmt;

use jiff::civil;
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};

const NANOS_PER_SECOND: i128 = 1_000_000_000;
const NANOS_PER_DAY: i128 = 86_400 * NANOS_PER_SECOND;

/// Where a date and time or a time is: nowhere in particular, at an offset from UTC, or in a named zone.
#[derive(Clone, Debug)]
pub enum Zone {
    Local,
    Offset(Offset),
    Named(TimeZone, String),
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        match (self, other) {
            (Zone::Local, Zone::Local) => true,
            (Zone::Offset(a), Zone::Offset(b)) => a == b,
            (Zone::Named(_, a), Zone::Named(_, b)) => a == b,
            _ => false,
        }
    }
}

impl Zone {
    /// `Z`, `+01:00`, `@Europe/Paris`, or `[Europe/Paris]`, at the end of a text; with the text before it.
    fn split(text: &str) -> Option<(&str, Zone)> {
        if let Some((before, name)) = text.split_once('@') {
            let zone = TimeZone::get(name).ok()?;
            return Some((before, Zone::Named(zone, name.to_string())));
        }
        if let Some(before) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) {
            return Some((before, Zone::Offset(Offset::UTC)));
        }
        // An offset: the last '+' or '-' after the time's start.
        let time_start = text.find('T').map_or(0, |t| t + 1);
        if let Some(at) = text[time_start..].rfind(['+', '-']).map(|i| i + time_start) {
            if time_start > 0 || at > 0 {
                let (before, offset) = text.split_at(at);
                let sign = if offset.starts_with('-') { -1 } else { 1 };
                // `+HH:MM`, or `+HH:MM:SS`: two digits each.
                let parts: Vec<&str> = offset[1..].split(':').collect();
                if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit())) {
                    return None;
                }
                let number = |i: usize| parts.get(i).map_or(Some(0), |p| p.parse::<i32>().ok());
                let (hours, minutes, seconds) = (number(0)?, number(1)?, number(2)?);
                if hours > 18 || minutes > 59 || seconds > 59 {
                    return None;
                }
                let offset = Offset::from_seconds(sign * (hours * 3600 + minutes * 60 + seconds)).ok()?;
                return Some((before, Zone::Offset(offset)));
            }
        }
        Some((text, Zone::Local))
    }

    fn suffix(&self) -> String {
        match self {
            Zone::Local => String::new(),
            Zone::Offset(offset) if offset.seconds() == 0 => "Z".into(),
            Zone::Offset(offset) => {
                let seconds = offset.seconds();
                let sign = if seconds < 0 { '-' } else { '+' };
                let seconds = seconds.abs();
                match seconds % 60 {
                    0 => format!("{sign}{:02}:{:02}", seconds / 3600, seconds % 3600 / 60),
                    rest => format!("{sign}{:02}:{:02}:{rest:02}", seconds / 3600, seconds % 3600 / 60),
                }
            }
            Zone::Named(_, name) => format!("@{name}"),
        }
    }
}

fn write_year(f: &mut fmt::Formatter<'_>, year: i16) -> fmt::Result {
    if year < 0 {
        write!(f, "-{:04}", -i32::from(year))
    } else {
        write!(f, "{year:04}")
    }
}

fn write_time(f: &mut fmt::Formatter<'_>, time: civil::Time) -> fmt::Result {
    write!(f, "{:02}:{:02}:{:02}", time.hour(), time.minute(), time.second())?;
    let nanos = time.subsec_nanosecond();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        write!(f, ".{}", fraction.trim_end_matches('0'))?;
    }
    Ok(())
}

/// A date as FEEL prints it (a year before 1 with a minus and at least four digits).
pub struct DateText(pub civil::Date);

impl fmt::Display for DateText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_year(f, self.0.year())?;
        write!(f, "-{:02}-{:02}", self.0.month(), self.0.day())
    }
}

/// Reads `YYYY-MM-DD`, with a year of more digits or a minus as FEEL allows.
pub fn parse_date(text: &str) -> Option<civil::Date> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut parts = rest.splitn(3, '-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    // A year of more than four digits does not start with a zero (`01211` is no year).
    if year.len() < 4 || (year.len() > 4 && year.starts_with('0')) || month.len() != 2 || day.len() != 2 || !year.bytes().chain(month.bytes()).chain(day.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i16 = year.parse().ok()?;
    let year = if negative { -year } else { year };
    civil::Date::new(year, month.parse().ok()?, day.parse().ok()?).ok()
}

/// Reads `HH:MM:SS[.fraction]`.
fn parse_civil_time(text: &str) -> Option<civil::Time> {
    let mut parts = text.splitn(3, ':');
    let (hour, minute, second) = (parts.next()?, parts.next()?, parts.next()?);
    if hour.len() != 2 || minute.len() != 2 || second.len() < 2 {
        return None;
    }
    let (whole, fraction) = second.split_once('.').unwrap_or((second, ""));
    if whole.len() != 2 || !fraction.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 9 {
        return None;
    }
    let nanos: i32 = if fraction.is_empty() { 0 } else { format!("{fraction:0<9}").parse().ok()? };
    let (hour, minute, second): (i8, i8, i8) = (hour.parse().ok()?, minute.parse().ok()?, whole.parse().ok()?);
    // 24:00:00 is the end of the day, which FEEL reads as midnight.
    if hour == 24 && minute == 0 && second == 0 && nanos == 0 {
        return Some(civil::Time::midnight());
    }
    civil::Time::new(hour, minute, second, nanos).ok()
}

/// A FEEL date and time.
#[derive(Clone, Debug, PartialEq)]
pub struct DateTime {
    pub civil: civil::DateTime,
    pub zone: Zone,
}

impl DateTime {
    /// `2026-01-01T10:00:00`, with `Z`, an offset or `@Zone/Name`; a date alone is its midnight.
    pub fn parse(text: &str) -> Option<DateTime> {
        let text = text.trim();
        let Some((date, time)) = text.split_once('T') else {
            return Some(DateTime { civil: parse_date(text)?.to_datetime(civil::Time::midnight()), zone: Zone::Local });
        };
        let (time, zone) = Zone::split(time)?;
        let date = parse_date(date)?;
        // 24:00:00 ends the day: it is the next day's midnight.
        let date = if time.starts_with("24:") { date.tomorrow().ok()? } else { date };
        Some(DateTime { civil: date.to_datetime(parse_civil_time(time)?), zone })
    }

    pub fn from_timestamp(timestamp: Timestamp) -> DateTime {
        DateTime { civil: timestamp.to_zoned(TimeZone::UTC).datetime(), zone: Zone::Offset(Offset::UTC) }
    }

    /// The instant it names; `None` when it is local.
    pub fn instant(&self) -> Option<Timestamp> {
        match &self.zone {
            Zone::Local => None,
            Zone::Offset(offset) => offset.to_timestamp(self.civil).ok(),
            Zone::Named(zone, _) => self.civil.to_zoned(zone.clone()).ok().map(|z| z.timestamp()),
        }
    }

    /// Its offset from UTC (a named zone's at that moment).
    pub fn offset(&self) -> Option<Offset> {
        match &self.zone {
            Zone::Local => None,
            Zone::Offset(offset) => Some(*offset),
            Zone::Named(zone, _) => Some(zone.to_offset(self.instant()?)),
        }
    }

    /// Moves by an exact amount of time (in a named zone, across its changes of offset).
    pub fn add_nanos(&self, nanos: i128) -> Option<DateTime> {
        let duration = SignedDuration::from_nanos_i128(nanos);
        match &self.zone {
            Zone::Named(zone, _) => {
                let moved = self.civil.to_zoned(zone.clone()).ok()?.checked_add(duration).ok()?;
                Some(DateTime { civil: moved.datetime(), zone: self.zone.clone() })
            }
            _ => Some(DateTime { civil: self.civil.checked_add(duration).ok()?, zone: self.zone.clone() }),
        }
    }

    /// Moves by whole months; a day past the month's end becomes its last day.
    pub fn add_months(&self, months: i64) -> Option<DateTime> {
        let date = add_months(self.civil.date(), months)?;
        Some(DateTime { civil: date.to_datetime(self.civil.time()), zone: self.zone.clone() })
    }

    /// The days and time from `other` to `self`; `None` when one is local and the other is not.
    pub fn since(&self, other: &DateTime) -> Option<i128> {
        match (self.instant(), other.instant()) {
            (Some(a), Some(b)) => Some(a.as_nanosecond() - b.as_nanosecond()),
            (None, None) => Some(civil_nanos(self.civil) - civil_nanos(other.civil)),
            _ => None,
        }
    }

    pub fn compare(&self, other: &DateTime) -> Option<Ordering> {
        self.since(other).map(|d| d.cmp(&0))
    }
}

fn civil_nanos(civil: civil::DateTime) -> i128 {
    let date = civil.date();
    let days = i128::from(date.since(civil::date(1970, 1, 1)).map(|s| s.get_days()).unwrap_or(0));
    days * NANOS_PER_DAY + i128::from(civil.time().to_duration_since_midnight_nanos())
}

trait MidnightNanos {
    fn to_duration_since_midnight_nanos(self) -> i64;
}

impl MidnightNanos for civil::Time {
    fn to_duration_since_midnight_nanos(self) -> i64 {
        (i64::from(self.hour()) * 3600 + i64::from(self.minute()) * 60 + i64::from(self.second())) * 1_000_000_000 + i64::from(self.subsec_nanosecond())
    }
}

/// Adds months to a date; a day past the new month's end becomes its last day.
pub fn add_months(date: civil::Date, months: i64) -> Option<civil::Date> {
    let total = i64::from(date.year()) * 12 + i64::from(date.month() - 1) + months;
    let year = i16::try_from(total.div_euclid(12)).ok()?;
    let month = i8::try_from(total.rem_euclid(12) + 1).ok()?;
    let first = civil::Date::new(year, month, 1).ok()?;
    let day = date.day().min(first.last_of_month().day());
    civil::Date::new(year, month, day).ok()
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}T", DateText(self.civil.date()))?;
        write_time(f, self.civil.time())?;
        f.write_str(&self.zone.suffix())
    }
}

/// A FEEL time of day.
#[derive(Clone, Debug, PartialEq)]
pub struct Time {
    pub civil: civil::Time,
    pub zone: Zone,
}

impl Time {
    pub fn parse(text: &str) -> Option<Time> {
        let (time, zone) = Zone::split(text.trim())?;
        Some(Time { civil: parse_civil_time(time)?, zone })
    }

    fn offset_seconds(&self) -> Option<i64> {
        match &self.zone {
            Zone::Offset(offset) => Some(i64::from(offset.seconds())),
            _ => None,
        }
    }

    /// Nanoseconds since midnight, at UTC when it has an offset.
    fn nanos(&self) -> i128 {
        let local = i128::from(self.civil.to_duration_since_midnight_nanos());
        local - i128::from(self.offset_seconds().unwrap_or(0)) * NANOS_PER_SECOND
    }

    /// Moves around the clock (24 hours later is the same time).
    pub fn add_nanos(&self, nanos: i128) -> Option<Time> {
        let local = i128::from(self.civil.to_duration_since_midnight_nanos());
        let moved = (local + nanos).rem_euclid(NANOS_PER_DAY);
        let civil = civil::Time::midnight().checked_add(SignedDuration::from_nanos_i128(moved)).ok()?;
        Some(Time { civil, zone: self.zone.clone() })
    }

    pub fn since(&self, other: &Time) -> Option<i128> {
        match (&self.zone, &other.zone) {
            (Zone::Named(..), _) | (_, Zone::Named(..)) if self.zone != other.zone => None,
            (Zone::Local, Zone::Offset(_)) | (Zone::Offset(_), Zone::Local) => None,
            _ => Some(self.nanos() - other.nanos()),
        }
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_time(f, self.civil)?;
        f.write_str(&self.zone.suffix())
    }
}

/// FEEL's two kinds of duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duration {
    /// Days, hours, minutes and seconds, as nanoseconds.
    DaysTime(i128),
    /// Years and months, as months.
    YearsMonths(i64),
}

impl Duration {
    /// ISO 8601: `P1Y2M` (years and months), `P1DT2H3M4.5S` or `PT1H` (days and time), a leading `-` for negative.
    pub fn parse(text: &str) -> Option<Duration> {
        let text = text.trim();
        let (sign, rest) = match text.strip_prefix('-') {
            Some(rest) => (-1, rest),
            None => (1, text.strip_prefix('+').unwrap_or(text)),
        };
        let rest = rest.strip_prefix('P')?;
        if rest.is_empty() {
            return None;
        }
        let (date_part, time_part) = match rest.split_once('T') {
            Some((d, t)) if !t.is_empty() => (d, Some(t)),
            Some(_) => return None,
            None => (rest, None),
        };
        let mut years_months: Option<i64> = None;
        let mut nanos: Option<i128> = None;
        let mut number = String::new();
        for c in date_part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let value: i64 = std::mem::take(&mut number).parse().ok()?;
            match c {
                'Y' => years_months = Some(years_months.unwrap_or(0).checked_add(value.checked_mul(12)?)?),
                'M' => years_months = Some(years_months.unwrap_or(0).checked_add(value)?),
                'W' => nanos = Some(nanos.unwrap_or(0) + i128::from(value) * 7 * NANOS_PER_DAY),
                'D' => nanos = Some(nanos.unwrap_or(0) + i128::from(value) * NANOS_PER_DAY),
                _ => return None,
            }
        }
        if !number.is_empty() {
            return None;
        }
        for c in time_part.unwrap_or("").chars() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
                continue;
            }
            let text = std::mem::take(&mut number);
            let unit: i128 = match c {
                'H' => 3600 * NANOS_PER_SECOND,
                'M' => 60 * NANOS_PER_SECOND,
                'S' => NANOS_PER_SECOND,
                _ => return None,
            };
            let amount = match text.split_once('.') {
                Some((whole, fraction)) if c == 'S' => {
                    let whole: i128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
                    let fraction: i128 = format!("{:0<9}", &fraction[..fraction.len().min(9)]).parse().ok()?;
                    whole * NANOS_PER_SECOND + fraction
                }
                Some(_) => return None,
                None => text.parse::<i128>().ok()? * unit,
            };
            nanos = Some(nanos.unwrap_or(0) + amount);
        }
        if !number.is_empty() {
            return None;
        }
        match (years_months, nanos) {
            (Some(months), None) => Some(Duration::YearsMonths(sign * months)),
            (None, Some(nanos)) => Some(Duration::DaysTime(i128::from(sign) * nanos)),
            // Both kinds at once (P1Y2D) is neither FEEL duration.
            _ => None,
        }
    }

    pub fn negate(self) -> Duration {
        match self {
            Duration::DaysTime(n) => Duration::DaysTime(-n),
            Duration::YearsMonths(m) => Duration::YearsMonths(-m),
        }
    }

    pub fn abs(self) -> Duration {
        match self {
            Duration::DaysTime(n) => Duration::DaysTime(n.abs()),
            Duration::YearsMonths(m) => Duration::YearsMonths(m.abs()),
        }
    }

    pub fn compare(&self, other: &Duration) -> Option<Ordering> {
        match (self, other) {
            (Duration::DaysTime(a), Duration::DaysTime(b)) => Some(a.cmp(b)),
            (Duration::YearsMonths(a), Duration::YearsMonths(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Duration::YearsMonths(months) => {
                let sign = if months < 0 { "-" } else { "" };
                let (years, months) = (months.abs() / 12, months.abs() % 12);
                match (years, months) {
                    (0, m) => write!(f, "{sign}P{m}M"),
                    (y, 0) => write!(f, "{sign}P{y}Y"),
                    (y, m) => write!(f, "{sign}P{y}Y{m}M"),
                }
            }
            Duration::DaysTime(nanos) => {
                if nanos == 0 {
                    return f.write_str("PT0S");
                }
                let sign = if nanos < 0 { "-" } else { "" };
                let n = nanos.abs();
                let days = n / NANOS_PER_DAY;
                let rest = n % NANOS_PER_DAY;
                let (hours, minutes) = (rest / (3600 * NANOS_PER_SECOND), rest % (3600 * NANOS_PER_SECOND) / (60 * NANOS_PER_SECOND));
                let seconds = rest % (60 * NANOS_PER_SECOND);
                write!(f, "{sign}P")?;
                if days > 0 {
                    write!(f, "{days}D")?;
                }
                if rest > 0 {
                    f.write_str("T")?;
                    if hours > 0 {
                        write!(f, "{hours}H")?;
                    }
                    if minutes > 0 {
                        write!(f, "{minutes}M")?;
                    }
                    if seconds > 0 {
                        let (whole, fraction) = (seconds / NANOS_PER_SECOND, seconds % NANOS_PER_SECOND);
                        if fraction == 0 {
                            write!(f, "{whole}S")?;
                        } else {
                            write!(f, "{whole}.{}S", format!("{fraction:09}").trim_end_matches('0'))?;
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// The nanoseconds of a days-and-time duration as parts a property names.
pub fn duration_part(nanos: i128, part: &str) -> Option<i128> {
    let sign = nanos.signum();
    let n = nanos.abs();
    Some(
        sign * match part {
            "days" => n / NANOS_PER_DAY,
            "hours" => n % NANOS_PER_DAY / (3600 * NANOS_PER_SECOND),
            "minutes" => n % (3600 * NANOS_PER_SECOND) / (60 * NANOS_PER_SECOND),
            "seconds" => n % (60 * NANOS_PER_SECOND) / NANOS_PER_SECOND,
            _ => return None,
        },
    )
}

pub const SECOND: i128 = NANOS_PER_SECOND;
pub const DAY: i128 = NANOS_PER_DAY;
