//! Offices, their time zones and working hours.
//!
//! The daylight-saving rules of the few zones the organisation works in are written out here
//! (US, EU and New South Wales rules in force since 2007/1996/2008), which keeps the dependency
//! list short and the output independent of the tz database a machine has.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};

use super::random::Rand;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dst {
    None,
    Us,
    Eu,
    Au,
}

/// An office: its IANA zone, where it is, and its network.
#[derive(Debug)]
pub struct Zone {
    pub name: &'static str,
    std_minutes: i32,
    dst: Dst,
    pub city: &'static str,
    pub state: &'static str,
    pub country: &'static str,
    pub postal: &'static str,
    pub lat: f64,
    pub lon: f64,
    /// The office's egress network (documentation ranges only).
    pub net: &'static str,
    pub as_number: u32,
    pub as_org: &'static str,
    pub isp: &'static str,
    pub domain: &'static str,
    /// Share of the organisation working from this office.
    pub weight: f64,
}

macro_rules! zone {
    ($name:expr, $std:expr, $dst:expr, $city:expr, $state:expr, $country:expr, $postal:expr, $lat:expr, $lon:expr, $net:expr, $asn:expr, $asorg:expr, $isp:expr, $dom:expr, $w:expr) => {
        Zone {
            name: $name,
            std_minutes: $std,
            dst: $dst,
            city: $city,
            state: $state,
            country: $country,
            postal: $postal,
            lat: $lat,
            lon: $lon,
            net: $net,
            as_number: $asn,
            as_org: $asorg,
            isp: $isp,
            domain: $dom,
            weight: $w,
        }
    };
}

pub static ZONES: &[Zone] = &[
    zone!(
        "America/New_York",
        -300,
        Dst::Us,
        "New York",
        "New York",
        "United States",
        "10013",
        40.7209,
        -74.0007,
        "198.51.100.",
        701,
        "verizon business",
        "verizon business",
        "verizon.net",
        30.0
    ),
    zone!(
        "America/Chicago",
        -360,
        Dst::Us,
        "Chicago",
        "Illinois",
        "United States",
        "60606",
        41.8825,
        -87.6376,
        "198.51.100.",
        7018,
        "at&t services",
        "at&t",
        "att.net",
        9.0
    ),
    zone!(
        "America/Los_Angeles",
        -480,
        Dst::Us,
        "San Francisco",
        "California",
        "United States",
        "94105",
        37.7898,
        -122.3942,
        "192.0.2.",
        20001,
        "charter communications",
        "spectrum",
        "rr.com",
        20.0
    ),
    zone!(
        "America/Sao_Paulo",
        -180,
        Dst::None,
        "Sao Paulo",
        "Sao Paulo",
        "Brazil",
        "01310",
        -23.5613,
        -46.6565,
        "192.0.2.",
        28573,
        "claro nxt",
        "claro",
        "claro.com.br",
        3.0
    ),
    zone!(
        "Europe/London",
        0,
        Dst::Eu,
        "London",
        "England",
        "United Kingdom",
        "EC2A",
        51.5226,
        -0.0853,
        "203.0.113.",
        5089,
        "virgin media",
        "virgin media",
        "virginm.net",
        10.0
    ),
    zone!(
        "Europe/Berlin",
        60,
        Dst::Eu,
        "Berlin",
        "Land Berlin",
        "Germany",
        "10117",
        52.5170,
        13.3889,
        "203.0.113.",
        3320,
        "deutsche telekom ag",
        "deutsche telekom ag",
        "t-ipconnect.de",
        12.0
    ),
    zone!(
        "Asia/Kolkata",
        330,
        Dst::None,
        "Bengaluru",
        "Karnataka",
        "India",
        "560001",
        12.9716,
        77.5946,
        "203.0.113.",
        24560,
        "bharti airtel",
        "airtel",
        "airtelbroadband.in",
        8.0
    ),
    zone!(
        "Asia/Singapore",
        480,
        Dst::None,
        "Singapore",
        "Singapore",
        "Singapore",
        "018989",
        1.2789,
        103.8536,
        "192.0.2.",
        9506,
        "singtel fibre",
        "singtel",
        "singnet.com.sg",
        4.0
    ),
    zone!(
        "Australia/Sydney",
        600,
        Dst::Au,
        "Sydney",
        "New South Wales",
        "Australia",
        "2000",
        -33.8688,
        151.2093,
        "198.51.100.",
        1221,
        "telstra",
        "telstra",
        "bigpond.net.au",
        4.0
    ),
];

fn nth_sunday(year: i32, month: u32, n: u32) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(year, month, 1).expect("valid month");
    let to_sunday = (7 - first.weekday().num_days_from_sunday()) % 7;
    first + Duration::days(i64::from(to_sunday + 7 * (n - 1)))
}

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
    .expect("valid month");
    let last = next - Duration::days(1);
    last - Duration::days(i64::from(last.weekday().num_days_from_sunday()))
}

fn utc_at(day: NaiveDate, hour: u32, minus_minutes: i32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(hour, 0, 0).expect("valid hour"))
        - Duration::minutes(i64::from(minus_minutes))
}

impl Zone {
    /// UTC offset in minutes at an instant.
    pub fn offset_at(&self, t: DateTime<Utc>) -> i32 {
        let y = t.year();
        let dst = match self.dst {
            Dst::None => false,
            Dst::Us => {
                let start = utc_at(nth_sunday(y, 3, 2), 2, self.std_minutes);
                let end = utc_at(nth_sunday(y, 11, 1), 2, self.std_minutes + 60);
                t >= start && t < end
            }
            Dst::Eu => {
                let start = utc_at(last_sunday(y, 3), 1, 0);
                let end = utc_at(last_sunday(y, 10), 1, 0);
                t >= start && t < end
            }
            Dst::Au => {
                let end = utc_at(nth_sunday(y, 4, 1), 3, self.std_minutes + 60);
                let start = utc_at(nth_sunday(y, 10, 1), 2, self.std_minutes);
                t < end || t >= start
            }
        };
        self.std_minutes + if dst { 60 } else { 0 }
    }

    /// The instant of a local wall-clock time (seconds after local midnight of `day`).
    pub fn local_to_utc(&self, day: NaiveDate, seconds: i64) -> DateTime<Utc> {
        let naive = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight"))
            + Duration::seconds(seconds);
        let guess = naive - Duration::minutes(i64::from(self.std_minutes));
        naive - Duration::minutes(i64::from(self.offset_at(guess)))
    }

    /// The local calendar day of an instant.
    #[cfg(test)]
    pub fn local_day(&self, t: DateTime<Utc>) -> NaiveDate {
        (t + Duration::minutes(i64::from(self.offset_at(t)))).date_naive()
    }

    /// Local hour (fractional) of an instant.
    #[cfg(test)]
    pub fn local_hour(&self, t: DateTime<Utc>) -> f64 {
        let l = t + Duration::minutes(i64::from(self.offset_at(t)));
        let s = l.timestamp().rem_euclid(86_400);
        s as f64 / 3600.0
    }
}

pub fn is_weekend(day: NaiveDate) -> bool {
    matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// How one person works: when their day usually starts and how long it is.
#[derive(Debug, Clone, Copy)]
pub struct Hours {
    pub start: f64,
    pub length: f64,
}

impl Hours {
    pub fn draw(rng: &mut Rand) -> Hours {
        Hours {
            start: rng.normal(8.6, 0.55).clamp(7.0, 10.5),
            length: rng.normal(8.6, 0.45).clamp(7.5, 10.0),
        }
    }

    /// A local time (hours) at which this person does a piece of routine work: mostly inside
    /// their day, peaking late morning and mid-afternoon, sometimes early or late.
    pub fn draw_time(&self, rng: &mut Rand) -> f64 {
        let x = rng.f();
        let jitter = rng.normal(0.0, 0.25);
        if x < 0.92 {
            // two humps around a lunch dip
            let u = if rng.chance(0.5) {
                rng.normal(0.28, 0.13)
            } else {
                rng.normal(0.70, 0.14)
            };
            self.start + jitter + self.length * u.clamp(0.0, 1.0)
        } else if x < 0.96 {
            self.start - rng.uniform(0.1, 1.4)
        } else {
            (self.start + self.length + rng.uniform(0.0, 2.8)).min(22.5)
        }
    }
}

/// A time during business hours for someone (hours given as local fractional hours).
pub fn at_local(zone: &Zone, day: NaiveDate, hour: f64, rng: &mut Rand) -> DateTime<Utc> {
    let secs = (hour * 3600.0) as i64 + rng.range(0, 60) as i64;
    zone.local_to_utc(day, secs.clamp(0, 86_399))
        + Duration::milliseconds(rng.range(0, 1000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> &'static Zone {
        ZONES.iter().find(|z| z.name == name).unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn daylight_saving_matches_the_tz_database() {
        let ny = zone("America/New_York");
        assert_eq!(ny.offset_at(t("2026-03-08T06:59:00Z")), -300);
        assert_eq!(ny.offset_at(t("2026-03-08T07:00:00Z")), -240);
        assert_eq!(ny.offset_at(t("2026-11-01T05:59:00Z")), -240);
        assert_eq!(ny.offset_at(t("2026-11-01T06:00:00Z")), -300);
        let ber = zone("Europe/Berlin");
        assert_eq!(ber.offset_at(t("2026-03-29T00:59:00Z")), 60);
        assert_eq!(ber.offset_at(t("2026-03-29T01:00:00Z")), 120);
        assert_eq!(ber.offset_at(t("2026-10-25T01:00:00Z")), 60);
        let syd = zone("Australia/Sydney");
        assert_eq!(syd.offset_at(t("2026-04-04T15:59:00Z")), 660);
        assert_eq!(syd.offset_at(t("2026-04-04T16:00:00Z")), 600);
        assert_eq!(syd.offset_at(t("2026-10-03T16:00:00Z")), 660);
        assert_eq!(
            zone("Asia/Kolkata").offset_at(t("2026-06-01T00:00:00Z")),
            330
        );
    }

    #[test]
    fn local_times_round_trip() {
        let la = zone("America/Los_Angeles");
        let day = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
        let u = la.local_to_utc(day, 9 * 3600);
        assert_eq!(u, t("2026-07-01T16:00:00Z"));
        assert_eq!(la.local_day(u), day);
        assert!((la.local_hour(u) - 9.0).abs() < 1e-9);
    }
}
