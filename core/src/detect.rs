//! Detectors: each compares one aspect of an event with its baseline and yields a p-value (the
//! chance of something at least this unusual under normal behaviour) and a sentence with the
//! numbers behind it. Baselines back off actor → team → department → tenant; a scope speaks only
//! once it holds `min_evidence` (decayed) observations, so an immature baseline cannot page alone.
//!
//! Findings are combined into one statistic (decades of evidence of the strongest finding, half
//! of the others', plus the entitlement's stakes), and the statistic becomes a p-value through
//! the tenant's calibration: the share of its benign events that scored as high (a conformal
//! p-value, calibrated whatever the correlation between detectors). Scoring is a pure function
//! of the event, the baselines, the recent event log, the context and the configuration.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::baseline::{Baseline, Calibration, Observation, Parts, ScopeKey};
use crate::context::{Approval, ChangeWindow, Context, Person};
use crate::email;
use crate::event::{Action, Event, EventSummary, Outcome, PrincipalKind, Privilege};
use crate::verdict::{ContextNote, Reason, Severity, Verdict};

/// Thresholds and windows. Defaults are documented in the README.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// Half-life of baseline weights, days.
    pub half_life_days: f64,
    /// Decayed observations a scope needs before it may speak.
    pub min_evidence: f64,
    /// A detector reports a finding when its p-value is at or below this.
    pub finding_p: f64,
    /// Score at or above which a verdict alerts (50 = medium = calibrated p-value 1e-4).
    pub alert_score: u8,
    /// Benign events the tenant's calibration needs before p-values are calibrated on it
    /// (until then the calibration pooled over all tenants is used, once it has that many).
    pub min_calibration: u64,
    /// Events a tenant must have before its scores join the calibration.
    pub calibration_warmup: u64,
    /// Until then, the statistic (decades of evidence plus stakes) at which a verdict alerts.
    pub uncalibrated_alert_statistic: f64,
    /// Time zone for actors without a directory time zone (IANA name).
    pub tenant_timezone: String,
    /// Window for volume bursts, minutes.
    pub burst_window_minutes: i64,
    /// Fewest events in the window that can make a burst.
    pub burst_min_events: usize,
    /// Fewest events in the window, all actors together, that can make a tenant-level burst
    /// (one actor's own burst is `burst_min_events`).
    pub tenant_burst_min_events: usize,
    /// Window between account creation and a privileged grant for `escalation_chain`, minutes.
    pub escalation_window_minutes: i64,
    /// Window between a guest's conversion to member and a privileged grant for
    /// `escalation_chain`, days.
    pub guest_escalation_days: i64,
    /// After an alert for its hour, the actor's changes within this many hours are one off-hours
    /// session: they do not page again for the hour.
    pub off_hours_session_hours: i64,
    /// An actor unseen for this long is dormant, days.
    pub dormant_days: i64,
    /// Days around a directory `start_date` that count as onboarding, and around a
    /// `team_since` that count as a move (before, after).
    pub onboarding_days_before: i64,
    pub onboarding_days_after: i64,
    /// Break-glass accounts: their grants are never discounted.
    pub break_glass: Vec<String>,
    /// Your own HR-driven provisioning accounts that the sources do not mark as the identity
    /// provider's automation (a directory sync's service account, say; emails, ids or names):
    /// their changes are judged as the identity provider's workflow is.
    pub workflow_actors: Vec<String>,
    /// Entitlements the organisation holds sensitive (names or ids, case-insensitive): one
    /// granted to a department it has not reached in the baseline window, after at least two
    /// grants elsewhere, alerts on its own unless an approval for it is on file.
    pub sensitive_entitlements: EntitlementSet,
    /// Days of event history attached to alerts.
    pub history_days: i64,
    /// A tenant whose share of privileged grants without an approval is at most this (once
    /// `min_evidence` of them are seen) runs an approval workflow: a grant that skips it is a
    /// breach of practice, scored as rule evidence.
    pub approval_policy_miss_rate: f64,
    /// An event dated more than this after it was received (the later of the ingest time and
    /// the clock) is dead-lettered, not scored: a wrong clock or a forged time would otherwise
    /// decay every baseline it touches, minutes.
    pub max_future_minutes: i64,
    /// Learn webhook deliveries of sources with a provider audit log (Okta, Entra, Google) at
    /// once. Off (the default): such an event stays out of the baselines until its provider's
    /// record confirms it, so whoever holds a leaked webhook secret cannot teach the model.
    pub learn_unconfirmed_webhooks: bool,
    /// Pool the calibration, spread table and approval record of all tenants into one scope
    /// (`*`) that a young or small tenant borrows until its own are mature. The pooled scope is
    /// built by `learn` and `rebaseline`, never per event. Off: each tenant stands alone (a
    /// sandbox account then does not shape production's priors).
    pub pool_tenants: bool,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            half_life_days: 30.0,
            min_evidence: 20.0,
            finding_p: 0.05,
            alert_score: 50,
            min_calibration: 500,
            calibration_warmup: 300,
            uncalibrated_alert_statistic: 3.0,
            tenant_timezone: "UTC".into(),
            burst_window_minutes: 10,
            burst_min_events: 5,
            tenant_burst_min_events: 20,
            escalation_window_minutes: 60,
            guest_escalation_days: 30,
            off_hours_session_hours: 4,
            learn_unconfirmed_webhooks: false,
            pool_tenants: true,
            dormant_days: 90,
            onboarding_days_before: 14,
            onboarding_days_after: 30,
            break_glass: Vec::new(),
            workflow_actors: Vec::new(),
            sensitive_entitlements: EntitlementSet::default(),
            history_days: 30,
            approval_policy_miss_rate: 0.01,
            max_future_minutes: 60,
        }
    }
}

impl DetectConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.tenant_timezone.parse::<Tz>().is_err() {
            return Err(format!(
                "tenant_timezone `{}` is not an IANA time zone",
                self.tenant_timezone
            ));
        }
        if self.max_future_minutes < 0 {
            return Err("max_future_minutes must not be negative".into());
        }
        if self.half_life_days.is_nan() || self.half_life_days <= 0.0 {
            return Err("half_life_days must be positive".into());
        }
        if self.finding_p.is_nan() || self.finding_p <= 0.0 || self.finding_p >= 1.0 {
            return Err("finding_p must be between 0 and 1".into());
        }
        if !(0.0..1.0).contains(&self.approval_policy_miss_rate) {
            return Err("approval_policy_miss_rate must be at least 0 and below 1".into());
        }
        Ok(())
    }

    fn tz(&self) -> Tz {
        self.tenant_timezone.parse().unwrap_or(Tz::UTC)
    }
}

/// A set of entitlement names or ids, matched case-insensitively (read from a list).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct EntitlementSet(std::collections::BTreeSet<String>);

impl From<Vec<String>> for EntitlementSet {
    fn from(v: Vec<String>) -> Self {
        EntitlementSet(v.into_iter().map(|s| s.to_lowercase()).collect())
    }
}

impl From<EntitlementSet> for Vec<String> {
    fn from(s: EntitlementSet) -> Self {
        s.0.into_iter().collect()
    }
}

impl EntitlementSet {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the entitlement's name or id is in the set.
    pub fn contains(&self, e: &crate::event::Entitlement) -> bool {
        !self.0.is_empty()
            && [e.name.as_deref(), e.id.as_deref()]
                .into_iter()
                .flatten()
                .any(|n| self.0.contains(&n.to_lowercase()))
    }
}

/// How rarely each rule fires on benign work: these set a rule finding's weight in the
/// statistic, and the tenant's calibration turns the statistic into a p-value.
/// The entitlement name of a guest's conversion to a member (`grant_role`, standard): the Entra
/// mapping writes it for `Update user` with UserType Guest → Member; custom mappings may too.
pub const GUEST_TO_MEMBER: &str = "Member (converted from guest)";

mod prior {
    pub const MISSING_APPROVAL: f64 = 1e-3;
    pub const MISSING_APPROVAL_POLICY: f64 = 1e-4;
    pub const LOOKALIKE: f64 = 1e-6;
    pub const COMBO_LOOKALIKE: f64 = 1e-5;
    pub const TYPO: f64 = 1e-5;
    pub const EXTERNAL: f64 = 1e-3;
    pub const SELF_GRANT_ADMIN: f64 = 1e-5;
    pub const SELF_GRANT: f64 = 1e-3;
    pub const ESCALATION: f64 = 1e-5;
    pub const GUEST_ESCALATION: f64 = 1e-4;
    pub const DORMANT: f64 = 1e-3;
    pub const SENSITIVE_NEW_DEPARTMENT: f64 = 1e-4;
}

/// An event joined with its directory context, computed once.
#[derive(Debug, Clone)]
pub struct Enriched<'a> {
    pub event: &'a Event,
    pub actor: Option<&'a Person>,
    pub target: Option<&'a Person>,
    pub actor_key: String,
    pub target_key: String,
    pub actor_team: Option<String>,
    pub actor_department: Option<String>,
    pub target_team: Option<String>,
    pub target_department: Option<String>,
    pub tz: Tz,
    pub local_time: DateTime<Tz>,
    pub hour_of_week: usize,
    pub entitlement_key: Option<String>,
    /// Whether the event is a privileged grant that the approval workflow covers (successful,
    /// not a just-in-time activation or a service side effect).
    pub needs_approval: bool,
    /// The approval on file for it, if any (privileged and sensitive grants).
    pub approval: Option<&'a Approval>,
    /// A successful grant of an entitlement in `sensitive_entitlements`.
    pub sensitive: bool,
    /// The actor's email, id and name as the event gives them.
    pub actor_ids: Vec<&'a str>,
    /// The change window the actor is working in, if any.
    pub change_window: Option<&'a ChangeWindow>,
}

impl Enriched<'_> {
    /// The target's directory display name, else the event's label for it.
    pub fn target_name(&self) -> &str {
        self.target
            .and_then(|p| p.display_name.as_deref())
            .unwrap_or(self.event.target.label())
    }
}

pub fn enrich<'a>(event: &'a Event, ctx: &'a Context, cfg: &DetectConfig) -> Enriched<'a> {
    let ids = |email: &'a Option<String>, id: &'a Option<String>, name: &'a Option<String>| {
        [email, id, name]
            .into_iter()
            .filter_map(|s| s.as_deref())
            .collect::<Vec<_>>()
    };
    let actor = ctx.person(ids(&event.actor.email, &event.actor.id, &event.actor.name));
    let target = ctx.person(ids(
        &event.target.email,
        &event.target.id,
        &event.target.name,
    ));
    let tz = actor
        .and_then(|p| p.timezone.as_deref())
        .and_then(|t| t.parse::<Tz>().ok())
        .unwrap_or_else(|| cfg.tz());
    let local_time = tz.from_utc_datetime(&event.time.naive_utc());
    let hour_of_week =
        local_time.weekday().num_days_from_monday() as usize * 24 + local_time.hour() as usize;
    let entitlement_key = event
        .entitlement
        .as_ref()
        .filter(|_| event.action.is_grant())
        .map(|e| e.key());
    let needs_approval = event.action.is_grant()
        && event.outcome == Outcome::Success
        && event.privilege().is_privileged()
        && event.channel != "pim"
        && event.channel != "service";
    let sensitive = event.action.is_grant()
        && event.outcome == Outcome::Success
        && event
            .entitlement
            .as_ref()
            .is_some_and(|x| cfg.sensitive_entitlements.contains(x));
    let approval = if needs_approval || sensitive {
        let mut target_ids: Vec<&str> = [&event.target.email, &event.target.id, &event.target.name]
            .into_iter()
            .filter_map(|s| s.as_deref())
            .collect();
        if let Some(p) = target {
            target_ids.push(&p.email);
        }
        let ent_ids: Vec<&str> = event
            .entitlement
            .iter()
            .flat_map(|x| [x.name.as_deref(), x.id.as_deref()])
            .flatten()
            .collect();
        ctx.approval_for(&target_ids, &ent_ids, event.time)
    } else {
        None
    };
    let actor_ids: Vec<&str> = [&event.actor.email, &event.actor.id, &event.actor.name]
        .into_iter()
        .filter_map(|s| s.as_deref())
        .collect();
    let change_window = ctx.change_window_for(&actor_ids, event.time);
    Enriched {
        actor_ids,
        change_window,
        event,
        actor,
        target,
        actor_key: event.actor_key(),
        target_key: event.target_key(),
        actor_team: actor.and_then(|p| p.team.clone()),
        actor_department: actor.and_then(|p| p.department.clone()),
        target_team: target.and_then(|p| p.team.clone()),
        target_department: event
            .target
            .department
            .clone()
            .or_else(|| target.and_then(|p| p.department.clone())),
        tz,
        local_time,
        hour_of_week,
        entitlement_key,
        needs_approval,
        approval,
        sensitive,
    }
}

/// Findings that measure habit (when, what, for whom), as opposed to rules (approvals,
/// self-grants, new actors, bursts, e-mail hygiene).
pub const HABIT_FINDINGS: &[&str] = &[
    "off_hours",
    "rare_entitlement_for_department",
    "rare_entitlement_for_actor",
    "first_in_tenant",
];

/// The pseudo-tenant whose scope pools the calibration of all tenants.
pub const GLOBAL: &str = "*";

/// Whether a scope is the one pooled over all tenants: read by every event, written only by
/// [`pool`] (from `learn` and `rebaseline`), so no event's write touches every tenant's key.
pub fn is_pooled(k: &ScopeKey) -> bool {
    k.tenant_id() == GLOBAL
}

/// The scope pooled over all tenants, from their tenant scopes (pooled ones are skipped): the
/// calibrations, spread tables, approval records and event counters summed, every weight
/// referred to the newest `t_ref` among them. `None` when there is no tenant to pool.
pub fn pool<'a>(
    tenants: impl IntoIterator<Item = (&'a ScopeKey, &'a Baseline)>,
    half_life_days: f64,
) -> Option<Baseline> {
    let chosen: Vec<&Baseline> = tenants
        .into_iter()
        .filter(|(k, _)| k.as_str().ends_with("|tenant|") && !is_pooled(k))
        .map(|(_, b)| b)
        .collect();
    let t = chosen.iter().map(|b| b.t_ref).max()?;
    let mut out = Baseline {
        t_ref: t,
        ..Baseline::default()
    };
    for b in chosen {
        out.absorb_pooled(&b.at(t, half_life_days));
    }
    Some(out)
}

/// The scopes an event reads and feeds, with the parts of each it feeds.
pub fn scopes(e: &Enriched<'_>) -> Vec<(ScopeKey, Parts)> {
    let t = e.event.tenant.as_str();
    let only = |entitlements, hours| Parts {
        entitlements,
        hours,
        channels: false,
        principals: false,
    };
    let mut out = vec![
        (ScopeKey::tenant(t), Parts::ALL),
        (ScopeKey::tenant(GLOBAL), only(false, false)),
        (
            ScopeKey::actor(t, &e.actor_key),
            Parts {
                principals: false,
                ..Parts::ALL
            },
        ),
    ];
    if let Some(team) = &e.actor_team {
        out.push((ScopeKey::actor_team(t, team), only(false, true)));
    }
    if let Some(d) = &e.actor_department {
        out.push((ScopeKey::actor_department(t, d), only(false, true)));
    }
    if let Some(team) = &e.target_team {
        out.push((ScopeKey::target_team(t, team), only(true, false)));
    }
    if let Some(d) = &e.target_department {
        out.push((ScopeKey::target_department(t, d), only(true, false)));
    }
    out
}

/// Automation (service principals, IaC, IdP workflows) keeps its own habits.
pub fn is_automated(e: &Event) -> bool {
    e.actor.kind == PrincipalKind::Service
}

/// A change that gives consequential access: an account created, or a successful grant that is
/// not read-only or standard (unclassified grants count).
pub fn consequential(e: &Event) -> bool {
    let tier = e.privilege();
    (e.action.is_grant()
        && e.outcome == Outcome::Success
        && tier != Privilege::ReadOnly
        && tier != Privilege::Standard)
        || e.action == Action::CreateAccount
}

/// Whether an event should feed baselines at all (successful, not a service side effect).
pub fn learnable(e: &Event) -> bool {
    e.outcome == Outcome::Success && e.channel != "service"
}

/// Adds an event to its baselines; `statistic` (when it was scored) joins the tenant's
/// calibration.
pub fn learn(
    e: &Enriched<'_>,
    baselines: &mut HashMap<ScopeKey, Baseline>,
    cfg: &DetectConfig,
    statistic: Option<f64>,
) {
    if !learnable(e.event) {
        return;
    }
    // Scores made while the tenant was still young are noise, not the benign distribution.
    let mature = baselines
        .get(&ScopeKey::tenant(&e.event.tenant))
        .is_some_and(|b| b.events.n >= cfg.calibration_warmup);
    if let (Some(stat), true) = (statistic, mature) {
        baselines
            .entry(ScopeKey::tenant(&e.event.tenant))
            .or_default()
            .calibration
            .add(stat);
    }
    // Before this event: has its entitlement reached the target's department, and how far had
    // it spread (for the tenant's spread table)?
    let tenant_key = ScopeKey::tenant(&e.event.tenant);
    let spread = match (&e.entitlement_key, &e.target_department) {
        (Some(ek), Some(d)) => {
            let dept = baselines.get(&ScopeKey::target_department(&e.event.tenant, d));
            let mature = dept.is_some_and(|b| b.grants.w >= cfg.min_evidence);
            let new_here = !dept.is_some_and(|b| b.entitlements.contains_key(ek));
            let (departments, placed) = baselines
                .get(&tenant_key)
                .and_then(|b| b.entitlements.get(ek))
                .map_or((0, 0), |c| (c.departments, c.placed));
            Some((ek, new_here, mature, departments, placed))
        }
        _ => None,
    };
    let actor_prior_events = baselines
        .get(&ScopeKey::actor(&e.event.tenant, &e.actor_key))
        .map_or(0, |b| b.events.n);
    let obs = Observation {
        time: e.event.time.timestamp(),
        hour_of_week: e.hour_of_week,
        privilege: e.event.privilege(),
        entitlement: e.entitlement_key.as_deref(),
        channel: &e.event.channel,
        actor_prior_events,
        burst_window_secs: cfg.burst_window_minutes * 60,
        burst_explained: e.change_window.is_some()
            || directory_explains(e.target, e.event.time, Some(e.event.privilege()), cfg),
        automated: is_automated(e.event),
        consequential: consequential(e.event),
    };
    for (key, parts) in scopes(e) {
        if is_pooled(&key) {
            continue;
        }
        baselines
            .entry(key)
            .or_default()
            .observe(&obs, parts, cfg.half_life_days);
    }
    // The tenant's spread table and approval record (pooled over all tenants by [`pool`], so a
    // small tenant, one identity provider of several, borrows the organisation's).
    let unapproved = e.approval.is_none() && e.event.approval_ref.is_none();
    {
        let Some(tb) = baselines.get_mut(&tenant_key) else {
            return;
        };
        let w = tb.weight_of(obs.time, cfg.half_life_days);
        if let Some((_, new_here, mature, departments, placed)) = spread {
            if mature && placed > 0 {
                tb.spread
                    .entry(crate::baseline::spread_bucket(departments, placed))
                    .or_default()
                    .add(new_here, w);
            }
        }
        if e.needs_approval {
            tb.unapproved.add(unapproved, w);
        }
    }
    if let Some((ek, new_here, ..)) = spread {
        if let Some(c) = baselines
            .get_mut(&ScopeKey::tenant(&e.event.tenant))
            .and_then(|b| b.entitlements.get_mut(ek))
        {
            c.placed += 1;
            if new_here {
                c.departments += 1;
            }
        }
    }
}

/// Learns an event committed while a rebuild ran into the rebuilt baselines (with the
/// statistic it added to the calibration, if any); returns the scopes it feeds.
pub fn catch_up(
    event: &Event,
    statistic: Option<f64>,
    baselines: &mut HashMap<ScopeKey, Baseline>,
    ctx: &Context,
    cfg: &DetectConfig,
) -> Vec<ScopeKey> {
    let e = enrich(event, ctx, cfg);
    learn(&e, baselines, cfg, statistic);
    scopes(&e)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| !is_pooled(k))
        .collect()
}

/// What the scorer may look at besides the event.
#[derive(Debug)]
pub struct Evidence<'a> {
    pub baselines: &'a HashMap<ScopeKey, Baseline>,
    /// The actor's events shortly before this one (newest last or any order).
    pub actor_recent: &'a [EventSummary],
    /// The target's events shortly before this one.
    pub target_recent: &'a [EventSummary],
    pub ctx: &'a Context,
    /// An earlier event of the actor's current burst that already alerted for it.
    pub burst_alerted: Option<&'a str>,
    /// The actor's latest event within `off_hours_session_hours` that alerted for its hour.
    pub off_hours_alerted: Option<&'a str>,
    /// The tenant's events shortly before this one ([`EventSummary::activity`], any order).
    pub tenant_recent: &'a [EventSummary],
}

#[derive(Debug, Clone)]
struct Finding {
    code: &'static str,
    p: f64,
    detail: String,
    scope: Option<String>,
    /// Never lowered by context (lookalike domains, admin self-grants, break-glass actors).
    protected: bool,
}

impl Finding {
    fn new(code: &'static str, p: f64, detail: String) -> Self {
        Finding {
            code,
            p: p.clamp(1e-12, 1.0),
            detail,
            scope: None,
            protected: false,
        }
    }
    fn scope(mut self, s: String) -> Self {
        self.scope = Some(s);
        self
    }
}

/// A baseline decayed to the event's time (read-only view).
/// Borrowed when the baseline is already at `t` or later (the pipeline decays its working
/// copies to the event's time before scoring, so the hot path copies nothing).
fn at<'b>(b: &'b Baseline, t: i64, cfg: &DetectConfig) -> std::borrow::Cow<'b, Baseline> {
    if t <= b.t_ref || b.t_ref == 0 {
        return std::borrow::Cow::Borrowed(b);
    }
    let mut b = b.clone();
    b.decay_to(t, cfg.half_life_days);
    std::borrow::Cow::Owned(b)
}

fn human_scope(key: &ScopeKey) -> String {
    let mut parts = key.0.splitn(3, '|');
    let _tenant = parts.next();
    let kind = parts.next().unwrap_or_default();
    let value = parts.next().unwrap_or_default();
    match kind {
        "tenant" => "tenant".into(),
        "actor" => format!("actor:{value}"),
        "actor_team" | "target_team" => format!("team:{value}"),
        "actor_dept" | "target_dept" => format!("department:{value}"),
        _ => key.0.clone(),
    }
}

/// Scores an event. Pure: everything it needs is in its arguments.
pub fn score(e: &Enriched<'_>, ev: &Evidence<'_>, cfg: &DetectConfig) -> Verdict {
    let event = e.event;
    let t = event.time.timestamp();
    let tenant = event.tenant.as_str();
    let tier = event.privilege();
    let ent_label = event.entitlement.as_ref().map(|x| x.label().to_owned());
    let mut findings: Vec<Finding> = Vec::new();
    let mut notes: Vec<ContextNote> = Vec::new();
    // The alert whose episode (a burst, an off-hours session) this change belongs to.
    let mut held_by: Option<String> = None;
    let get = |k: &ScopeKey| ev.baselines.get(k).map(|b| at(b, t, cfg));

    let service_side_effect = event.channel == "service";
    let pim_activation = event.channel == "pim";
    let grant = event.action.is_grant() && event.outcome == Outcome::Success;

    if service_side_effect {
        notes.push(ContextNote {
            kind: "service_side_effect".into(),
            detail: format!(
                "made by {} on behalf of another change; scored with the change that caused it",
                event.actor.label()
            ),
            effect: "lowered".into(),
        });
    } else {
        let mut spread_judged = false;
        // --- a sensitive entitlement (configuration) reaching a department it never reached:
        // the organisation's own rule, so it alerts alone unless an approval for it is on file.
        if let (true, Some(ek), Some(label), Some(d)) = (
            e.sensitive,
            &e.entitlement_key,
            &ent_label,
            &e.target_department,
        ) {
            let reach = get(&ScopeKey::tenant(tenant))
                .and_then(|tb| tb.entitlements.get(ek).map(|c| (c.placed, c.departments)))
                .filter(|(placed, _)| *placed >= 2);
            let reached = get(&ScopeKey::target_department(tenant, d))
                .is_some_and(|b| b.entitlements.contains_key(ek));
            if let (Some((placed, departments)), false) = (reach, reached) {
                spread_judged = true;
                let before = format!(
                    "{label} is a sensitive entitlement (configuration) and reached {} in {placed} grants, never {d}",
                    match departments {
                        1 => "one department".to_owned(),
                        n => format!("{n} departments"),
                    }
                );
                match e.approval {
                    // A privileged grant's approval is noted with the approval workflow below.
                    Some(_) if e.needs_approval => {}
                    Some(a) => notes.push(ContextNote {
                        kind: "approval".into(),
                        detail: format!("{before}; {}", approved_in(a)),
                        effect: "lowered".into(),
                    }),
                    None => {
                        let mut f = Finding::new(
                            "rare_entitlement_for_department",
                            prior::SENSITIVE_NEW_DEPARTMENT,
                            format!("{before}; no approval on file for it"),
                        )
                        .scope(human_scope(&ScopeKey::target_department(tenant, d)));
                        f.protected = true;
                        findings.push(f);
                    }
                }
            }
        }

        // --- an entitlement reaching a department it never reached before, judged by how often
        // entitlements of its reach (departments, grants) spread in this tenant: one that stays
        // with Finance seldom goes to Sales, one granted everywhere often reaches a new team.
        if let (true, false, Some(ek), Some(label), Some(d)) = (
            grant,
            spread_judged,
            &e.entitlement_key,
            &ent_label,
            &e.target_department,
        ) {
            let dept_b = get(&ScopeKey::target_department(tenant, d))
                .filter(|b| b.grants.w >= cfg.min_evidence);
            let tenant_b = get(&ScopeKey::tenant(tenant));
            if let (Some(db), Some(tb)) = (dept_b, tenant_b) {
                let reach = tb.entitlements.get(ek).filter(|c| c.placed > 0);
                if let (false, Some(c)) = (db.entitlements.contains_key(ek), reach) {
                    let bucket = crate::baseline::spread_bucket(c.departments, c.placed);
                    let pooled = get(&ScopeKey::tenant(GLOBAL));
                    let rate = [Some(&tb), pooled.as_ref()]
                        .into_iter()
                        .flatten()
                        .filter_map(|b| b.spread.get(&bucket))
                        .find(|r| r.total >= cfg.min_evidence);
                    if let Some(r) = rate {
                        spread_judged = true;
                        let p = r.p();
                        if p <= cfg.finding_p {
                            let reached = match c.departments {
                                1 => "one other department".to_owned(),
                                n => format!("{n} other departments"),
                            };
                            findings.push(
                                Finding::new(
                                    "rare_entitlement_for_department",
                                    p,
                                    format!(
                                        "{label} had gone to {reached} in {} grants and never to {d} ({} grants to {d}); in this tenant an entitlement that far spread reached a new department in {} of {} grants",
                                        c.placed, db.grants.n, r.n_hits, r.n
                                    ),
                                )
                                .scope(human_scope(&ScopeKey::target_department(tenant, d))),
                            );
                        }
                    }
                }
            }
        }

        // --- entitlement rarity for the target's team/department, backing off to the tenant.
        if let (true, false, Some(ek), Some(label)) =
            (grant, spread_judged, &e.entitlement_key, &ent_label)
        {
            let mut chain: Vec<(ScopeKey, String)> = Vec::new();
            if let Some(team) = &e.target_team {
                chain.push((
                    ScopeKey::target_team(tenant, team),
                    format!("the {team} team"),
                ));
            }
            if let Some(d) = &e.target_department {
                chain.push((ScopeKey::target_department(tenant, d), d.clone()));
            }
            if !chain.is_empty() {
                chain.push((ScopeKey::tenant(tenant), "the tenant".into()));
            }
            let mut immature = Vec::new();
            for (key, name) in &chain {
                let Some(b) = get(key) else {
                    immature.push(format!("{name} (0 grants)"));
                    continue;
                };
                if b.grants.w < cfg.min_evidence {
                    immature.push(format!("{name} ({} grants)", b.grants.n));
                    continue;
                }
                let c = b.entitlements.get(ek).map_or(0.0, |c| c.w);
                let n = b.grants.w;
                let p = b.rarity_p(ek);
                if p <= cfg.finding_p {
                    let raw = b.entitlements.get(ek).map_or(0, |c| c.n);
                    let mut detail = format!(
                        "{raw} of {} grants to {name} were {label} (weighted share {:.1}%, {}-day half-life)",
                        b.grants.n,
                        100.0 * c / n.max(1e-9),
                        cfg.half_life_days
                    );
                    if !immature.is_empty() {
                        detail.push_str(&format!(
                            "; too little history for {} so {name} was used",
                            immature.join(", ")
                        ));
                    }
                    findings.push(
                        Finding::new("rare_entitlement_for_department", p, detail)
                            .scope(human_scope(key)),
                    );
                }
                break;
            }
        }

        // --- entitlement rarity for the actor (privileged or unclassified grants).
        let actor_b = get(&ScopeKey::actor(tenant, &e.actor_key));
        if let (true, Some(ek), Some(label)) = (grant, &e.entitlement_key, &ent_label) {
            if matches!(
                tier,
                Privilege::Admin | Privilege::Elevated | Privilege::Unknown
            ) {
                if let Some(b) = actor_b.as_ref().filter(|b| b.grants.w >= cfg.min_evidence) {
                    let p = b.rarity_p(ek);
                    if p <= cfg.finding_p && !pim_activation {
                        let raw = b.entitlements.get(ek).map_or(0, |c| c.n);
                        findings.push(
                            Finding::new(
                                "rare_entitlement_for_actor",
                                p,
                                format!(
                                    "{} granted {label} {raw} times in {} grants before this one",
                                    event.actor.label(),
                                    b.grants.n
                                ),
                            )
                            .scope(format!("actor:{}", e.actor_key)),
                        );
                    }
                }
            }
        }

        // --- first grant of this entitlement anywhere in the tenant.
        if let (true, Some(ek), Some(label)) = (grant, &e.entitlement_key, &ent_label) {
            if let Some(b) =
                get(&ScopeKey::tenant(tenant)).filter(|b| b.grants.w >= cfg.min_evidence)
            {
                if !b.entitlements.contains_key(ek) {
                    let (singles, total, p) = b.new_entitlement_probability();
                    if p <= cfg.finding_p {
                        findings.push(
                            Finding::new(
                                "first_in_tenant",
                                p,
                                format!(
                                    "{label} was never granted before in this tenant ({total} grants seen; {singles} entitlements granted only once)"
                                ),
                            )
                            .scope("tenant".into()),
                        );
                    }
                }
            }
        }

        // --- hour of week, per habit (people or automation, privilege tier),
        // actor → team → department → tenant.
        {
            let habit_key = crate::baseline::habit(is_automated(event), tier);
            let mut chain = vec![(
                ScopeKey::actor(tenant, &e.actor_key),
                "this actor".to_owned(),
            )];
            if let Some(team) = &e.actor_team {
                chain.push((
                    ScopeKey::actor_team(tenant, team),
                    format!("the {team} team"),
                ));
            }
            if let Some(d) = &e.actor_department {
                chain.push((ScopeKey::actor_department(tenant, d), d.clone()));
            }
            chain.push((ScopeKey::tenant(tenant), "the tenant".into()));
            // The tier's own habit first; where no scope has enough of it (admin grants are
            // rare), the habit of every tier of the same kind (people or automation).
            let any_tier = habit_key
                .split_once(':')
                .map(|(kind, _)| format!("{kind}:*"))
                .unwrap_or_default();
            let tier_label = tier.to_string();
            let habits = [
                (habit_key.as_str(), tier_label.as_str()),
                (any_tier.as_str(), ""),
            ];
            let found = habits.iter().find_map(|(h, label)| {
                chain.iter().find_map(|(key, name)| {
                    get(key)
                        .filter(|b| b.hours_total(h) >= cfg.min_evidence)
                        .map(|b| (b, *h, *label, key, name))
                })
            });
            if let Some((b, habit, label, key, name)) = found {
                let changes = if label.is_empty() {
                    "changes".to_owned()
                } else {
                    format!("{label} changes")
                };
                // The probability of this hour: from the tenant down to the actor, each level
                // shrunk toward the one before; at each level the tier's own habit where it has
                // enough evidence, else the kind's (all tiers). One habit per level: the tier's
                // changes are among the kind's, and counting them twice would shrink an hour
                // few work twice over (a weekend afternoon came out at p = 1e-11).
                let broad_to_narrow: Vec<&ScopeKey> = chain.iter().rev().map(|(k, _)| k).collect();
                let levels: Vec<Vec<f64>> = broad_to_narrow
                    .iter()
                    .filter_map(|k| {
                        let b = get(k)?;
                        b.habit_hours(&habit_key)
                            .filter(|h| h.iter().sum::<f64>() >= cfg.min_evidence)
                            .or_else(|| b.habit_hours(&any_tier))
                    })
                    .collect();
                let p_hier =
                    crate::baseline::hierarchical_hour_p(&levels, e.hour_of_week, cfg.min_evidence);
                if let Some((here, total, p_own)) = b.hour_rarity(habit, e.hour_of_week) {
                    let p = p_hier.unwrap_or(p_own);
                    // Taking access away at an odd hour (clean-ups, leavers) is not the risk.
                    if p <= cfg.finding_p && !pim_activation && !event.action.is_removal() {
                        findings.push(
                            Finding::new(
                                "off_hours",
                                p,
                                format!(
                                    "{} at {} ({}); {:.1} of {:.1} {changes} by {name} were made on a {} within 2 hours of that time (weighted, {}-day half-life)",
                                    event.action,
                                    e.local_time.format("%a %H:%M"),
                                    e.tz.name(),
                                    here,
                                    total,
                                    if e.hour_of_week / 24 >= 5 { "weekend" } else { "weekday" },
                                    cfg.half_life_days
                                ),
                            )
                            .scope(human_scope(key)),
                        );
                        if let Some(first) = ev.off_hours_alerted {
                            // One alert per off-hours session: the actor's later changes in it
                            // keep their other findings but do not page again for the hour.
                            notes.push(ContextNote {
                                kind: "off_hours_session".into(),
                                detail: format!(
                                    "part of an off-hours session already alerted for its hour as event {first} (p = {p:.1e})"
                                ),
                                effect: "lowered".into(),
                            });
                            if let Some(f) = findings.last_mut() {
                                f.p = 1.0;
                            }
                            held_by = Some(first.to_owned());
                        }
                    }
                }
            }
        }

        // --- new and dormant actors making privileged changes or creating accounts.
        if consequential(event) {
            match actor_b.as_ref() {
                None => {
                    let tb =
                        get(&ScopeKey::tenant(tenant)).filter(|b| b.events.w >= cfg.min_evidence);
                    // How often changes like this one came from a first-time actor, once the
                    // tenant has seen enough of them (decayed); before that, a Good–Turing
                    // estimate from actors seen once.
                    let record = tb.as_ref().and_then(|b| {
                        let (r, what) = if tier.is_privileged() {
                            (
                                b.newcomers_by_tier.get(tier.as_str())?,
                                format!("{tier} grants"),
                            )
                        } else {
                            (&b.newcomers, "account creations and grants like it".into())
                        };
                        (r.total >= cfg.min_evidence).then(|| {
                            (
                                r.p(),
                                format!(
                                    "{} of {} past {what} here came from a first-time actor (weighted, {}-day half-life)",
                                    r.n_hits, r.n, cfg.half_life_days
                                ),
                            )
                        })
                    });
                    let estimate = record.or_else(|| {
                        let b = tb.as_ref()?;
                        let (singles, total, p_new) = b.new_principal_probability()?;
                        // A newcomer whose first change is privileged: as rare as newcomers
                        // times the share of privileged changes.
                        Some(if tier.is_privileged() {
                            let share = b.tier_share(tier);
                            (
                                p_new * share,
                                format!(
                                    "{singles} of {total} past changes came from a one-time actor; {:.1}% of changes here are {tier} grants",
                                    100.0 * share
                                ),
                            )
                        } else {
                            (
                                p_new,
                                format!("{singles} of {total} past changes came from a one-time actor"),
                            )
                        })
                    });
                    if let Some((p, why)) = estimate {
                        if p <= cfg.finding_p {
                            findings.push(
                                Finding::new(
                                    "new_actor",
                                    p,
                                    format!(
                                        "{} has never made a provisioning change here before; {why}",
                                        event.actor.label()
                                    ),
                                )
                                .scope("tenant".into()),
                            );
                        }
                    }
                }
                Some(b) => {
                    let idle = t - b.events.last;
                    if b.events.n > 0 && idle > cfg.dormant_days * 86_400 {
                        findings.push(Finding::new(
                            "dormant_actor",
                            prior::DORMANT,
                            format!(
                                "{} made no provisioning change for {} days before this one",
                                event.actor.label(),
                                idle / 86_400
                            ),
                        ));
                    }
                }
            }
        }

        // --- volume burst by this actor. Changes context explains (for people onboarding or
        // moving: the sync that sets up a starting class, a re-org; inside a change window) are
        // set aside: the burst is what is left.
        {
            let all = burst_window(ev.actor_recent, event, cfg);
            let total = all.len();
            // Setting changes aside only shrinks the count: below the minimum either way, the
            // directory need not be read (most events, on the hot path).
            let in_window: Vec<&EventSummary> = if total + 1 < cfg.burst_min_events {
                all
            } else {
                all.into_iter()
                    .filter(|s| !explained_change(e, ev.ctx, cfg, s))
                    .collect()
            };
            let onboarding = total - in_window.len();
            let k = in_window.len() + 1;
            let (mean, peak) = actor_b
                .as_ref()
                .map(|b| (b.bursts.mean(b.events.n), b.bursts.settled_peak()))
                .unwrap_or((0.0, 0));
            if k >= cfg.burst_min_events && k > peak as usize {
                // Events per active window are Poisson around the actor's mean; a quiet or new
                // actor is held to one change per window.
                let rate = mean.max(1.0);
                let p = poisson_tail(k as u64, rate);
                if p <= cfg.finding_p {
                    let by_action = tally(
                        in_window
                            .iter()
                            .map(|s| s.action.as_str())
                            .chain([event.action.as_str()]),
                    );
                    let mix = by_action
                        .iter()
                        .map(|(a, n)| format!("{n} {a}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let mut detail = format!(
                        "{} made {k} changes in {} minutes ({mix}); before, at most {peak} in any {} minutes and {rate:.1} on average when active",
                        event.actor.label(),
                        cfg.burst_window_minutes,
                        cfg.burst_window_minutes
                    );
                    if onboarding > 0 {
                        detail.push_str(&format!(
                            "; {onboarding} more explained by the directory (people onboarding or moving) or a change window not counted"
                        ));
                    }
                    let mut f = Finding::new("volume_burst", p, detail)
                        .scope(format!("actor:{}", e.actor_key));
                    if let Some(first) = ev.burst_alerted {
                        // One alert per burst: later events of it are kept, not paged again.
                        notes.push(ContextNote {
                            kind: "burst".into(),
                            detail: format!(
                                "part of the burst already alerted as event {first}; {k} changes so far (p = {p:.1e})"
                            ),
                            effect: "lowered".into(),
                        });
                        f.p = 1.0;
                        held_by = Some(first.to_owned());
                    }
                    findings.push(f);
                }
            }
        }

        // --- volume burst across the tenant: many changes in minutes from several actors, each
        // perhaps within their own habit. One actor's own burst is reported above instead.
        if !findings.iter().any(|f| f.code == "volume_burst") {
            let mut in_window = burst_window(ev.tenant_recent, event, cfg);
            // Bulk work context explains is not part of the tenant's habit, nor of a burst.
            if in_window.len() + 1 >= cfg.tenant_burst_min_events {
                in_window.retain(|s| !explained_change(e, ev.ctx, cfg, s));
            }
            let k = in_window.len() + 1;
            let tenant_b = get(&ScopeKey::tenant(tenant))
                .filter(|b| b.events.w >= cfg.min_evidence)
                .map(|b| (b.bursts.mean(b.events.n), b.bursts.settled_peak()));
            if let Some((mean, peak)) =
                tenant_b.filter(|(_, peak)| k >= cfg.tenant_burst_min_events && k > *peak as usize)
            {
                let rate = mean.max(1.0);
                let p = poisson_tail(k as u64, rate);
                let by_actor = tally(
                    in_window
                        .iter()
                        .map(|s| s.actor.as_str())
                        .chain([e.actor_key.as_str()]),
                );
                let actors = by_actor.len();
                // Most of it from one actor is that actor's burst, judged by their own habit
                // (an automation's sync run, a PIM expiry sweep), not the tenant's.
                let spread = by_actor[0].1 * 2 <= k;
                if p <= cfg.finding_p && spread {
                    let mut top = by_actor
                        .iter()
                        .take(3)
                        .map(|(a, n)| format!("{a} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    if actors > 3 {
                        top.push_str(&format!(", {} others {}", actors - 3, {
                            by_actor[3..].iter().map(|(_, n)| n).sum::<usize>()
                        }));
                    }
                    let mut f = Finding::new(
                        "volume_burst",
                        p,
                        format!(
                            "{tenant} saw {k} changes in {} minutes from {actors} actor{} (top: {top}); before, at most {peak} in any {} minutes and {rate:.1} on average when active",
                            cfg.burst_window_minutes,
                            if actors == 1 { "" } else { "s" },
                            cfg.burst_window_minutes
                        ),
                    )
                    .scope(format!("tenant:{tenant}"));
                    let window = crate::time::minutes(cfg.burst_window_minutes);
                    if let Some(first) =
                        ongoing_burst_alert(ev.tenant_recent, event.time, window, &event.id)
                    {
                        // One alert per burst, whoever's change set it off.
                        notes.push(ContextNote {
                            kind: "burst".into(),
                            detail: format!(
                                "part of the burst already alerted as event {}; {k} changes in the tenant so far (p = {p:.1e})",
                                first.id
                            ),
                            effect: "lowered".into(),
                        });
                        f.p = 1.0;
                        held_by.get_or_insert_with(|| first.id.clone());
                    }
                    findings.push(f);
                }
            }
        }

        // --- approval workflow.
        if e.needs_approval {
            match e.approval {
                Some(a) => notes.push(ContextNote {
                    kind: "approval".into(),
                    detail: approved_in(a),
                    effect: "lowered".into(),
                }),
                None => {
                    if let Some(r) = &event.approval_ref {
                        notes.push(ContextNote {
                            kind: "approval".into(),
                            detail: format!("the event carries an approval reference: {r}"),
                            effect: "lowered".into(),
                        });
                    } else if !ev.ctx.approvals.is_empty() {
                        // The tenant's record once it has enough privileged grants, else the
                        // one pooled over all tenants. Only its raw counts are read, which decay
                        // does not change: no decayed copy of the baseline is needed.
                        let record = [ScopeKey::tenant(tenant), ScopeKey::tenant(GLOBAL)]
                            .iter()
                            .filter_map(|k| ev.baselines.get(k))
                            .map(|b| b.unapproved)
                            .find(|r| r.n as f64 >= cfg.min_evidence);
                        findings.push(missing_approval(
                            e,
                            record,
                            ent_label.as_deref(),
                            ev.ctx.approvals.len(),
                            cfg,
                        ));
                    }
                }
            }
        }

        // --- workflow: a privileged grant through a channel the actor never uses for them
        // (an admin who always grants through the IdP workflow now does it in the console).
        if grant && tier.is_privileged() && !pim_activation {
            if let Some(b) = actor_b.as_ref() {
                let (here, total) = b.channel_share(tier, &event.channel);
                if total >= cfg.min_evidence {
                    let p = (here + 1.0) / (total + 1.0);
                    if p <= cfg.finding_p {
                        let prefix = format!("{}:", tier.as_str());
                        let usual = b
                            .channels
                            .iter()
                            .filter_map(|(k, w)| k.strip_prefix(&prefix).map(|c| (c, *w)))
                            .max_by(|a, b| a.1.total_cmp(&b.1))
                            .map(|(c, _)| c.to_owned())
                            .unwrap_or_default();
                        findings.push(
                            Finding::new(
                                "outside_workflow",
                                p,
                                format!(
                                    "{} granted {} ({tier}) through {}; {:.1} of {:.1} of their {tier} grants went that way (usually {usual})",
                                    event.actor.label(),
                                    ent_label.as_deref().unwrap_or("access"),
                                    event.channel,
                                    here,
                                    total,
                                ),
                            )
                            .scope(format!("actor:{}", e.actor_key)),
                        );
                    }
                }
            }
        }

        // --- self-grant.
        // A credential for oneself (an access key, a password) is self-service, not a grant.
        if grant
            && !pim_activation
            && event.action != Action::CreateCredential
            && tier != Privilege::ReadOnly
            && event.is_self_change()
        {
            let admin = tier == Privilege::Admin;
            let mut f = Finding::new(
                "self_grant",
                if admin {
                    prior::SELF_GRANT_ADMIN
                } else {
                    prior::SELF_GRANT
                },
                format!(
                    "{} granted {} ({tier}) to themselves",
                    event.actor.label(),
                    ent_label.as_deref().unwrap_or("access")
                ),
            );
            f.protected = admin;
            findings.push(f);
        }

        // --- escalation chain: created then privileged by the same actor within minutes; or a
        // guest made a member, then privileged, within days (by anyone).
        if grant && tier.is_privileged() {
            let since = crate::time::before(
                event.time,
                crate::time::minutes(cfg.escalation_window_minutes),
            );
            let guest_since =
                crate::time::before(event.time, crate::time::days(cfg.guest_escalation_days));
            let created = ev.target_recent.iter().find(|s| {
                s.action == Action::CreateAccount
                    && s.time >= since
                    && s.time <= event.time
                    && s.actor.eq_ignore_ascii_case(event.actor.label())
            });
            let converted = ev
                .target_recent
                .iter()
                .filter(|s| {
                    s.entitlement.as_deref() == Some(GUEST_TO_MEMBER)
                        && s.action.is_grant()
                        && s.time >= guest_since
                        && s.time <= event.time
                        && s.id != event.id
                })
                .max_by_key(|s| s.time);
            if let Some(created) = created {
                let mins = (event.time - created.time).num_minutes();
                findings.push(Finding::new(
                    "escalation_chain",
                    prior::ESCALATION,
                    format!(
                        "{} created {} {mins} minutes earlier (event {}) and now granted {} ({tier})",
                        event.actor.label(),
                        event.target.label(),
                        created.id,
                        ent_label.as_deref().unwrap_or("access")
                    ),
                ));
            } else if let Some(c) = converted {
                let ago = event.time - c.time;
                let ago = if ago.num_days() >= 1 {
                    format!("{} days", ago.num_days())
                } else {
                    format!("{} minutes", ago.num_minutes())
                };
                let by = if c.actor.eq_ignore_ascii_case(event.actor.label()) {
                    "by the same actor".to_owned()
                } else {
                    format!("by {}", c.actor)
                };
                findings.push(Finding::new(
                    "escalation_chain",
                    prior::GUEST_ESCALATION,
                    format!(
                        "{} was a guest made a member {ago} earlier ({by}, event {}) and is now granted {} ({tier})",
                        event.target.label(),
                        c.id,
                        ent_label.as_deref().unwrap_or("access")
                    ),
                ));
            }
        }

        // --- e-mail hygiene at account creation.
        if event.action == Action::CreateAccount {
            findings.extend(email_findings(e, ev.ctx));
        }
    }

    // --- context: lower what business data explains; never what must not be explained away.
    apply_context(e, cfg, &mut findings, &mut notes);
    // An admin grant at an hour its people do not work (the 2 a.m. admin grant) keeps its own
    // weight once context has had its say: history that holds as high a score (an on-call
    // weekend's odd app) does not dilute it. A change window can still explain it.
    if tier == Privilege::Admin {
        for f in findings.iter_mut().filter(|f| f.code == "off_hours") {
            f.protected = true;
        }
    }

    // The tenant's own calibration once mature, else the one pooled over all tenants.
    let calibration = [ScopeKey::tenant(tenant), ScopeKey::tenant(GLOBAL)]
        .iter()
        .filter_map(|k| ev.baselines.get(k))
        .map(|b| &b.calibration)
        .find(|c| c.n >= cfg.min_calibration);
    let mut verdict = combine(e, findings, notes, cfg, calibration);
    verdict.held_by = held_by;
    verdict
}

/// A privileged grant with no approval on file. Where the tenant's workflow is established
/// (`min_evidence` privileged grants seen, at most `approval_policy_miss_rate` of them
/// unapproved) it is a breach of the tenant's own practice: rule evidence that history does not
/// dilute. Otherwise its p-value is the tenant's share of unapproved privileged grants, or the
/// prior while there is too little history to tell. Privileged grants are few and the practice
/// is stable, so this counts grants in the baseline window rather than decayed weights.
fn missing_approval(
    e: &Enriched<'_>,
    history: Option<crate::baseline::Rate>,
    entitlement: Option<&str>,
    loaded: usize,
    cfg: &DetectConfig,
) -> Finding {
    let event = e.event;
    let what = format!(
        "no approval on file for {} to receive {} ({loaded} approvals loaded)",
        event.target.label(),
        entitlement.unwrap_or("this entitlement"),
    );
    // Privileged grants are few and the practice is stable: the gate counts them, not their
    // decayed weight.
    match history.filter(|r| r.n as f64 >= cfg.min_evidence) {
        Some(r) if r.n_hits as f64 <= cfg.approval_policy_miss_rate * r.n as f64 => {
            let mut f = Finding::new(
                "missing_approval",
                prior::MISSING_APPROVAL_POLICY,
                format!(
                    "{what}; {} of {} privileged grants before it had one, so the approval workflow is the norm here",
                    r.n - r.n_hits,
                    r.n
                ),
            );
            f.protected = true;
            f
        }
        Some(r) => Finding::new(
            "missing_approval",
            (r.n_hits as f64 + 0.5) / (r.n as f64 + 1.0),
            format!(
                "{what}; {} of {} privileged grants before it had none either",
                r.n_hits, r.n
            ),
        ),
        None => Finding::new("missing_approval", prior::MISSING_APPROVAL, what),
    }
}

fn email_findings(e: &Enriched<'_>, ctx: &Context) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(addr) = e
        .event
        .target
        .email
        .as_deref()
        .or_else(|| e.event.target.name.as_deref().filter(|n| n.contains('@')))
    else {
        return out;
    };
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return out;
    };
    if ctx.domains.is_empty() {
        return out;
    }
    if !ctx.is_own_domain(domain) {
        if let Some(l) = email::lookalike(domain, &ctx.domains) {
            // A brand name with a word added may be a sister company not listed as the
            // tenant's own: weaker than an imitation of the domain itself.
            let p = match l {
                email::Lookalike::Combo { .. } => prior::COMBO_LOOKALIKE,
                _ => prior::LOOKALIKE,
            };
            let mut f = Finding::new(
                "email_lookalike_domain",
                p,
                format!("new account {addr} uses {domain}, {}", l.explain()),
            );
            f.protected = true;
            out.push(f);
        } else if let Some(p) = e.target.filter(|p| {
            p.employment_type
                .as_deref()
                .is_none_or(|t| t.eq_ignore_ascii_case("employee"))
        }) {
            out.push(Finding::new(
                "email_external_domain",
                prior::EXTERNAL,
                format!(
                    "{} is in the directory as an employee{} but the new account uses the external domain {domain}",
                    p.display_name.as_deref().unwrap_or(&p.email),
                    p.department
                        .as_deref()
                        .map(|d| format!(" of {d}"))
                        .unwrap_or_default()
                ),
            ));
        } else if e.event.target.department.is_some() {
            out.push(Finding::new(
                "email_external_domain",
                prior::EXTERNAL,
                format!(
                    "an account for the {} department was created with the external domain {domain}",
                    e.event.target.department.as_deref().unwrap_or_default()
                ),
            ));
        }
    } else if e.target.is_none() && !ctx.people.is_empty() {
        if let Some((person, d)) = email::nearest_local_part(local, domain, &ctx.people) {
            // Rule evidence like a lookalike domain: no baseline rate behind it, and no context
            // can explain it (the address is not in the directory), so scores of other kinds
            // in the calibration do not dilute it.
            let mut f = Finding::new(
                "email_typo",
                prior::TYPO,
                format!(
                    "{addr} is not in the directory; {} (edit distance {d}) is{}",
                    person.email,
                    person
                        .display_name
                        .as_deref()
                        .map(|n| format!(" {n}'s address"))
                        .unwrap_or_else(|| " a directory address".into())
                ),
            );
            f.protected = true;
            out.push(f);
        }
    }
    out
}

fn apply_context(
    e: &Enriched<'_>,
    cfg: &DetectConfig,
    findings: &mut [Finding],
    notes: &mut Vec<ContextNote>,
) {
    let event = e.event;
    let actor_ids = &e.actor_ids;
    let break_glass = cfg
        .break_glass
        .iter()
        .any(|b| actor_ids.iter().any(|a| a.eq_ignore_ascii_case(b)));
    if break_glass {
        for f in findings.iter_mut() {
            f.protected = true;
        }
        notes.push(ContextNote {
            kind: "break_glass".into(),
            detail: format!("{} is a break-glass account", event.actor.label()),
            effect: "confirmed".into(),
        });
    }
    // Onboarding: a directory start date near the event explains account creation and the
    // first standard grants.
    if let Some(start) = e.target.and_then(|p| p.start_date) {
        let days = (event.time.date_naive() - start).num_days();
        if onboarding_days(days, cfg) && !event.privilege().is_privileged() {
            lower(
                findings,
                notes,
                &[
                    "rare_entitlement_for_department",
                    "rare_entitlement_for_actor",
                    "first_in_tenant",
                    "volume_burst",
                ],
                f64::INFINITY,
                Some(ContextNote {
                    kind: "onboarding".into(),
                    detail: format!(
                        "{} starts {start} (directory); {} days from the change",
                        e.target_name(),
                        days.abs()
                    ),
                    effect: "lowered".into(),
                }),
            );
        }
    }

    // A move (directory `team_since` near the event, outside onboarding): the mover's access
    // follows their new team, so who makes the changes and how many at once are explained —
    // an admin moving a team by hand in a re-org is not a burst. What the change grants is
    // still judged against the new department, and privileged grants are never explained.
    if let Some(since) = e.target.and_then(|p| p.team_since) {
        let days = (event.time.date_naive() - since).num_days();
        let onboarding = e.target.and_then(|p| p.start_date).is_some_and(|start| {
            onboarding_days((event.time.date_naive() - start).num_days(), cfg)
        });
        if onboarding_days(days, cfg) && !onboarding && !event.privilege().is_privileged() {
            lower(
                findings,
                notes,
                &["rare_entitlement_for_actor", "volume_burst"],
                f64::INFINITY,
                Some(ContextNote {
                    kind: "move".into(),
                    detail: format!(
                        "{} moved to {} on {since} (directory); {} days from the change",
                        e.target_name(),
                        e.target_team
                            .as_deref()
                            .or(e.target_department.as_deref())
                            .unwrap_or("a new team"),
                        days.abs()
                    ),
                    effect: "lowered".into(),
                }),
            );
        }
    }

    // A department's own group: a non-privileged group or app named after the target's
    // directory department or team (`security@`, `team-security-operations`, "Sales Team") is
    // what anyone in it is given, by a person or by directory sync — the first such grant in an
    // identity provider that never saw the department is a move or a new team, not a rare grant.
    if let (Some(ent), false) = (&event.entitlement, event.privilege().is_privileged()) {
        let unit = [
            ("department", e.target_department.as_deref()),
            ("team", e.target_team.as_deref()),
        ]
        .into_iter()
        .find_map(|(kind, name)| {
            name.filter(|n| names_unit(ent.label(), n))
                .map(|n| (kind, n))
        });
        if let Some((kind, name)) = unit {
            lower(
                findings,
                notes,
                RARITY,
                100.0,
                Some(ContextNote {
                    kind: "department_group".into(),
                    detail: format!(
                        "{} is named after {}'s {kind}, {name} (directory)",
                        ent.label(),
                        e.target_name(),
                    ),
                    effect: "lowered".into(),
                }),
            );
        }
    }

    // An approval on file lowers a rare grant (its note is already there). It says the person
    // may have the access, not that 2 a.m. is a normal time to grant it: timing stays.
    if let Some(i) = notes.iter().position(|n| n.kind == "approval") {
        let n = notes.remove(i);
        lower(findings, notes, RARITY, 100.0, Some(n.clone()));
        if !notes.iter().any(|x| x.kind == "approval") {
            notes.insert(i.min(notes.len()), n);
        }
    }

    // A change window explains bulk work and odd hours by its actors.
    if let Some(w) = e.change_window {
        lower(
            findings,
            notes,
            &["volume_burst", "off_hours"],
            f64::INFINITY,
            Some(ContextNote {
                kind: "change_window".into(),
                detail: format!(
                    "inside change window {}{}",
                    w.id,
                    w.description
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ),
                effect: "lowered".into(),
            }),
        );
    }

    if event.channel == "pim" {
        notes.push(ContextNote {
            kind: "pim_activation".into(),
            detail: "activation of an eligible role through Privileged Identity Management".into(),
            effect: "lowered".into(),
        });
    }

    // HR-driven provisioning by the identity provider's own automation (group rules, HR and
    // directory sync): it runs when the directory changes, at any hour and in waves, and grants
    // what the directory attributes say — so a first grant of an ordinary entitlement to someone
    // whose department changed is the rule at work, not a person's choice. Privileged grants keep
    // their rarity.
    // Its hour is the hour the directory changed, and its waves are the directory's, so for
    // ordinary entitlements timing and volume are no evidence at all.
    let workflow = (event.actor.kind == PrincipalKind::Service && event.channel == "workflow")
        || cfg
            .workflow_actors
            .iter()
            .any(|w| actor_ids.iter().any(|a| a.eq_ignore_ascii_case(w)));
    if workflow {
        let note = ContextNote {
            kind: "workflow".into(),
            detail: format!("automated provisioning by {}", event.actor.label()),
            effect: "lowered".into(),
        };
        if event.privilege().is_privileged() {
            lower(
                findings,
                notes,
                &["off_hours", "volume_burst", "new_actor"],
                100.0,
                Some(note),
            );
        } else {
            let before = notes.len();
            lower(
                findings,
                notes,
                &[
                    "new_actor",
                    "rare_entitlement_for_department",
                    "rare_entitlement_for_actor",
                    "first_in_tenant",
                ],
                100.0,
                Some(note.clone()),
            );
            let pushed = notes.len() > before;
            lower(
                findings,
                notes,
                &["off_hours", "volume_burst"],
                f64::INFINITY,
                (!pushed).then_some(note),
            );
        }
    }
}

/// The findings that say a grant is rare: what an explanation of why this person gets this
/// entitlement (an approval, their department's own group) weighs down.
const RARITY: &[&str] = &[
    "rare_entitlement_for_department",
    "rare_entitlement_for_actor",
    "first_in_tenant",
];

/// Days from a directory start date (or move date) that count as onboarding (or a move).
fn onboarding_days(days: i64, cfg: &DetectConfig) -> bool {
    (-cfg.onboarding_days_before..=cfg.onboarding_days_after).contains(&days)
}

/// A change that context explains as bulk work: a non-privileged change for someone the
/// directory has starting or moving around its date, or one made inside a change window of its
/// actor. It is not counted toward bursts (nor toward the habit they are measured against).
///
/// For an event inside a change window itself, the window's changes are left in: the window
/// then explains the whole burst, and the verdict says so.
fn explained_change(e: &Enriched<'_>, ctx: &Context, cfg: &DetectConfig, s: &EventSummary) -> bool {
    directory_explains(ctx.person([s.target.as_str()]), s.time, s.privilege, cfg)
        || (e.change_window.is_none()
            && ctx.change_window_for(&[s.actor.as_str()], s.time).is_some())
}

/// Whether the directory has the person starting or moving around `time`, for a change that
/// is not privileged.
fn directory_explains(
    person: Option<&Person>,
    time: DateTime<Utc>,
    privilege: Option<Privilege>,
    cfg: &DetectConfig,
) -> bool {
    !privilege.is_some_and(Privilege::is_privileged)
        && person.is_some_and(|p| {
            [p.start_date, p.team_since]
                .into_iter()
                .flatten()
                .any(|day| onboarding_days((time.date_naive() - day).num_days(), cfg))
        })
}

/// "approved in TICKET by APPROVER".
fn approved_in(a: &Approval) -> String {
    match &a.approved_by {
        Some(b) => format!("approved in {} by {b}", a.ticket),
        None => format!("approved in {}", a.ticket),
    }
}

/// Whether an entitlement's name is a department's or team's name: the words of the name, with
/// an e-mail domain and words like "team", "all" or "group" left out, are the unit's words.
fn names_unit(entitlement: &str, unit: &str) -> bool {
    const FILLER: &[&str] = &[
        "all",
        "team",
        "teams",
        "group",
        "grp",
        "dept",
        "department",
        "members",
        "staff",
        "users",
        "org",
    ];
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .filter(|w| !FILLER.contains(&w.as_str()))
            .collect()
    };
    let local = entitlement.split('@').next().unwrap_or(entitlement);
    let (a, b) = (words(local), words(unit));
    !a.is_empty() && a == b
}

/// Weighs down unprotected findings with these codes: their p-value is multiplied by `factor`
/// (`f64::INFINITY`: fully explained, kept only in the note). The note says what it changed and
/// is added when anything changed; with no note, the changes are appended to the last note.
fn lower(
    findings: &mut [Finding],
    notes: &mut Vec<ContextNote>,
    codes: &[&str],
    factor: f64,
    note: Option<ContextNote>,
) {
    let mut changes = Vec::new();
    for f in findings.iter_mut().filter(|f| codes.contains(&f.code)) {
        if f.protected {
            continue;
        }
        let before = f.p;
        f.p = (f.p * factor).min(1.0);
        changes.push(if factor.is_infinite() {
            format!("explains {} (p = {:.1e}: {})", f.code, before, f.detail)
        } else {
            format!("lowers {} (p {:.1e} → {:.1e})", f.code, before, f.p)
        });
    }
    if changes.is_empty() {
        return;
    }
    let suffix = format!("; {}", changes.join("; "));
    match note {
        Some(mut n) => {
            n.detail.push_str(&suffix);
            notes.push(n);
        }
        None => {
            if let Some(n) = notes.last_mut() {
                n.detail.push_str(&suffix);
            }
        }
    }
}

/// Score 0–100 from a calibrated p-value: 12.5 points per decade (p = 1e-4 → 50,
/// p = 1e-6 → 75, p = 1e-8 → 100).
pub fn score_from_p(p: f64) -> u8 {
    (-p.log10() * 12.5).clamp(0.0, 100.0).round() as u8
}

pub fn severity_for(score: u8) -> Severity {
    match score {
        90.. => Severity::Critical,
        70.. => Severity::High,
        50.. => Severity::Medium,
        25.. => Severity::Low,
        _ => Severity::Info,
    }
}

/// The scoring statistic: decades of evidence of the strongest finding, plus half those of
/// the others (detectors overlap, so agreement counts, but not in full), plus the stakes of
/// the entitlement. 0 when no detector reported anything. Its distribution on benign events is
/// what the calibration turns into a p-value.
pub fn statistic(ps: &[f64], privilege: Privilege) -> f64 {
    if ps.is_empty() {
        return 0.0;
    }
    let mut decades: Vec<f64> = ps.iter().map(|p| -p.max(1e-15).log10()).collect();
    decades.sort_by(|a, b| b.total_cmp(a));
    decades[0]
        + 0.5 * decades[1..].iter().sum::<f64>()
        + match privilege {
            Privilege::Admin => 1.0,
            Privilege::Elevated => 0.5,
            _ => 0.0,
        }
}

/// A deterministic number in [0, 1) from an event id (conformal tie-breaking).
fn tie_breaker(id: &str) -> f64 {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

fn combine(
    e: &Enriched<'_>,
    findings: Vec<Finding>,
    notes: Vec<ContextNote>,
    cfg: &DetectConfig,
    calibration: Option<&Calibration>,
) -> Verdict {
    let event = e.event;
    let kept: Vec<&Finding> = findings.iter().filter(|f| f.p <= cfg.finding_p).collect();
    let ps: Vec<f64> = kept.iter().map(|f| f.p).collect();
    let stat = statistic(&ps, event.privilege());
    // Calibrated on the tenant's benign events once there are enough of them; before that the
    // statistic itself is the evidence, scaled so `uncalibrated_alert_statistic` scores 50.
    let calibrated =
        calibration.and_then(|c| c.p_value(stat, tie_breaker(&event.id), cfg.min_calibration));
    // Findings that nothing may discount (a lookalike of the tenant's own domain, an admin
    // self-grant, a break-glass actor's change) keep their own weight: history that happens to
    // hold similar scores does not dilute them.
    let protected = kept
        .iter()
        .filter(|f| f.protected)
        .map(|f| f.p)
        .fold(1.0, f64::min);
    let calibrated = calibrated.map(|p| p.min(protected));
    let (p, score) = match calibrated {
        Some(p) => (p, if kept.is_empty() { 0 } else { score_from_p(p) }),
        None => (
            if kept.is_empty() {
                1.0
            } else {
                10f64.powf(-stat)
            },
            (stat / cfg.uncalibrated_alert_statistic * 50.0)
                .round()
                .clamp(0.0, 100.0) as u8,
        ),
    };
    let mut reasons: Vec<Reason> = kept
        .iter()
        .map(|f| Reason {
            code: f.code.to_owned(),
            detail: f.detail.clone(),
            p_value: round_sig(f.p),
            scope: f.scope.clone(),
        })
        .collect();
    reasons.sort_by(|a, b| a.p_value.total_cmp(&b.p_value));
    let severity = severity_for(score);
    Verdict {
        event_id: event.id.clone(),
        source: event.source.clone(),
        tenant: event.tenant.clone(),
        time: event.time,
        action: event.action,
        actor: event.actor.label().to_owned(),
        target: event.target.label().to_owned(),
        entitlement: event.entitlement.as_ref().map(|x| x.label().to_owned()),
        privilege: event.entitlement.as_ref().map(|x| x.privilege),
        score,
        p_value: round_sig(p),
        severity,
        alert: score >= cfg.alert_score,
        reasons,
        context: notes,
        history: Vec::new(),
        feedback: None,
        held_by: None,
        statistic: round_sig(stat),
    }
}

fn round_sig(p: f64) -> f64 {
    if p <= 0.0 || !p.is_finite() {
        return p;
    }
    let mag = 10f64.powi(3 - p.log10().ceil() as i32);
    (p * mag).round() / mag
}

/// The events of `recent` in the burst window that ends with `event` (the event itself apart).
fn burst_window<'a>(
    recent: &'a [EventSummary],
    event: &Event,
    cfg: &DetectConfig,
) -> Vec<&'a EventSummary> {
    let since = crate::time::before(event.time, crate::time::minutes(cfg.burst_window_minutes));
    recent
        .iter()
        .filter(|s| s.time >= since && s.time <= event.time && s.id != event.id)
        .collect()
}

/// How many times each value occurs, most frequent first (ties by value).
fn tally<'a>(values: impl Iterator<Item = &'a str>) -> Vec<(&'a str, usize)> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    counts
}

/// The first event that alerted for a burst still under way: walking back from `now` through
/// `recent` (any order) while no gap between changes is longer than `window`. A burst that
/// outlasts one window stays one burst.
pub fn ongoing_burst_alert<'a>(
    recent: &'a [EventSummary],
    now: DateTime<Utc>,
    window: Duration,
    exclude_id: &str,
) -> Option<&'a EventSummary> {
    let mut back: Vec<&EventSummary> = recent
        .iter()
        .filter(|s| s.time <= now && s.id != exclude_id)
        .collect();
    back.sort_by(|a, b| b.time.cmp(&a.time).then(b.id.cmp(&a.id)));
    let mut edge = now;
    let mut first = None;
    for s in back {
        if edge - s.time > window {
            break;
        }
        if s.burst_alert {
            first = Some(s);
        }
        edge = s.time;
    }
    first
}

/// Upper tail of a Poisson distribution, P(X ≥ k).
pub fn poisson_tail(k: u64, lambda: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    // 1 - P(X ≤ k-1), summed in log space for stability.
    let mut term = (-lambda).exp();
    let mut cdf = term;
    for i in 1..k {
        term *= lambda / i as f64;
        cdf += term;
    }
    (1.0 - cdf).max(
        // Guard against cancellation for tiny tails: first term of the tail.
        (-lambda + k as f64 * lambda.ln() - ln_factorial(k)).exp(),
    )
}

fn ln_factorial(k: u64) -> f64 {
    (1..=k).map(|i| (i as f64).ln()).sum()
}

/// Start of the history window attached to alerts.
pub fn history_since(event_time: DateTime<Utc>, cfg: &DetectConfig) -> DateTime<Utc> {
    crate::time::before(event_time, crate::time::days(cfg.history_days))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statistic_counts_the_strongest_finding_in_full_and_the_others_by_half() {
        assert_eq!(statistic(&[], Privilege::Admin), 0.0);
        let s = statistic(&[1e-3, 1e-2], Privilege::Standard);
        assert!((s - 4.0).abs() < 1e-9, "{s}");
        let admin = statistic(&[1e-3], Privilege::Admin);
        assert!((admin - 4.0).abs() < 1e-9, "{admin}");
    }

    #[test]
    fn a_group_named_after_a_department_or_team_is_recognised() {
        assert!(names_unit("security@quillon.example", "Security"));
        assert!(names_unit(
            "security-operations-team@quillon.example",
            "Security Operations"
        ));
        assert!(names_unit(
            "team-security-operations",
            "Security Operations"
        ));
        assert!(names_unit("Sales Team", "Sales"));
        assert!(names_unit("eng_all", "Eng"));
        assert!(!names_unit("security-alerts@quillon.example", "Security"));
        assert!(!names_unit("board-materials@quillon.example", "Finance"));
        assert!(!names_unit("all-staff", "Sales"));
        assert!(
            !names_unit("team", "Team"),
            "only filler words name nothing"
        );
    }

    #[test]
    fn poisson_tail_matches_known_values() {
        // P(X >= 5 | λ = 1) = 0.00366
        assert!((poisson_tail(5, 1.0) - 0.003_66).abs() < 1e-4);
        assert!((poisson_tail(1, 2.0) - (1.0 - (-2.0f64).exp())).abs() < 1e-12);
    }

    #[test]
    fn scores_map_to_severities() {
        assert_eq!(score_from_p(1e-4), 50);
        assert_eq!(severity_for(score_from_p(1e-4)), Severity::Medium);
        assert_eq!(severity_for(score_from_p(1e-6)), Severity::High);
        assert_eq!(score_from_p(1.0), 0);
        assert_eq!(severity_for(95), Severity::Critical);
    }
}
