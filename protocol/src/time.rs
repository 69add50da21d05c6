//! Points in time and calendar dates, as the state machines need them.
//!
//! A [`Timestamp`] is the moment a transition was made (milliseconds since the
//! Unix epoch, UTC); it travels in the envelope, so both nodes decide with the
//! same clock reading. A [`Date`] is a day of the Gregorian calendar, used for
//! reply-by dates and deadlines. Both are plain values: reading the system
//! clock is left to the node.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

const MS_PER_DAY: u64 = 86_400_000;

/// A moment in time: milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The moment `ms` milliseconds after the Unix epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The moment a system clock reading stands for; readings before 1970
    /// count as the epoch.
    pub fn from_system_time(time: SystemTime) -> Self {
        let ms = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis());
        Self(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// The UTC calendar day this moment falls on. Moments after the last day
    /// of year 9999 count as that day.
    pub fn date(self) -> Date {
        let days = self.0 / MS_PER_DAY;
        i64::try_from(days)
            .ok()
            .and_then(Date::from_days_since_epoch)
            .unwrap_or(Date::MAX)
    }

    /// The moment `days` whole days later, saturating at the end of time.
    pub const fn plus_days(self, days: u64) -> Self {
        Self(self.0.saturating_add(days.saturating_mul(MS_PER_DAY)))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with milliseconds: `2026-11-02T09:30:00.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms_of_day = self.0 % MS_PER_DAY;
        let (hours, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
        let (minutes, rest) = (rest / 60_000, rest % 60_000);
        let (seconds, millis) = (rest / 1000, rest % 1000);
        write!(
            f,
            "{}T{hours:02}:{minutes:02}:{seconds:02}.{millis:03}Z",
            self.date()
        )
    }
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Weekday {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

impl Weekday {
    /// Whether the day is a Saturday or a Sunday.
    pub const fn is_weekend(self) -> bool {
        matches!(self, Weekday::Saturday | Weekday::Sunday)
    }
}

/// A day of the Gregorian calendar between 1970-01-01 and 9999-12-31, written
/// and serialized as `YYYY-MM-DD`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Date {
    // Field order matters: the derived ordering is chronological.
    year: u16,
    month: u8,
    day: u8,
}

/// A date that does not exist or lies outside 1970-01-01..=9999-12-31.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDate {
    /// The text is not of the form `YYYY-MM-DD`.
    #[error("invalid date {input:?}: write it as YYYY-MM-DD, for example 2026-11-02")]
    Syntax {
        /// The text as given (cut to 32 characters).
        input: String,
    },
    /// The year, month and day do not name a day of the supported calendar.
    #[error("{year:04}-{month:02}-{day:02} is not a date between 1970-01-01 and 9999-12-31")]
    OutOfRange {
        /// The year as given.
        year: u32,
        /// The month as given.
        month: u32,
        /// The day as given.
        day: u32,
    },
}

impl Date {
    /// The first supported day, 1970-01-01.
    pub const MIN: Date = Date {
        year: 1970,
        month: 1,
        day: 1,
    };

    /// The last supported day, 9999-12-31.
    pub const MAX: Date = Date {
        year: 9999,
        month: 12,
        day: 31,
    };

    /// The day `year-month-day`, if it exists and is supported.
    pub fn new(year: u32, month: u32, day: u32) -> Result<Self, InvalidDate> {
        let out_of_range = InvalidDate::OutOfRange { year, month, day };
        if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || day == 0 {
            return Err(out_of_range);
        }
        if day > days_in_month(year, month) {
            return Err(out_of_range);
        }
        // The range checks above make these conversions lossless.
        match (u16::try_from(year), u8::try_from(month), u8::try_from(day)) {
            (Ok(year), Ok(month), Ok(day)) => Ok(Self { year, month, day }),
            _ => Err(out_of_range),
        }
    }

    /// The year (1970-9999).
    pub const fn year(self) -> u32 {
        self.year as u32
    }

    /// The month (1-12).
    pub const fn month(self) -> u32 {
        self.month as u32
    }

    /// The day of the month (1-31).
    pub const fn day(self) -> u32 {
        self.day as u32
    }

    /// Days since 1970-01-01 (which is day 0).
    pub fn days_since_epoch(self) -> i64 {
        days_from_civil(self.year(), self.month(), self.day())
    }

    /// The day `days` days after 1970-01-01, if supported.
    pub fn from_days_since_epoch(days: i64) -> Option<Self> {
        if !(0..=Self::MAX.days_since_epoch()).contains(&days) {
            return None;
        }
        let (year, month, day) = civil_from_days(days);
        Self::new(year, month, day).ok()
    }

    /// The first moment of the day, UTC.
    pub fn start(self) -> Timestamp {
        // days_since_epoch() is within 0..=2_932_896, so the product fits.
        Timestamp(self.days_since_epoch().unsigned_abs() * MS_PER_DAY)
    }

    /// The day `days` days later (earlier if negative), if supported.
    pub fn checked_add_days(self, days: i64) -> Option<Self> {
        self.days_since_epoch()
            .checked_add(days)
            .and_then(Self::from_days_since_epoch)
    }

    /// The number of days from `self` to `later` (negative if `later` is
    /// earlier).
    pub fn days_until(self, later: Date) -> i64 {
        later.days_since_epoch() - self.days_since_epoch()
    }

    /// The day of the week.
    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday.
        match self.days_since_epoch().rem_euclid(7) {
            0 => Weekday::Thursday,
            1 => Weekday::Friday,
            2 => Weekday::Saturday,
            3 => Weekday::Sunday,
            4 => Weekday::Monday,
            5 => Weekday::Tuesday,
            _ => Weekday::Wednesday,
        }
    }

    /// The day `working_days` working days (Monday to Friday) after `self`,
    /// as legal deadlines count them (posting of workers: 2 working days for
    /// urgent requests, 25 for others). Public holidays differ per country and
    /// are not taken into account.
    pub fn checked_add_working_days(self, working_days: u32) -> Option<Self> {
        let mut date = self;
        let mut left = working_days;
        while left > 0 {
            date = date.checked_add_days(1)?;
            if !date.weekday().is_weekend() {
                left -= 1;
            }
        }
        Some(date)
    }
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`, for years from 1970 on).
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`] for non-negative day numbers.
fn civil_from_days(days: i64) -> (u32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Callers pass 0..=Date::MAX.days_since_epoch(), so all three fit in u32.
    (
        u32::try_from(year).unwrap_or(u32::MAX),
        u32::try_from(month).unwrap_or(0),
        u32::try_from(day).unwrap_or(0),
    )
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

impl FromStr for Date {
    type Err = InvalidDate;

    /// Parses `YYYY-MM-DD` (exactly four, two and two digits).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || InvalidDate::Syntax {
            input: s.chars().take(32).collect(),
        };
        let bytes = s.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(syntax());
        }
        let number = |range: std::ops::Range<usize>| -> Result<u32, InvalidDate> {
            let part = &s[range];
            if part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse().map_err(|_| syntax())
            } else {
                Err(syntax())
            }
        };
        Self::new(number(0..4)?, number(5..7)?, number(8..10)?)
    }
}

impl TryFrom<String> for Date {
    type Error = InvalidDate;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Date> for String {
    fn from(date: Date) -> Self {
        date.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn known_days_have_known_numbers_and_weekdays() {
        assert_eq!(Date::MIN.days_since_epoch(), 0);
        assert_eq!(Date::MIN.weekday(), Weekday::Thursday);
        assert_eq!(date("2000-03-01").days_since_epoch(), 11_017);
        assert_eq!(date("2026-11-02").weekday(), Weekday::Monday);
        assert_eq!(date("2024-02-29").weekday(), Weekday::Thursday);
        assert_eq!(
            Date::from_days_since_epoch(Date::MAX.days_since_epoch()),
            Some(Date::MAX)
        );
        assert_eq!(
            Date::from_days_since_epoch(Date::MAX.days_since_epoch() + 1),
            None
        );
        assert_eq!(Date::from_days_since_epoch(-1), None);
    }

    #[test]
    fn impossible_dates_are_refused_with_the_reason() {
        for bad in [
            "2025-02-29",
            "1900-02-29",
            "2026-13-01",
            "2026-04-31",
            "1969-12-31",
        ] {
            let err = bad.parse::<Date>().unwrap_err();
            assert!(
                matches!(err, InvalidDate::OutOfRange { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains(bad), "{err}");
        }
        assert_eq!(date("2000-02-29").day(), 29);
        for bad in [
            "2026-1-02",
            "2026/11/02",
            "+026-11-02",
            "2026-11-0x",
            "",
            "２０２６-11-02",
        ] {
            let err = bad.parse::<Date>().unwrap_err();
            assert!(matches!(err, InvalidDate::Syntax { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn day_arithmetic_crosses_months_years_and_leap_days() {
        assert_eq!(
            date("2024-02-28").checked_add_days(1),
            Some(date("2024-02-29"))
        );
        assert_eq!(
            date("2025-12-31").checked_add_days(1),
            Some(date("2026-01-01"))
        );
        assert_eq!(
            date("2026-03-01").checked_add_days(-1),
            Some(date("2026-02-28"))
        );
        assert_eq!(date("2026-11-02").days_until(date("2026-12-02")), 30);
        assert_eq!(date("2026-12-02").days_until(date("2026-11-02")), -30);
        assert_eq!(Date::MAX.checked_add_days(1), None);
        assert_eq!(Date::MIN.checked_add_days(-1), None);
    }

    #[test]
    fn working_days_skip_weekends() {
        // Friday 2026-11-06 + 2 working days = Tuesday 2026-11-10.
        assert_eq!(
            date("2026-11-06").checked_add_working_days(2),
            Some(date("2026-11-10"))
        );
        // A Saturday + 1 working day = Monday.
        assert_eq!(
            date("2026-11-07").checked_add_working_days(1),
            Some(date("2026-11-09"))
        );
        // 25 working days are 5 weeks.
        assert_eq!(
            date("2026-11-02").checked_add_working_days(25),
            Some(date("2026-12-07"))
        );
        assert_eq!(
            date("2026-11-02").checked_add_working_days(0),
            Some(date("2026-11-02"))
        );
    }

    #[test]
    fn timestamps_fall_on_utc_days_and_print_as_rfc3339() {
        let t = Timestamp::from_millis(1_793_611_800_123);
        assert_eq!(t.to_string(), "2026-11-02T09:30:00.123Z");
        assert_eq!(t.date(), date("2026-11-02"));
        assert_eq!(date("2026-11-02").start().date(), date("2026-11-02"));
        assert_eq!(
            Timestamp::from_millis(date("2026-11-03").start().as_millis() - 1).date(),
            date("2026-11-02")
        );
        assert_eq!(Timestamp::from_millis(u64::MAX).date(), Date::MAX);
        assert_eq!(t.plus_days(1).date(), date("2026-11-03"));
        assert_eq!(
            Timestamp::from_system_time(UNIX_EPOCH + std::time::Duration::from_millis(42)),
            Timestamp::from_millis(42)
        );
    }

    proptest! {
        #[test]
        fn day_numbers_and_dates_round_trip(days in 0i64..=2_932_896) {
            let date = Date::from_days_since_epoch(days).unwrap();
            prop_assert_eq!(date.days_since_epoch(), days);
            prop_assert_eq!(date.to_string().parse::<Date>().unwrap(), date);
            prop_assert_eq!(date.start().date(), date);
            if let Some(next) = date.checked_add_days(1) {
                prop_assert!(next > date);
                prop_assert_eq!(date.days_until(next), 1);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,12}") {
            let _ = text.parse::<Date>();
        }
    }
}
