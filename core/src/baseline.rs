//! Rolling baselines: exponentially decayed counters per scope.
//!
//! A scope is "what this actor does", "what the actor's team/department does", "what is granted to
//! a team/department" or "the whole tenant". Each holds decayed counts (half-life configurable,
//! 30 days by default) referred to `t_ref`; adding an observation at `t` first decays the scope to
//! `t`. Raw counts are kept beside the decayed ones so reasons can quote plain numbers. The online
//! update and the scheduled rebaseline use the same [`Baseline::observe`], so both agree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::Privilege;

/// Bins of the hour-of-week histogram (Monday 00:00 local = bin 0).
pub const HOURS_PER_WEEK: usize = 168;

/// One line of `provguard baselines export`: a scope's baseline with its counters referred to
/// `at` (Unix seconds, also its `t_ref` unless it was last touched later).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exported {
    pub scope: String,
    pub at: i64,
    pub baseline: Baseline,
}

/// The baselines whose scope key starts with `prefix`, sorted by scope key, each
/// decayed to `at`, or else to the newest reference time among them: two states that learned the
/// same events export the same lines, whenever each last touched a scope.
pub fn export(
    all: Vec<(ScopeKey, Baseline)>,
    prefix: Option<&str>,
    at: Option<i64>,
    half_life_days: f64,
) -> Vec<Exported> {
    let mut chosen: Vec<(ScopeKey, Baseline)> = all
        .into_iter()
        .filter(|(k, _)| prefix.is_none_or(|p| k.as_str().starts_with(p)))
        .collect();
    chosen.sort_by(|a, b| a.0.cmp(&b.0));
    let at = at.unwrap_or_else(|| chosen.iter().map(|(_, b)| b.t_ref).max().unwrap_or(0));
    chosen
        .into_iter()
        .map(|(k, b)| Exported {
            scope: k.0,
            at,
            baseline: b.at(at, half_life_days),
        })
        .collect()
}

/// A scope's key. Rendered as `tenant|kind|value`; stable, since stores key on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ScopeKey(pub String);

impl ScopeKey {
    pub fn tenant(tenant: &str) -> Self {
        ScopeKey(format!("{tenant}|tenant|"))
    }
    pub fn actor(tenant: &str, actor: &str) -> Self {
        ScopeKey(format!("{tenant}|actor|{actor}"))
    }
    pub fn actor_team(tenant: &str, team: &str) -> Self {
        ScopeKey(format!("{tenant}|actor_team|{}", team.to_lowercase()))
    }
    pub fn actor_department(tenant: &str, dept: &str) -> Self {
        ScopeKey(format!("{tenant}|actor_dept|{}", dept.to_lowercase()))
    }
    pub fn target_team(tenant: &str, team: &str) -> Self {
        ScopeKey(format!("{tenant}|target_team|{}", team.to_lowercase()))
    }
    pub fn target_department(tenant: &str, dept: &str) -> Self {
        ScopeKey(format!("{tenant}|target_dept|{}", dept.to_lowercase()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The tenant part of the key.
    pub fn tenant_id(&self) -> &str {
        self.0.split('|').next().unwrap_or_default()
    }
}

/// Width of a calibration bin, in decades of evidence.
const CALIBRATION_BIN: f64 = 0.05;

/// The empirical distribution of the scoring statistic (decades of combined evidence) over the
/// tenant's benign events, for conformal p-values: the p-value of a new event is the share of
/// benign events with a statistic at least as large, ties broken at random. Under
/// exchangeability that p-value is uniform, so thresholds on it are calibrated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub n: u64,
    /// Events with no finding (statistic 0).
    pub zero: u64,
    /// Bin index (statistic / 0.05) → count, for statistics above 0.
    pub bins: BTreeMap<u32, u64>,
}

impl Calibration {
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn bin(stat: f64) -> u32 {
        (stat / CALIBRATION_BIN).floor().clamp(0.0, 1e6) as u32
    }

    pub fn add(&mut self, stat: f64) {
        self.n += 1;
        if stat <= 0.0 {
            self.zero += 1;
        } else {
            *self.bins.entry(Self::bin(stat)).or_default() += 1;
        }
    }

    /// The conformal p-value of `stat`, with `u` in [0, 1) breaking ties; `None` while fewer
    /// than `min_n` events have been seen. Beyond the largest benign statistic the p-value keeps
    /// falling by a decade per decade of extra evidence, from 1/(n+1).
    pub fn p_value(&self, stat: f64, u: f64, min_n: u64) -> Option<f64> {
        if self.n < min_n {
            return None;
        }
        let denom = (self.n + 1) as f64;
        if stat <= 0.0 {
            let greater = self.n - self.zero;
            return Some((greater as f64 + u * (self.zero as f64 + 1.0)) / denom);
        }
        let b = Self::bin(stat);
        let greater: u64 = self.bins.range(b + 1..).map(|(_, c)| c).sum();
        let equal = self.bins.get(&b).copied().unwrap_or(0);
        if greater == 0 && equal == 0 {
            let top = self
                .bins
                .keys()
                .next_back()
                .map_or(0.0, |&k| (k + 1) as f64 * CALIBRATION_BIN);
            let beyond = (stat - top).max(0.0);
            return Some(0.5 / denom * 10f64.powf(-beyond));
        }
        Some((greater as f64 + u * (equal as f64 + 1.0)) / denom)
    }
}

/// Counts of events per active window of `burst_window_minutes` (raw, not decayed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bursts {
    /// Start of the window being filled (unix seconds).
    pub start: i64,
    /// Events in it so far.
    pub count: u32,
    /// Windows with at least one event, the open one included.
    pub windows: u64,
    /// Most events ever seen in one window.
    pub peak: u32,
    /// Most events in one window closed before the open one (`None` in baselines written
    /// before it was kept, where `peak` stands in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<u32>,
    /// Events that context explains as bulk work (inside a change window, for people onboarding
    /// or moving): left out of the windows, so a wave in last month's change window does not
    /// set the bar for a burst outside one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub explained: u64,
}

impl Bursts {
    fn observe(&mut self, t: i64, window_secs: i64) {
        if self.windows > 0 && t >= self.start && t < self.start + window_secs {
            self.count += 1;
        } else if self.windows == 0 || t >= self.start + window_secs {
            if self.windows > 0 {
                self.settled = Some(self.peak);
            }
            self.start = t;
            self.count = 1;
            self.windows += 1;
        } else {
            // Out of order, before the open window: a window of its own.
            self.windows += 1;
        }
        self.peak = self.peak.max(self.count);
    }

    /// The busiest window before the open one: what a burst under way is measured against
    /// (its own events, learned as they come, do not raise the bar they are held to).
    pub fn settled_peak(&self) -> u32 {
        self.settled.unwrap_or(self.peak)
    }

    /// Mean events per active window (`events`: all the scope's events, explained ones too).
    pub fn mean(&self, events: u64) -> f64 {
        if self.windows == 0 {
            0.0
        } else {
            events.saturating_sub(self.explained) as f64 / self.windows as f64
        }
    }
}

/// A decayed counter with the raw count and first/last sighting (unix seconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    pub w: f64,
    pub n: u64,
    pub first: i64,
    pub last: i64,
    /// Grants whose target's department was known (tenant scope).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub placed: u64,
    /// Distinct target departments the entitlement has reached (tenant scope).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub departments: u64,
}

impl Counter {
    fn absorb(&mut self, o: &Counter) {
        if o.n == 0 {
            return;
        }
        self.w += o.w;
        self.n += o.n;
        if self.first == 0 || (o.first != 0 && o.first < self.first) {
            self.first = o.first;
        }
        self.last = self.last.max(o.last);
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How often something happened out of a number of chances: decayed weights with the raw
/// counts beside them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub hits: f64,
    pub total: f64,
    pub n_hits: u64,
    pub n: u64,
}

impl Rate {
    pub fn add(&mut self, hit: bool, w: f64) {
        self.total += w;
        self.n += 1;
        if hit {
            self.hits += w;
            self.n_hits += 1;
        }
    }

    fn absorb(&mut self, o: &Rate) {
        self.hits += o.hits;
        self.total += o.total;
        self.n_hits += o.n_hits;
        self.n += o.n;
    }

    fn scale(&mut self, f: f64) {
        self.hits *= f;
        self.total *= f;
    }

    /// The estimated chance of a hit (Jeffreys-style: half a hit in one extra chance).
    pub fn p(&self) -> f64 {
        (self.hits + 0.5) / (self.total + 1.0)
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// The bucket of the spread table for an entitlement that has reached `departments` departments
/// in `placed` grants: `d1`..`d4+` by departments, then `n1`, `n2-3`, `n4-7`, `n8-15`, `n16+`.
pub fn spread_bucket(departments: u64, placed: u64) -> String {
    let d = match departments {
        0 | 1 => "d1",
        2 => "d2",
        3 => "d3",
        _ => "d4+",
    };
    let n = match placed {
        0 | 1 => "n1",
        2..=3 => "n2-3",
        4..=7 => "n4-7",
        8..=15 => "n8-15",
        _ => "n16+",
    };
    format!("{d}:{n}")
}

/// What one event contributes to a scope.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub time: i64,
    /// Local hour of week of the actor.
    pub hour_of_week: usize,
    pub privilege: Privilege,
    /// `kind:name` of the entitlement, for grants.
    pub entitlement: Option<&'a str>,
    pub channel: &'a str,
    /// Events the actor had made before this one (from the actor's own scope).
    pub actor_prior_events: u64,
    /// Length of a burst window, seconds.
    pub burst_window_secs: i64,
    /// Bulk work context explains (a change window, onboarding, a move): not part of the
    /// scope's burst habit.
    pub burst_explained: bool,
    /// Whether the actor is automation (its habits are kept apart from people's).
    pub automated: bool,
    /// A change that gives consequential access: an account created, or a grant that is not
    /// read-only or standard.
    pub consequential: bool,
}

/// The habit key of an hour-of-week histogram.
pub fn habit(automated: bool, tier: Privilege) -> String {
    format!(
        "{}:{}",
        if automated { "service" } else { "human" },
        tier.as_str()
    )
}

/// Which parts of a scope an observation feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub entitlements: bool,
    pub hours: bool,
    pub channels: bool,
    pub principals: bool,
}

impl Parts {
    pub const ALL: Parts = Parts {
        entitlements: true,
        hours: true,
        channels: true,
        principals: true,
    };
}

/// One scope's learned behaviour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Time the decayed weights refer to (unix seconds).
    pub t_ref: i64,
    /// All observed events.
    pub events: Counter,
    /// Observed grants (entitlement-carrying grant actions).
    pub grants: Counter,
    /// Grants per entitlement key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub entitlements: BTreeMap<String, Counter>,
    /// Hour-of-week histograms per habit: `human:admin`, `service:standard`, … (people and
    /// automation apart, and per privilege tier).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hours: BTreeMap<String, Vec<f64>>,
    /// Channels used, keyed `tier:channel`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub channels: BTreeMap<String, f64>,
    /// Activity in fixed windows (for bursts): the open window and what closed ones held.
    #[serde(default)]
    pub bursts: Bursts,
    /// Distribution of the scorer's statistic over benign events (tenant scope).
    #[serde(default, skip_serializing_if = "Calibration::is_empty")]
    pub calibration: Calibration,
    /// Distinct actors seen (tenant scope).
    #[serde(default)]
    pub actors: u64,
    /// Actors seen exactly once (tenant scope), for Good–Turing estimates of novelty.
    #[serde(default)]
    pub actors_once: u64,
    /// How often a grant took an entitlement to a department it had never reached, per
    /// [`spread_bucket`] of the entitlement's reach before it (tenant scope): an entitlement
    /// that stays in one department is rarely granted outside it, one granted everywhere often.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spread: BTreeMap<String, Rate>,
    /// Privileged grants made without an approval on file (tenant scope).
    #[serde(default, skip_serializing_if = "Rate::is_empty")]
    pub unapproved: Rate,
    /// Consequential changes made by an actor never seen before (tenant scope): how often
    /// newcomers act, counted where it matters (they arrive busy, so counting actors seen once
    /// would understate it).
    #[serde(default, skip_serializing_if = "Rate::is_empty")]
    pub newcomers: Rate,
    /// The same among grants of each privileged tier (`admin`, `elevated`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub newcomers_by_tier: BTreeMap<String, Rate>,
    /// The revision of the stored copy this one was read from (0: none stored), which a store
    /// with concurrent writers checks before it writes the baseline back. Not part of what was
    /// learned: neither serialized nor compared.
    #[serde(skip)]
    pub rev: Rev,
}

/// A stored baseline's revision: bookkeeping of the store, equal whatever its value, so two
/// baselines that learned the same compare equal whichever copy of the store they came from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rev(pub u64);

impl PartialEq for Rev {
    fn eq(&self, _: &Rev) -> bool {
        true
    }
}

/// Decay factor for `dt` seconds at the given half-life.
pub fn decay(dt_secs: i64, half_life_days: f64) -> f64 {
    if dt_secs <= 0 {
        return 1.0;
    }
    0.5f64.powf(dt_secs as f64 / (half_life_days * 86_400.0))
}

impl Baseline {
    /// Decays every weight to time `t` (never backwards).
    pub fn decay_to(&mut self, t: i64, half_life_days: f64) {
        if t <= self.t_ref {
            return;
        }
        if self.t_ref == 0 {
            self.t_ref = t;
            return;
        }
        let f = decay(t - self.t_ref, half_life_days);
        self.t_ref = t;
        self.events.w *= f;
        self.grants.w *= f;
        for c in self.entitlements.values_mut() {
            c.w *= f;
        }
        for bins in self.hours.values_mut() {
            for b in bins.iter_mut() {
                *b *= f;
            }
        }
        for w in self.channels.values_mut() {
            *w *= f;
        }
        for r in self.spread.values_mut() {
            r.scale(f);
        }
        self.unapproved.scale(f);
        self.newcomers.scale(f);
        for r in self.newcomers_by_tier.values_mut() {
            r.scale(f);
        }
    }

    /// The baseline as it stands at `t` (its decayed weights referred to `t`), for comparing
    /// states whose baselines were last touched at different times.
    pub fn at(&self, t: i64, half_life_days: f64) -> Baseline {
        let mut b = self.clone();
        b.decay_to(t, half_life_days);
        b
    }

    /// Adds what the pooled scope keeps of another scope referred to the same `t_ref`: its
    /// event counter, calibration, spread table and approval record.
    pub fn absorb_pooled(&mut self, o: &Baseline) {
        self.events.absorb(&o.events);
        self.calibration.n += o.calibration.n;
        self.calibration.zero += o.calibration.zero;
        for (bin, n) in &o.calibration.bins {
            *self.calibration.bins.entry(*bin).or_default() += n;
        }
        for (bucket, r) in &o.spread {
            self.spread.entry(bucket.clone()).or_default().absorb(r);
        }
        self.unapproved.absorb(&o.unapproved);
    }

    /// The weight, at `t_ref`, of an observation made at `t`.
    pub fn weight_of(&self, t: i64, half_life_days: f64) -> f64 {
        decay(self.t_ref - t, half_life_days)
    }

    /// Adds one event. An event older than `t_ref` (out of order) is added with its own decay.
    pub fn observe(&mut self, o: &Observation<'_>, parts: Parts, half_life_days: f64) {
        self.decay_to(o.time, half_life_days);
        let w = decay(self.t_ref - o.time, half_life_days);
        bump(&mut self.events, w, o.time);
        if o.burst_explained {
            self.bursts.explained += 1;
        } else {
            self.bursts.observe(o.time, o.burst_window_secs);
        }
        if let (true, Some(ent)) = (parts.entitlements, o.entitlement) {
            bump(&mut self.grants, w, o.time);
            bump(
                self.entitlements.entry(ent.to_owned()).or_default(),
                w,
                o.time,
            );
        }
        if parts.hours {
            let bins = self
                .hours
                .entry(habit(o.automated, o.privilege))
                .or_insert_with(|| vec![0.0; HOURS_PER_WEEK]);
            bins[o.hour_of_week % HOURS_PER_WEEK] += w;
        }
        if parts.channels {
            *self
                .channels
                .entry(format!("{}:{}", o.privilege.as_str(), o.channel))
                .or_default() += w;
        }
        if parts.principals {
            if o.consequential {
                let new = o.actor_prior_events == 0;
                self.newcomers.add(new, w);
                if o.entitlement.is_some() && o.privilege.is_privileged() {
                    self.newcomers_by_tier
                        .entry(o.privilege.as_str().to_owned())
                        .or_default()
                        .add(new, w);
                }
            }
            match o.actor_prior_events {
                0 => {
                    self.actors += 1;
                    self.actors_once += 1;
                }
                1 => self.actors_once = self.actors_once.saturating_sub(1),
                _ => {}
            }
        }
    }

    /// Decayed weight of the histogram of a tier.
    pub fn hours_total(&self, habit: &str) -> f64 {
        self.habit_bins(habit).map_or(0.0, |b| b.iter().sum())
    }

    /// The hour-of-week weights of a habit; `human:*` / `service:*` sum every privilege tier.
    fn habit_bins(&self, habit: &str) -> Option<std::borrow::Cow<'_, [f64]>> {
        let Some(kind) = habit.strip_suffix(":*") else {
            return self
                .hours
                .get(habit)
                .map(|b| std::borrow::Cow::Borrowed(&b[..]));
        };
        let mut sum: Option<Vec<f64>> = None;
        for (k, bins) in &self.hours {
            if k.split_once(':').is_some_and(|(h, _)| h == kind) {
                let acc = sum.get_or_insert_with(|| vec![0.0; bins.len()]);
                for (a, w) in acc.iter_mut().zip(bins) {
                    *a += w;
                }
            }
        }
        sum.map(std::borrow::Cow::Owned)
    }

    /// The hour-of-week weights of a habit (`human:*` / `service:*`: every tier), if any.
    pub fn habit_hours(&self, habit: &str) -> Option<Vec<f64>> {
        self.habit_bins(habit).map(|b| b.into_owned())
    }

    /// How unusual an hour of week is for a tier: returns (weight near it, total weight, p).
    ///
    /// "Near" pools the same kind of day (weekday or weekend) within ±2 hours of the time of
    /// day, so a habit of 09:00 and 13:00 covers 11:00 but not 02:00. The p-value is the share
    /// of the mass at times at least as rare as this one, counting this event once.
    pub fn hour_rarity(&self, habit: &str, how: usize) -> Option<(f64, f64, f64)> {
        let bins = self.habit_bins(habit)?;
        let total: f64 = bins.iter().sum();
        if total <= 0.0 {
            return None;
        }
        // Hour-of-day sums per kind of day; weekends weigh per day like weekdays.
        let mut hod = [[0.0f64; 24]; 2];
        for (h, w) in bins.iter().enumerate() {
            hod[usize::from(h / 24 >= 5)][h % 24] += w;
        }
        let near = |h: usize| -> f64 {
            let (kind, hr) = (usize::from(h / 24 >= 5), h % 24);
            (0..5).map(|k| hod[kind][(hr + 24 + k - 2) % 24]).sum()
        };
        // The smoothed distribution over the week; p = its mass at times as rare or rarer.
        let smoothed: Vec<f64> = (0..HOURS_PER_WEEK).map(near).collect();
        let here = smoothed[how % HOURS_PER_WEEK];
        let all: f64 = smoothed.iter().sum();
        let rare_mass: f64 = smoothed.iter().filter(|&&m| m <= here + 1e-9).sum();
        let p = ((rare_mass / all) * total + 1.0) / (total + 1.0);
        Some((here, total, p.min(1.0)))
    }

    /// Share of the tier's events that used this channel.
    pub fn channel_share(&self, tier: Privilege, channel: &str) -> (f64, f64) {
        let prefix = format!("{}:", tier.as_str());
        let total: f64 = self
            .channels
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, w)| w)
            .sum();
        let here = self
            .channels
            .get(&format!("{prefix}{channel}"))
            .copied()
            .unwrap_or(0.0);
        (here, total)
    }

    /// Good–Turing estimate of the chance that the next event comes from an actor never seen:
    /// actors seen exactly once over all events.
    pub fn new_principal_probability(&self) -> Option<(u64, u64, f64)> {
        let total = self.events.n;
        if total == 0 {
            return None;
        }
        let singletons = self.actors_once;
        Some((
            singletons,
            total,
            (singletons as f64 + 1.0) / (total as f64 + 2.0),
        ))
    }

    /// The share of this scope's changes made at a privilege tier (people and automation),
    /// smoothed by one.
    pub fn tier_share(&self, tier: Privilege) -> f64 {
        let suffix = format!(":{}", tier.as_str());
        let here: f64 = self
            .hours
            .iter()
            .filter(|(k, _)| k.ends_with(&suffix))
            .map(|(_, bins)| bins.iter().sum::<f64>())
            .sum();
        ((here + 1.0) / (self.events.w + 2.0)).min(1.0)
    }

    /// How rare a grant of `ek` is in this scope, as a p-value: the chance that a grant here is
    /// of an entitlement at most as common — the weight of those no more common than it (itself
    /// included), plus the chance of one never granted here, estimated Good–Turing style by the
    /// weight of those granted only once — smoothed by half a grant. A scope with a long tail
    /// of one-off grants finds a first grant less surprising than one that always grants the
    /// same few things.
    pub fn rarity_p(&self, ek: &str) -> f64 {
        let own = self.entitlements.get(ek).map_or(0.0, |c| c.w);
        let mass: f64 = self
            .entitlements
            .iter()
            .filter(|(k, c)| k.as_str() != ek && (c.n == 1 || c.w <= own))
            .map(|(_, c)| c.w)
            .sum();
        ((own + mass + 0.5) / (self.grants.w + 1.0)).min(1.0)
    }

    /// Good–Turing estimate for a never-granted entitlement.
    pub fn new_entitlement_probability(&self) -> (u64, u64, f64) {
        let singletons = self.entitlements.values().filter(|c| c.n == 1).count() as u64;
        let total = self.grants.n;
        (
            singletons,
            total,
            (singletons as f64 + 1.0) / (total as f64 + 2.0),
        )
    }
}

fn bump(c: &mut Counter, w: f64, t: i64) {
    c.w += w;
    c.n += 1;
    if c.first == 0 || t < c.first {
        c.first = t;
    }
    c.last = c.last.max(t);
}

/// Hour-of-week weights pooled as [`Baseline::hour_rarity`] pools them: the same kind of day
/// (weekday or weekend) within ±2 hours of the time of day.
fn near_week(bins: &[f64]) -> Vec<f64> {
    let mut hod = [[0.0f64; 24]; 2];
    for (h, w) in bins.iter().enumerate().take(HOURS_PER_WEEK) {
        hod[usize::from(h / 24 >= 5)][h % 24] += w;
    }
    (0..HOURS_PER_WEEK)
        .map(|h| {
            let (kind, hr) = (usize::from(h / 24 >= 5), h % 24);
            (0..5).map(|k| hod[kind][(hr + 24 + k - 2) % 24]).sum()
        })
        .collect()
}

/// The p-value of an hour of week under a hierarchy of habits, broadest first (e.g. the tenant's
/// people, then the team, then the actor). Each level's distribution is its own pooled weights
/// shrunk toward the level before with the weight of `strength` events, the broadest toward
/// uniform with the weight of one; a level with little history is then mostly its parent, one
/// with a lot mostly itself, so a person's habits speak when they are known and the team's and
/// the tenant's fill in the rest. p is the probability mass of the hours at most as likely as
/// this one. `None` when no level has any weight.
pub fn hierarchical_hour_p(levels: &[Vec<f64>], how: usize, strength: f64) -> Option<f64> {
    let mut dist: Option<Vec<f64>> = None;
    for bins in levels {
        let n: f64 = bins.iter().sum();
        let near = near_week(bins);
        let near_total: f64 = near.iter().sum();
        let own = |h: usize| {
            if near_total > 0.0 {
                near[h] / near_total
            } else {
                0.0
            }
        };
        dist = Some(match &dist {
            None => (0..HOURS_PER_WEEK)
                .map(|h| (n * own(h) + 1.0 / HOURS_PER_WEEK as f64) / (n + 1.0))
                .collect(),
            Some(parent) => (0..HOURS_PER_WEEK)
                .map(|h| (n * own(h) + strength * parent[h]) / (n + strength))
                .collect(),
        });
    }
    let dist = dist?;
    if levels.iter().all(|b| b.iter().sum::<f64>() <= 0.0) {
        return None;
    }
    let here = dist[how % HOURS_PER_WEEK];
    let p: f64 = dist.iter().filter(|&&m| m <= here * (1.0 + 1e-9)).sum();
    Some(p.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchical_hours_let_a_known_habit_speak_and_fill_in_from_the_broader_ones() {
        // The tenant's people work weekdays 09:00-17:00; one actor, with little history of
        // their own, works 20:00-22:00 (on call).
        let mut tenant = vec![0.0; HOURS_PER_WEEK];
        for day in 0..5 {
            for h in 9..17 {
                tenant[day * 24 + h] = 40.0;
            }
        }
        let mut actor = vec![0.0; HOURS_PER_WEEK];
        for day in 0..5 {
            actor[day * 24 + 21] = 6.0;
        }
        let p = |levels: &[Vec<f64>], day: usize, h: usize| {
            hierarchical_hour_p(levels, day * 24 + h, 20.0).unwrap()
        };
        let both = [tenant.clone(), actor];
        // 02:00 on a Tuesday is rare for everyone: far below what 1,600 events can show alone.
        assert!(p(&both, 1, 2) < 1e-3, "{}", p(&both, 1, 2));
        // The actor's own evenings are their habit, not an anomaly.
        assert!(p(&both, 1, 21) > 0.05, "{}", p(&both, 1, 21));
        // Without the actor's history the evening would stand out.
        assert!(p(std::slice::from_ref(&tenant), 1, 21) < 0.01);
        // Office hours are never rare.
        assert!(p(&both, 2, 11) > 0.3);
        assert_eq!(
            hierarchical_hour_p(&[vec![0.0; HOURS_PER_WEEK]], 5, 20.0),
            None
        );
    }

    fn obs(time: i64, how: usize, ent: Option<&str>) -> Observation<'_> {
        Observation {
            time,
            hour_of_week: how,
            privilege: Privilege::Admin,
            entitlement: ent,
            channel: "console",
            actor_prior_events: 5,
            burst_window_secs: 600,
            burst_explained: false,
            automated: false,
            consequential: ent.is_some(),
        }
    }

    #[test]
    fn weights_halve_after_one_half_life() {
        let mut b = Baseline::default();
        b.observe(&obs(1_000_000, 10, Some("policy:x")), Parts::ALL, 30.0);
        b.decay_to(1_000_000 + 30 * 86_400, 30.0);
        assert!((b.events.w - 0.5).abs() < 1e-9);
        assert!((b.entitlements["policy:x"].w - 0.5).abs() < 1e-9);
        assert_eq!(b.events.n, 1);
    }

    #[test]
    fn an_export_refers_every_scope_to_one_time_in_key_order() {
        let (t0, day) = (1_000_000, 86_400);
        let mut early = Baseline::default();
        early.observe(&obs(t0, 10, Some("policy:x")), Parts::ALL, 30.0);
        let mut late = Baseline::default();
        late.observe(&obs(t0 + 30 * day, 10, None), Parts::ALL, 30.0);
        let all = vec![
            (ScopeKey::tenant("a"), early.clone()),
            (ScopeKey::actor("a", "ann"), late.clone()),
            (ScopeKey::tenant("b"), late),
        ];
        let out = export(all.clone(), Some("a|"), None, 30.0);
        let scopes: Vec<&str> = out.iter().map(|e| e.scope.as_str()).collect();
        assert_eq!(scopes, ["a|actor|ann", "a|tenant|"]);
        // The newest reference time among them: the early scope is decayed to it.
        assert!(
            out.iter()
                .all(|e| e.at == t0 + 30 * day && e.baseline.t_ref == e.at)
        );
        assert!((out[1].baseline.events.w - 0.5).abs() < 1e-9);
        assert_eq!(out[1].baseline.events.n, 1);
        // A stated time; the stored baselines are untouched.
        let later = export(all.clone(), None, Some(t0 + 60 * day), 30.0);
        assert_eq!(later.len(), 3);
        assert_eq!(later[1].scope, "a|tenant|");
        assert!((later[1].baseline.events.w - 0.25).abs() < 1e-9);
        assert_eq!(all[0].1, early);
    }

    #[test]
    fn conformal_p_values_are_uniform_over_the_calibration_set() {
        let mut c = Calibration::default();
        let stats: Vec<f64> = (0..10_000)
            .map(|i| {
                if i % 10 == 0 {
                    (i % 97) as f64 / 20.0
                } else {
                    0.0
                }
            })
            .collect();
        for s in &stats {
            c.add(*s);
        }
        // Exchangeable new events: the share with p below t is about t.
        let mut below = [0usize; 3];
        for (i, s) in stats.iter().enumerate() {
            let u =
                ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
            let p = c.p_value(*s, u, 100).unwrap();
            for (k, t) in [0.1, 0.05, 0.01].iter().enumerate() {
                below[k] += usize::from(p < *t);
            }
        }
        for (k, t) in [0.1, 0.05, 0.01].iter().enumerate() {
            let share = below[k] as f64 / stats.len() as f64;
            assert!((share - t).abs() < t * 0.25, "p < {t}: {share}");
        }
        // Beyond every benign statistic: below 1/(n+1), falling a decade per decade.
        let p = c.p_value(10.0, 0.5, 100).unwrap();
        assert!(p < 1e-4 && p > 1e-10, "{p}");
        assert!(c.p_value(11.0, 0.5, 100).unwrap() < p / 9.0);
        assert_eq!(Calibration::default().p_value(1.0, 0.5, 100), None);
    }

    #[test]
    fn rarity_is_the_share_of_grants_at_most_as_common_and_of_new_ones() {
        let mut b = Baseline::default();
        let grants = [
            ("group:a", 90),
            ("group:b", 8),
            ("group:c", 1),
            ("group:d", 1),
        ];
        for (ent, n) in grants {
            for _ in 0..n {
                b.observe(&obs(1_000_000, 10, Some(ent)), Parts::ALL, 30.0);
            }
        }
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        // Never granted here: the weight of one-off grants stands in for the unseen.
        assert!(close(b.rarity_p("group:new"), 2.5 / 101.0));
        // Granted once: itself and the other one-off.
        assert!(close(b.rarity_p("group:c"), 2.5 / 101.0));
        // Granted 8 times: itself and the two one-offs.
        assert!(close(b.rarity_p("group:b"), 10.5 / 101.0));
        // The common one is no evidence.
        assert!(b.rarity_p("group:a") > 0.99);
    }

    #[test]
    fn bursts_track_the_busiest_window() {
        let mut b = Baseline::default();
        for t in [0, 60, 120, 5_000, 10_000, 10_030] {
            b.observe(&obs(1_000_000 + t, 0, None), Parts::ALL, 30.0);
        }
        assert_eq!((b.bursts.windows, b.bursts.peak), (3, 3));
        assert_eq!(b.bursts.settled_peak(), 3, "the busiest window is closed");
        assert!((b.bursts.mean(b.events.n) - 2.0).abs() < 1e-9);
        // The open window outgrows them: the peak follows it, the bar a burst is held to does not.
        for t in [10_060, 10_090, 10_120] {
            b.observe(&obs(1_000_000 + t, 0, None), Parts::ALL, 30.0);
        }
        assert_eq!((b.bursts.peak, b.bursts.settled_peak()), (5, 3));

        // A wave context explains is not part of the habit: not the peak, not the mean.
        let mut explained = obs(1_000_000 + 20_000, 0, None);
        explained.burst_explained = true;
        for i in 0..40 {
            explained.time = 1_000_000 + 20_000 + i * 5;
            b.observe(&explained, Parts::ALL, 30.0);
        }
        b.observe(&obs(1_000_000 + 30_000, 0, None), Parts::ALL, 30.0);
        assert_eq!((b.bursts.peak, b.bursts.settled_peak()), (5, 5));
        assert_eq!(b.events.n, 50);
        assert!((b.bursts.mean(b.events.n) - 10.0 / 4.0).abs() < 1e-9);
    }

    #[test]
    fn out_of_order_events_are_weighted_by_their_age() {
        let mut b = Baseline::default();
        b.observe(&obs(2_000_000 + 30 * 86_400, 0, None), Parts::ALL, 30.0);
        b.observe(&obs(2_000_000, 0, None), Parts::ALL, 30.0);
        assert!((b.events.w - 1.5).abs() < 1e-9);
        assert_eq!(b.events.first, 2_000_000);
    }

    #[test]
    fn a_never_seen_hour_is_rare_and_a_busy_one_is_not() {
        let mut b = Baseline::default();
        for i in 0..100 {
            // Weekdays 09:00-17:00.
            let how = (i % 5) * 24 + 9 + (i % 8);
            b.observe(&obs(1_000_000 + i as i64, how, None), Parts::ALL, 30.0);
        }
        let (_, total, p_night) = b.hour_rarity("human:admin", 5 * 24 + 2).unwrap();
        assert!((total - 100.0).abs() < 0.1);
        assert!(p_night < 0.02, "{p_night}");
        let (_, _, p_day) = b.hour_rarity("human:admin", 24 + 12).unwrap();
        assert!(p_day > 0.3, "{p_day}");
        // Between two habitual hours is not rare either.
        let (_, _, p_gap) = b.hour_rarity("human:admin", 2 * 24 + 8).unwrap();
        assert!(p_gap > 0.05, "{p_gap}");
    }
}
