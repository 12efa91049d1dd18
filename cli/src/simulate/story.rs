//! What happens in the organisation, day by day: hires, leavers, movers, access requests,
//! approved privileged grants, automation — and, in the test period, the injected anomalies and
//! the decoys that look unusual but are fine.
//!
//! Events are abstract here ([`Ev`]); `render` writes them in each source's raw format.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::catalog::{Catalog, Kind, Src, Tier};
use super::clock::{at_local, is_weekend};
use super::lookalike;
use super::org::{DEPTS, ENGINEERING, IT, Org, Origin, Person, Role, SECURITY, Team, Window};
use super::random::Rand;

pub type T = DateTime<Utc>;

/// The label classes of `labels.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    OffHoursAdmin,
    RareEntitlementDepartment,
    LookalikeDomain,
    LocalPartTypo,
    MissingApproval,
    BulkBurst,
    SelfGrant,
    CreateThenAdmin,
    NewActorPrivileged,
    SlowDrip,
    DecoyOnboarding,
    DecoyChangeWindow,
    DecoyReorg,
    DecoyNightAutomation,
}

impl Class {
    pub const ALL: [Class; 14] = [
        Class::OffHoursAdmin,
        Class::RareEntitlementDepartment,
        Class::LookalikeDomain,
        Class::LocalPartTypo,
        Class::MissingApproval,
        Class::BulkBurst,
        Class::SelfGrant,
        Class::CreateThenAdmin,
        Class::NewActorPrivileged,
        Class::SlowDrip,
        Class::DecoyOnboarding,
        Class::DecoyChangeWindow,
        Class::DecoyReorg,
        Class::DecoyNightAutomation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::OffHoursAdmin => "off_hours_admin",
            Class::RareEntitlementDepartment => "rare_entitlement_department",
            Class::LookalikeDomain => "lookalike_domain",
            Class::LocalPartTypo => "local_part_typo",
            Class::MissingApproval => "missing_approval",
            Class::BulkBurst => "bulk_burst",
            Class::SelfGrant => "self_grant",
            Class::CreateThenAdmin => "create_then_admin",
            Class::NewActorPrivileged => "new_actor_privileged",
            Class::SlowDrip => "slow_drip",
            Class::DecoyOnboarding => "decoy_onboarding",
            Class::DecoyChangeWindow => "decoy_change_window",
            Class::DecoyReorg => "decoy_reorg",
            Class::DecoyNightAutomation => "decoy_night_automation",
        }
    }

    pub fn is_decoy(self) -> bool {
        self.as_str().starts_with("decoy_")
    }
}

/// Automation principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bot {
    /// Okta's system principal: HR (Workday) imports, group rules, group-based app assignment.
    OktaSystem,
    /// Okta Workflows: licence reclamation and JIT expiry.
    OktaWorkflows,
    /// Entra provisioning (HR-driven inbound provisioning).
    EntraSync,
    /// Entra Privileged Identity Management.
    MsPim,
    /// Google Workspace directory sync (a service account).
    GoogleSync,
    /// Terraform in CI, nightly apply of the infrastructure repository.
    Terraform,
    /// IAM Identity Center acting on its own (roles for account assignments).
    SsoService,
    /// Okta's SCIM client provisioning Atlassian.
    ScimClient,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    P(usize),
    Bot(Bot),
}

#[derive(Debug, Clone)]
pub enum Op {
    Create,
    /// Entra B2B invitation of an external address.
    Invite,
    Activate,
    Disable,
    Delete,
    Grant(u32),
    Revoke(u32),
    /// Entra PIM activation of an eligible role, with its justification.
    PimActivate(u32, String),
    PimExpire(u32),
    /// An IAM user creates an access key for itself.
    SelfKey,
    RoleCreate {
        account: u8,
        role: String,
        sso: bool,
    },
    RoleAttach {
        account: u8,
        role: String,
        policy: String,
        custom: bool,
        detach: bool,
    },
    RoleInline {
        account: u8,
        role: String,
    },
    MoveOu(String),
    /// A SCIM group PATCH adding and removing several members at once.
    ScimGroup {
        ent: u32,
        add: Vec<usize>,
        remove: Vec<usize>,
    },
    /// Not a provisioning change (sign-in, read, profile edit): dropped by the normalizers.
    Noise,
}

#[derive(Debug, Clone)]
pub struct Ev {
    pub t: T,
    pub src: Src,
    pub who: Who,
    pub target: Option<usize>,
    pub op: Op,
    pub label: Option<Class>,
    /// Made through the API by a script (rather than in a console).
    pub api: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Approval {
    pub ticket: String,
    pub target: String,
    pub entitlement: String,
    pub approved_by: String,
    pub approved_at: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ChangeWindow {
    pub id: String,
    pub start: String,
    pub end: String,
    pub actors: Vec<String>,
    pub description: String,
}

#[derive(Debug, Clone)]
struct Planned {
    class: Class,
    actor: Option<usize>,
    people: Vec<usize>,
    ent: Option<u32>,
}

pub fn rfc3339(t: T) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[derive(Debug)]
pub struct Story {
    pub org: Org,
    pub cat: Catalog,
    pub w: Window,
    rng: Rand,
    inj: Rand,
    pub events: Vec<Ev>,
    pub approvals: Vec<Approval>,
    pub windows: Vec<ChangeWindow>,
    held: Vec<Vec<u32>>,
    dept_seen: HashSet<(usize, u32)>,
    granted: HashSet<u32>,
    /// Grant events per entitlement in the history (what the event log shows as normal).
    hist_grants: BTreeMap<u32, u32>,
    new_actors: HashSet<String>,
    pending: BTreeMap<NaiveDate, Vec<(usize, u32)>>,
    provision: BTreeMap<NaiveDate, Vec<usize>>,
    plan: BTreeMap<NaiveDate, Vec<Planned>>,
    busy: Vec<(usize, T, T)>,
    scale: f64,
    import_hour: f64,
    eng_prod: Vec<usize>,
    engineers: Vec<usize>,
    it_pool: Vec<usize>,
    security: Vec<usize>,
    ticket: u32,
    /// Anomaly instances per class (a burst or a slow-drip campaign counts once per event).
    pub per_class: usize,
}

const TF_POLICIES: &[&str] = &[
    "app-s3-read",
    "app-sqs-consumer",
    "app-secrets-read",
    "app-dynamodb-rw",
    "ci-ecr-push",
    "app-kms-decrypt",
];
const TF_APPS: &[&str] = &[
    "orders",
    "ledger",
    "payouts",
    "catalog",
    "search",
    "notifier",
    "ingest",
    "billing",
    "fraud-score",
    "exports",
    "gateway",
    "reports",
];

impl Story {
    pub fn new(org: Org, cat: Catalog, w: Window, seed: u64) -> Story {
        let directory = org.people.iter().filter(|p| p.in_directory()).count();
        let scale = directory as f64 / 1000.0;
        let mut rng = Rand::new(seed, 2);
        let import_hour = rng.uniform(9.5, 12.5);
        let n = org.people.len();
        let mut s = Story {
            org,
            cat,
            w,
            rng,
            inj: Rand::new(seed, 3),
            events: Vec::new(),
            approvals: Vec::new(),
            windows: Vec::new(),
            held: vec![Vec::new(); n],
            dept_seen: HashSet::new(),
            granted: HashSet::new(),
            hist_grants: BTreeMap::new(),
            new_actors: HashSet::new(),
            pending: BTreeMap::new(),
            provision: BTreeMap::new(),
            plan: BTreeMap::new(),
            busy: Vec::new(),
            scale,
            import_hour,
            eng_prod: Vec::new(),
            engineers: Vec::new(),
            it_pool: Vec::new(),
            security: Vec::new(),
            ticket: 10_000,
            per_class: ((2.0 + scale * 1.25).round() as usize).max(3),
        };
        s.per_class = s.per_class.max(3);
        s
    }

    /// Plans the test period's injections, then lives every day of the window.
    pub fn run(&mut self) {
        self.make_plan();
        self.setup();
        let days: Vec<NaiveDate> = self.w.days().collect();
        for d in days {
            self.day(d);
        }
        let ts = self.test_start_t();
        for e in &mut self.events {
            if e.who == Who::Bot(Bot::Terraform) && e.t >= ts && e.label.is_none() {
                e.label = Some(Class::DecoyNightAutomation);
            }
        }
        self.events.sort_by_key(|e| e.t);
        self.approvals
            .sort_by(|a, b| a.approved_at.cmp(&b.approved_at));
        self.windows.sort_by(|a, b| a.start.cmp(&b.start));
    }

    fn test_start_t(&self) -> T {
        day_start(self.w.test_start)
    }

    // ------------------------------------------------------------------------------------------
    // state
    // ------------------------------------------------------------------------------------------

    fn setup(&mut self) {
        let n = self.org.people.len();
        self.held = vec![Vec::new(); n];
        for i in 0..n {
            let p = &self.org.people[i];
            if p.origin == Origin::Fake {
                continue;
            }
            let team = &self.org.teams[p.team].name;
            if matches!(
                team.as_str(),
                "Platform" | "Data" | "Payments" | "Infrastructure" | "Reliability"
            ) && p.dept == ENGINEERING
                && p.end.is_none()
            {
                self.eng_prod.push(i);
            }
            if p.dept == ENGINEERING && p.end.is_none() {
                self.engineers.push(i);
            }
            if (p.dept == IT || p.dept == SECURITY || p.role == Role::PlatformEng)
                && p.end.is_none()
            {
                self.it_pool.push(i);
            }
            if p.dept == SECURITY && p.end.is_none() {
                self.security.push(i);
            }
            if p.origin == Origin::Wave {
                continue;
            }
            let lead = if p.contractor {
                0
            } else {
                1 + self.rng.range(0, 6) as i64
            };
            let mut prov = p.start - Duration::days(lead);
            while is_weekend(prov) {
                prov -= Duration::days(1);
            }
            if prov >= self.w.hist_start {
                self.provision.entry(prov).or_default().push(i);
            } else {
                // an account from before the window: core access plus some optional access
                let (dept, team) = p.unit_on(self.w.hist_start);
                let team = self.org.teams[team].name.clone();
                let atl = p.atlassian;
                let mut core = Vec::new();
                for src in [Src::Okta, Src::Entra, Src::Google] {
                    core.extend(self.cat.core_of(src, dept, &team));
                }
                if atl {
                    core.push(self.cat.get(Kind::ScimGroup, "jira-software-users"));
                    core.push(self.cat.get(Kind::ScimGroup, "confluence-users"));
                }
                for e in core {
                    self.give_unit(i, e, dept);
                }
                for (e, w) in self.cat.optional_of(dept, &team) {
                    if self.rng.chance((w / 10.0).min(0.45)) {
                        self.give_unit(i, e, dept);
                    }
                }
                if self.org.people[i].iam_user {
                    let dev = self.cat.get(Kind::IamGroup, "developers");
                    self.give_unit(i, dev, dept);
                }
            }
        }
        // privileged standing access of the IT staff
        for i in self.it_pool.clone() {
            let opts = self.privileged_options(i);
            if !opts.is_empty() && self.rng.chance(0.5) {
                let k = self.rng.weighted_index(opts.iter().map(|o| o.1));
                let dept = self.org.people[i].dept;
                self.give_unit(i, opts[k].0, dept);
            }
        }
    }

    fn has(&self, p: usize, e: u32) -> bool {
        self.held[p].contains(&e)
    }

    fn give_unit(&mut self, p: usize, e: u32, dept: usize) {
        if !self.held[p].contains(&e) {
            self.held[p].push(e);
        }
        self.dept_seen.insert((dept, e));
        self.granted.insert(e);
    }

    fn give(&mut self, p: usize, e: u32, day: NaiveDate) {
        let dept = self.org.people[p].unit_on(day).0;
        self.give_unit(p, e, dept);
    }

    fn take(&mut self, p: usize, e: u32) {
        self.held[p].retain(|x| *x != e);
    }

    fn take_later(&mut self, p: usize, e: u32, at: T) {
        self.pending
            .entry(at.date_naive() + Duration::days(1))
            .or_default()
            .push((p, e));
    }

    // ------------------------------------------------------------------------------------------
    // emitting
    // ------------------------------------------------------------------------------------------

    fn emit(
        &mut self,
        t: T,
        src: Src,
        who: Who,
        target: Option<usize>,
        op: Op,
        label: Option<Class>,
    ) -> bool {
        self.emit_ev(Ev {
            t,
            src,
            who,
            target,
            op,
            label,
            api: false,
        })
    }

    fn emit_ev(&mut self, mut ev: Ev) -> bool {
        let (lo, hi) = (day_start(self.w.hist_start), day_start(self.w.test_end));
        if ev.label.is_some() {
            let ts = self.test_start_t();
            while ev.t < ts {
                ev.t += Duration::days(1);
            }
            while ev.t >= hi {
                ev.t -= Duration::days(1);
            }
        } else if ev.t < lo || ev.t >= hi {
            return false;
        }
        if let (Op::Grant(e), None) = (&ev.op, ev.label) {
            if ev.t < self.test_start_t() {
                *self.hist_grants.entry(*e).or_default() += 1;
            }
        }
        self.events.push(ev);
        true
    }

    fn grant(&mut self, t: T, who: Who, p: usize, e: u32, label: Option<Class>) {
        let src = self.cat.ent(e).src();
        self.emit(t, src, who, Some(p), Op::Grant(e), label);
    }

    fn revoke(&mut self, t: T, who: Who, p: usize, e: u32, label: Option<Class>) {
        let src = self.cat.ent(e).src();
        self.emit(t, src, who, Some(p), Op::Revoke(e), label);
    }

    fn next_ticket(&mut self, prefix: &str) -> String {
        self.ticket += 1 + self.rng.range(0, 40) as u32;
        match prefix {
            "RITM" => format!("RITM00{}", self.ticket * 3 + 11),
            p => format!("{p}-{}", self.ticket),
        }
    }

    /// Files an approval for `p` to receive `e`, valid at `t`.
    fn approve(&mut self, p: usize, e: u32, t: T, valid_hours: f64) {
        let lead = Duration::minutes(self.rng.range(12, 60 * 30) as i64);
        let at = t - lead;
        let exp =
            t + Duration::minutes((valid_hours * 60.0) as i64 + self.rng.range(30, 240) as i64);
        let person = &self.org.people[p];
        let ent = self.cat.ent(e);
        let target = if ent.kind == Kind::PermissionSet {
            person.idstore_id.clone()
        } else {
            person.email.clone()
        };
        let approver = if ent.tier == Tier::Admin || person.manager.is_none() {
            if person.dept == SECURITY {
                self.org.security_head
            } else {
                self.org.it_director
            }
        } else {
            person.manager.unwrap_or(self.org.it_director)
        };
        let approver = self.org.people[approver].email.clone();
        let prefix = if ent.kind == Kind::OktaGroup {
            "ENG"
        } else {
            *self.rng.pick(&["IAM", "RITM"])
        };
        let entitlement = ent.approval_name().to_owned();
        let ticket = self.next_ticket(prefix);
        self.approvals.push(Approval {
            ticket,
            target,
            entitlement,
            approved_by: approver,
            approved_at: rfc3339(at),
            expires_at: rfc3339(exp),
        });
    }

    // ------------------------------------------------------------------------------------------
    // time
    // ------------------------------------------------------------------------------------------

    /// A routine working moment of person `p` on their local `day`.
    fn work_time(&mut self, p: usize, day: NaiveDate) -> T {
        let person = &self.org.people[p];
        let h = person.hours.draw_time(&mut self.rng);
        at_local(person.zone(), day, h, &mut self.rng)
    }

    /// A moment inside person `p`'s core hours (no early or late work).
    fn core_time(&mut self, p: usize, day: NaiveDate) -> T {
        let hours = self.org.people[p].hours;
        let h = hours.start + 0.5 + self.rng.f() * (hours.length - 1.5);
        at_local(self.org.people[p].zone(), day, h, &mut self.rng)
    }

    fn utc_time(&mut self, day: NaiveDate, hour: f64) -> T {
        day_start(day)
            + Duration::milliseconds((hour * 3_600_000.0) as i64 + self.rng.range(0, 60_000) as i64)
    }

    fn secs(&mut self, lo: f64, hi: f64) -> Duration {
        Duration::milliseconds((self.rng.uniform(lo, hi) * 1000.0) as i64)
    }

    // ------------------------------------------------------------------------------------------
    // pickers
    // ------------------------------------------------------------------------------------------

    fn pick_person(&mut self, day: NaiveDate, ok: impl Fn(&Person) -> bool) -> Option<usize> {
        let n = self.org.people.len();
        for _ in 0..80 {
            let i = self.rng.below(n);
            let p = &self.org.people[i];
            if p.active_on(day) && p.origin != Origin::Wave && ok(p) {
                return Some(i);
            }
        }
        None
    }

    fn pick_from(&mut self, pool: &[usize], day: NaiveDate, not: Option<usize>) -> Option<usize> {
        if pool.is_empty() {
            return None;
        }
        for _ in 0..30 {
            let i = pool[self.rng.below(pool.len())];
            if self.org.people[i].active_on(day) && Some(i) != not {
                return Some(i);
            }
        }
        None
    }

    /// An optional entitlement that `p` lacks: usually from their unit, rarely the long tail.
    fn optional_for(&mut self, p: usize, day: NaiveDate, src: Option<Src>) -> Option<u32> {
        let (dept, team) = self.org.people[p].unit_on(day);
        let team = self.org.teams[team].name.clone();
        if self.rng.chance(0.05) {
            for _ in 0..5 {
                let e = *self.rng.pick(&self.cat.long_tail);
                if !self.has(p, e) && src.is_none_or(|s| self.cat.ent(e).src() == s) {
                    return Some(e);
                }
            }
        }
        let opts: Vec<(u32, f64)> = self
            .cat
            .optional_of(dept, &team)
            .into_iter()
            .filter(|(e, _)| !self.has(p, *e) && src.is_none_or(|s| self.cat.ent(*e).src() == s))
            .collect();
        if opts.is_empty() {
            return None;
        }
        let k = self.rng.weighted_index(opts.iter().map(|o| o.1));
        Some(opts[k].0)
    }

    /// Privileged entitlements that suit person `p`'s job, with weights.
    fn privileged_options(&self, p: usize) -> Vec<(u32, f64)> {
        let person = &self.org.people[p];
        let c = &self.cat;
        let team = self.org.teams[person.team].name.as_str();
        let mut v: Vec<(u32, f64)> = Vec::new();
        let mut add = |k: Kind, n: &str, w: f64| v.push((c.get(k, n), w));
        match (person.dept, team) {
            (IT, "Identity") => {
                add(Kind::OktaRole, "Super administrator", 1.0);
                add(Kind::OktaRole, "Organization administrator", 1.0);
                add(Kind::OktaRole, "Application administrator", 0.6);
                add(Kind::EntraRole, "Global Administrator", 0.7);
                add(Kind::EntraRole, "Privileged Role Administrator", 0.5);
                add(Kind::GoogleRole, "_SEED_ADMIN_ROLE", 0.5);
                add(Kind::PermissionSet, "AdministratorAccess", 0.5);
            }
            (IT, "Helpdesk") => {
                add(Kind::OktaRole, "Help Desk administrator", 2.0);
                add(Kind::OktaRole, "Group Membership administrator", 1.0);
                add(Kind::EntraRole, "Helpdesk Administrator", 1.5);
                add(Kind::EntraRole, "Groups Administrator", 0.7);
                add(Kind::EntraRole, "User Administrator", 0.7);
                add(Kind::EntraRole, "Exchange Administrator", 0.4);
                add(Kind::GoogleRole, "_HELP_DESK_ADMIN_ROLE", 1.0);
                add(Kind::GoogleRole, "_GROUPS_ADMIN_ROLE", 0.5);
                add(Kind::GoogleRole, "_USER_MANAGEMENT_ADMIN_ROLE", 0.4);
            }
            (IT, _) => {
                add(Kind::EntraRole, "Intune Administrator", 1.5);
                add(Kind::OktaRole, "Mobile administrator", 1.0);
                add(Kind::GoogleRole, "_MOBILE_ADMIN_ROLE", 0.8);
            }
            (SECURITY, _) => {
                add(Kind::EntraRole, "Security Administrator", 1.5);
                add(Kind::EntraRole, "Security Reader", 1.0);
                add(Kind::EntraRole, "Global Reader", 0.8);
                add(Kind::OktaRole, "Read only admin", 1.0);
                add(Kind::OktaRole, "Report administrator", 0.6);
                add(Kind::PermissionSet, "SecurityAudit", 0.8);
            }
            _ if person.role == Role::PlatformEng => {
                if person.iam_user {
                    add(Kind::IamPolicy, "PowerUserAccess", 1.5);
                    add(Kind::IamPolicy, "AdministratorAccess", 0.4);
                }
                add(Kind::PermissionSet, "AdministratorAccess", 0.8);
                add(Kind::OktaGroup, "prod-k8s-admins", 0.3);
            }
            _ => {}
        }
        v
    }

    // ------------------------------------------------------------------------------------------
    // one day
    // ------------------------------------------------------------------------------------------

    fn day(&mut self, d: NaiveDate) {
        if let Some(list) = self.pending.remove(&d) {
            for (p, e) in list {
                self.take(p, e);
            }
        }
        let workday = !is_weekend(d);
        if let Some(list) = self.provision.remove(&d) {
            for p in list {
                self.provision_hire(p, d, None);
            }
        }
        let n = self.org.people.len();
        for p in 0..n {
            let person = &self.org.people[p];
            if person.origin != Origin::Staff {
                continue;
            }
            let (start, contractor, end, before) =
                (person.start, person.contractor, person.end, person.before);
            if start == d && !contractor && start > self.w.hist_start {
                let t = self.core_time_of_zone(p, d, 6.5, 8.0);
                self.emit(
                    t,
                    Src::Okta,
                    Who::Bot(Bot::OktaSystem),
                    Some(p),
                    Op::Activate,
                    None,
                );
            }
            if end == Some(d) {
                self.offboard(p, d);
            }
            if end.is_some_and(|e| e + Duration::days(30) == d) {
                self.delete_accounts(p, d);
            }
            if let Some((_, _, until)) = before {
                if until == d && !self.is_reorg(p) {
                    self.move_person(p, d, None);
                }
            }
        }
        self.terraform(d);
        self.automation(d, workday);
        if workday {
            self.human_work(d);
            if d + Duration::days(1) < self.w.test_start && self.rng.chance(0.11) {
                let actor = self.pick_from(&self.org.identity.clone(), d, None);
                if let Some(a) = actor {
                    self.change_window_bulk(a, d, None);
                }
            }
        } else {
            self.on_call(d);
        }
        self.noise(d, workday);
        if let Some(plans) = self.plan.remove(&d) {
            std::mem::swap(&mut self.rng, &mut self.inj);
            for pl in plans {
                self.execute(d, pl);
            }
            std::mem::swap(&mut self.rng, &mut self.inj);
        }
    }

    fn is_reorg(&self, p: usize) -> bool {
        let person = &self.org.people[p];
        person
            .before
            .is_some_and(|(_, t, _)| self.org.teams[t].name == self.org.teams[person.team].name)
    }

    fn core_time_of_zone(&mut self, p: usize, d: NaiveDate, lo: f64, hi: f64) -> T {
        let h = self.rng.uniform(lo, hi);
        at_local(self.org.people[p].zone(), d, h, &mut self.rng)
    }

    // ------------------------------------------------------------------------------------------
    // joiners, movers, leavers
    // ------------------------------------------------------------------------------------------

    /// Creates a hire's accounts in every system with their unit's usual access. HR automation
    /// does it for employees; helpdesk creates contractors by hand in Okta.
    fn provision_hire(&mut self, p: usize, d: NaiveDate, label: Option<Class>) -> T {
        let (dept, team_idx) = self.org.people[p].unit_on(self.org.people[p].start);
        let team = self.org.teams[team_idx].name.clone();
        let contractor = self.org.people[p].contractor && label.is_none();
        let mut t;
        if contractor {
            let Some(hd) = self.pick_from(&self.org.helpdesk.clone(), d, None) else {
                return day_start(d);
            };
            t = self.core_time(hd, d);
            self.emit(t, Src::Okta, Who::P(hd), Some(p), Op::Create, None);
            for e in self.cat.core_of(Src::Okta, dept, &team) {
                t += self.secs(12.0, 75.0);
                self.grant(t, Who::P(hd), p, e, None);
                self.give(p, e, d);
            }
        } else {
            t = self.utc_time(d, self.import_hour) + self.secs(0.0, 600.0);
            self.emit(
                t,
                Src::Okta,
                Who::Bot(Bot::OktaSystem),
                Some(p),
                Op::Create,
                label,
            );
            for e in self.cat.core_of(Src::Okta, dept, &team) {
                t += self.secs(0.4, 3.0);
                self.grant(t, Who::Bot(Bot::OktaSystem), p, e, label);
                self.give(p, e, d);
            }
            if label.is_some() {
                t += self.secs(1.0, 4.0);
                self.emit(
                    t,
                    Src::Okta,
                    Who::Bot(Bot::OktaSystem),
                    Some(p),
                    Op::Activate,
                    label,
                );
            }
        }
        let t0 = t;
        // Entra: inbound provisioning cycle
        let mut te = t0 + self.secs(600.0, 2400.0);
        self.emit(
            te,
            Src::Entra,
            Who::Bot(Bot::EntraSync),
            Some(p),
            Op::Create,
            label,
        );
        for e in self.cat.core_of(Src::Entra, dept, &team) {
            te += self.secs(2.0, 20.0);
            self.grant(te, Who::Bot(Bot::EntraSync), p, e, label);
            self.give(p, e, d);
        }
        // Google: directory sync
        let mut tg = t0 + self.secs(240.0, 900.0);
        self.emit(
            tg,
            Src::Google,
            Who::Bot(Bot::GoogleSync),
            Some(p),
            Op::Create,
            label,
        );
        for e in self.cat.core_of(Src::Google, dept, &team) {
            tg += self.secs(1.0, 6.0);
            self.grant(tg, Who::Bot(Bot::GoogleSync), p, e, label);
            self.give(p, e, d);
        }
        // Atlassian over SCIM
        if self.org.people[p].atlassian {
            let mut ts = t0 + self.secs(30.0, 180.0);
            self.emit(
                ts,
                Src::Scim,
                Who::Bot(Bot::ScimClient),
                Some(p),
                Op::Create,
                label,
            );
            let mut groups = vec![
                self.cat.get(Kind::ScimGroup, "jira-software-users"),
                self.cat.get(Kind::ScimGroup, "confluence-users"),
            ];
            if matches!(DEPTS[dept].name, "Support" | "IT") {
                groups.push(self.cat.get(Kind::ScimGroup, "jira-servicedesk-agents"));
            }
            for e in groups {
                ts += self.secs(1.0, 8.0);
                self.grant(ts, Who::Bot(Bot::ScimClient), p, e, label);
                self.give(p, e, d);
            }
        }
        // engineers: AWS access through IAM Identity Center within their first days
        if label.is_none() && dept == ENGINEERING {
            let ps = match team.as_str() {
                "Data" | "Machine Learning" => "DataEngineer",
                "Platform" | "Infrastructure" | "Reliability" => "PlatformEngineer",
                _ => "Developer",
            };
            let e = self.cat.get(Kind::PermissionSet, ps);
            let start = self.org.people[p].start;
            let mut day = start + Duration::days(self.rng.range(0, 3) as i64);
            while is_weekend(day) {
                day += Duration::days(1);
            }
            if let Some(adm) = self.pick_from(&self.org.identity.clone(), day, None) {
                let t = self.work_time(adm, day);
                self.sso_assign(t, adm, p, e, None);
                self.give(p, e, day);
                if self.org.people[p].iam_user {
                    let t2 = t + self.secs(120.0, 1800.0);
                    self.emit(t2, Src::Aws, Who::P(adm), Some(p), Op::Create, None);
                    let dev = self.cat.get(Kind::IamGroup, "developers");
                    let dt = self.secs(20.0, 90.0);

                    self.grant(t2 + dt, Who::P(adm), p, dev, None);
                    self.give(p, dev, day);
                }
            }
        }
        t
    }

    fn sso_assign(&mut self, t: T, adm: usize, p: usize, e: u32, label: Option<Class>) {
        self.grant(t, Who::P(adm), p, e, label);
        if self.rng.chance(0.25) {
            // first assignment of the permission set in that account: Identity Center creates
            // the AWSReservedSSO_* role and attaches the set's policy (service side effects)
            let name = &self.cat.ent(e).name;
            let role = format!("AWSReservedSSO_{name}_{}", self.rng.hex(16));
            let policy = match name.as_str() {
                "PlatformEngineer" => "PowerUserAccess",
                "DataEngineer" => "AmazonS3ReadOnlyAccess",
                "AdministratorAccess" => "AdministratorAccess",
                "SecurityAudit" => "SecurityAudit",
                _ => "ReadOnlyAccess",
            };
            let account = 1 + self.rng.below(2) as u8;
            let t1 = t + self.secs(2.0, 9.0);
            self.emit(
                t1,
                Src::Aws,
                Who::Bot(Bot::SsoService),
                None,
                Op::RoleCreate {
                    account,
                    role: role.clone(),
                    sso: true,
                },
                None,
            );
            let t2 = t1 + self.secs(0.5, 2.0);
            self.emit(
                t2,
                Src::Aws,
                Who::Bot(Bot::SsoService),
                None,
                Op::RoleAttach {
                    account,
                    role,
                    policy: policy.to_owned(),
                    custom: false,
                    detach: false,
                },
                None,
            );
        }
    }

    fn offboard(&mut self, p: usize, d: NaiveDate) {
        let person = &self.org.people[p];
        let contractor = person.contractor;
        let atl = person.atlassian;
        let mut t = if contractor {
            match self.pick_from(&self.org.helpdesk.clone(), d, None) {
                Some(hd) => {
                    let t = self.core_time(hd, d);
                    self.emit(t, Src::Okta, Who::P(hd), Some(p), Op::Disable, None);
                    t
                }
                None => return,
            }
        } else {
            let t = self.core_time_of_zone(p, d, 17.5, 19.5);
            self.emit(
                t,
                Src::Okta,
                Who::Bot(Bot::OktaSystem),
                Some(p),
                Op::Disable,
                None,
            );
            t
        };
        let apps: Vec<u32> = self.held[p]
            .iter()
            .copied()
            .filter(|e| self.cat.ent(*e).kind == Kind::OktaApp)
            .collect();
        for e in apps {
            t += self.secs(0.5, 2.5);
            self.revoke(t, Who::Bot(Bot::OktaSystem), p, e, None);
        }
        let te = t + self.secs(900.0, 3600.0);
        self.emit(
            te,
            Src::Entra,
            Who::Bot(Bot::EntraSync),
            Some(p),
            Op::Disable,
            None,
        );
        let tg = t + self.secs(300.0, 1200.0);
        self.emit(
            tg,
            Src::Google,
            Who::Bot(Bot::GoogleSync),
            Some(p),
            Op::Disable,
            None,
        );
        if atl {
            let ts = t + self.secs(20.0, 120.0);
            self.emit(
                ts,
                Src::Scim,
                Who::Bot(Bot::ScimClient),
                Some(p),
                Op::Disable,
                None,
            );
        }
        if self.org.people[p].iam_user {
            let mut nd = d + Duration::days(1);
            while is_weekend(nd) {
                nd += Duration::days(1);
            }
            if let Some(adm) = self.pick_from(&self.org.identity.clone(), nd, None) {
                let t = self.work_time(adm, nd);
                let groups: Vec<u32> = self.held[p]
                    .iter()
                    .copied()
                    .filter(|e| self.cat.ent(*e).kind == Kind::IamGroup)
                    .collect();
                let mut t2 = t;
                for e in groups {
                    self.revoke(t2, Who::P(adm), p, e, None);
                    t2 += self.secs(10.0, 40.0);
                }
                let dt = self.secs(5.0, 30.0);

                self.emit(t2 + dt, Src::Aws, Who::P(adm), Some(p), Op::Delete, None);
            }
        }
        self.held[p].clear();
    }

    fn delete_accounts(&mut self, p: usize, d: NaiveDate) {
        let h = 6.0 + self.rng.f();
        let t = self.utc_time(d, h);
        self.emit(
            t,
            Src::Okta,
            Who::Bot(Bot::OktaWorkflows),
            Some(p),
            Op::Delete,
            None,
        );
        let t2 = t + self.secs(600.0, 3000.0);
        self.emit(
            t2,
            Src::Google,
            Who::Bot(Bot::GoogleSync),
            Some(p),
            Op::Delete,
            None,
        );
        if self.org.people[p].atlassian {
            let dt = self.secs(30.0, 200.0);

            self.emit(
                t + dt,
                Src::Scim,
                Who::Bot(Bot::ScimClient),
                Some(p),
                Op::Delete,
                None,
            );
        }
        if self.rng.chance(0.5) {
            let dt = self.secs(1000.0, 5000.0);

            self.emit(
                t + dt,
                Src::Entra,
                Who::Bot(Bot::EntraSync),
                Some(p),
                Op::Delete,
                None,
            );
        }
    }

    /// A transfer: the HR import changes the department; group rules and syncs move the
    /// person's core access. With `by` set, the named admins do the group changes by hand.
    fn move_person(&mut self, p: usize, d: NaiveDate, by: Option<(usize, T, Class)>) -> T {
        let (od, ot) = self.org.people[p].unit_on(d - Duration::days(1));
        let (nd, nt) = (self.org.people[p].dept, self.org.people[p].team);
        let (ot, nt) = (
            self.org.teams[ot].name.clone(),
            self.org.teams[nt].name.clone(),
        );
        let label = by.map(|b| b.2);
        let mut t = match by {
            Some((_, t, _)) => t,
            None => self.utc_time(d, self.import_hour) + self.secs(0.0, 900.0),
        };
        let who = |src: Src| match (by, src) {
            (Some((a, _, _)), _) => Who::P(a),
            (None, Src::Okta) => Who::Bot(Bot::OktaSystem),
            (None, Src::Entra) => Who::Bot(Bot::EntraSync),
            (None, _) => Who::Bot(Bot::GoogleSync),
        };
        for src in [Src::Okta, Src::Entra, Src::Google] {
            let old = self.cat.core_of(src, od, &ot);
            let new = self.cat.core_of(src, nd, &nt);
            if src == Src::Google && by.is_none() && od != nd {
                t += self.secs(2.0, 8.0);
                let ou = format!("/{}/{}", DEPTS[nd].name, nt);
                self.emit(t, src, who(src), Some(p), Op::MoveOu(ou), None);
            }
            for e in old.iter().filter(|e| !new.contains(e)) {
                t += if by.is_some() {
                    self.secs(6.0, 30.0)
                } else {
                    self.secs(0.5, 3.0)
                };
                self.revoke(t, who(src), p, *e, label);
                self.take(p, *e);
            }
            for e in new.iter().filter(|e| !old.contains(e)) {
                t += if by.is_some() {
                    self.secs(6.0, 30.0)
                } else {
                    self.secs(0.5, 3.0)
                };
                self.grant(t, who(src), p, *e, label);
                self.give(p, *e, d);
            }
        }
        let held = self.held[p].clone();
        for e in held {
            self.dept_seen.insert((nd, e));
        }
        t
    }

    // ------------------------------------------------------------------------------------------
    // automation
    // ------------------------------------------------------------------------------------------

    fn terraform(&mut self, d: NaiveDate) {
        for account in [1u8, 2u8] {
            let h = self.rng.uniform(1.6, 2.6);
            let mut t = self.utc_time(d, h);
            let n = 1 + self.rng.poisson(1.5 + self.scale.sqrt() * 1.2);
            for _ in 0..n {
                t += self.secs(25.0, 200.0);
                let app = *self.rng.pick(TF_APPS);
                let env = if account == 1 { "prod" } else { "staging" };
                let role = format!("svc-{app}-{env}");
                let x = self.rng.f();
                let op = if x < 0.25 {
                    Op::RoleCreate {
                        account,
                        role,
                        sso: false,
                    }
                } else if x < 0.78 {
                    let policy = (*self.rng.pick(TF_POLICIES)).to_owned();
                    Op::RoleAttach {
                        account,
                        role,
                        policy,
                        custom: true,
                        detach: false,
                    }
                } else if x < 0.92 {
                    Op::RoleInline { account, role }
                } else {
                    let policy = (*self.rng.pick(TF_POLICIES)).to_owned();
                    Op::RoleAttach {
                        account,
                        role,
                        policy,
                        custom: true,
                        detach: true,
                    }
                };
                self.emit(t, Src::Aws, Who::Bot(Bot::Terraform), None, op, None);
            }
        }
    }

    fn automation(&mut self, d: NaiveDate, workday: bool) {
        let s = self.scale;
        // Okta group rules re-evaluated after profile changes
        for _ in 0..self.rng.poisson(2.5 * s) {
            let Some(p) = self.pick_person(d, |_| true) else {
                continue;
            };
            let Some(e) = self.optional_for(p, d, Some(Src::Okta)) else {
                continue;
            };
            if self.cat.ent(e).kind != Kind::OktaGroup {
                continue;
            }
            let h = *self.rng.pick(&[5.0, 9.0, 13.0, 17.0, 21.0]) + self.rng.f() * 0.5;
            let t = self.utc_time(d, h);
            self.grant(t, Who::Bot(Bot::OktaSystem), p, e, None);
            self.give(p, e, d);
        }
        // Okta Workflows: licence reclamation of unused apps (weekday mornings)
        if workday {
            let mut t = self.utc_time(d, 6.0);
            for _ in 0..self.rng.poisson(5.0 * s) {
                let Some(p) = self.pick_person(d, |_| true) else {
                    continue;
                };
                let opts: Vec<u32> = self.held[p]
                    .iter()
                    .copied()
                    .filter(|e| {
                        self.cat.ent(*e).kind == Kind::OktaApp && !self.cat.all.core.contains(e)
                    })
                    .filter(|e| !self.cat.dept.iter().any(|b| b.core.contains(e)))
                    .collect();
                if opts.is_empty() {
                    continue;
                }
                let e = *self.rng.pick(&opts);
                t += self.secs(20.0, 400.0);
                self.revoke(t, Who::Bot(Bot::OktaWorkflows), p, e, None);
                self.take(p, e);
            }
        }
        // Google: group memberships mirrored from Okta by the sync service
        for _ in 0..self.rng.poisson(3.5 * s) {
            let Some(p) = self.pick_person(d, |_| true) else {
                continue;
            };
            let hour = self.rng.range(0, 24) as f64 + 0.25;
            let t = self.utc_time(d, hour);
            if self.rng.chance(0.7) {
                let Some(e) = self.optional_for(p, d, Some(Src::Google)) else {
                    continue;
                };
                self.grant(t, Who::Bot(Bot::GoogleSync), p, e, None);
                self.give(p, e, d);
            } else {
                let opts: Vec<u32> = self.optional_held(p, Src::Google);
                if let Some(&e) = opts.first() {
                    self.revoke(t, Who::Bot(Bot::GoogleSync), p, e, None);
                    self.take(p, e);
                }
            }
        }
        // Entra: licensing and device groups from the provisioning cycle, at night
        for _ in 0..self.rng.poisson(1.8 * s) {
            let Some(p) = self.pick_person(d, |_| true) else {
                continue;
            };
            let Some(e) = self.optional_for(p, d, Some(Src::Entra)) else {
                continue;
            };
            if self.cat.ent(e).kind != Kind::EntraGroup {
                continue;
            }
            let h = 3.0 + self.rng.f() * 1.5;
            let t = self.utc_time(d, h);
            self.grant(t, Who::Bot(Bot::EntraSync), p, e, None);
            self.give(p, e, d);
        }
        // Atlassian: group push over SCIM (sometimes several members in one PATCH)
        for _ in 0..self.rng.poisson(2.5 * s) {
            let groups = [
                self.cat.get(Kind::ScimGroup, "jira-software-users"),
                self.cat.get(Kind::ScimGroup, "confluence-users"),
                self.cat.get(Kind::ScimGroup, "jira-servicedesk-agents"),
            ];
            let e = *self.rng.pick(&groups);
            let k = if self.rng.chance(0.2) {
                2 + self.rng.below(4)
            } else {
                1
            };
            let mut add = Vec::new();
            let mut remove = Vec::new();
            for _ in 0..k {
                let Some(p) = self.pick_person(d, |q| q.atlassian) else {
                    continue;
                };
                if add.contains(&p) || remove.contains(&p) {
                    continue;
                }
                let servicedesk_ok = matches!(self.org.dept_name(p), "Support" | "IT");
                if self.has(p, e) {
                    if self.rng.chance(0.4) {
                        remove.push(p);
                    }
                } else if e != groups[2] || servicedesk_ok {
                    add.push(p);
                }
            }
            if add.is_empty() && remove.is_empty() {
                continue;
            }
            let hour = self.rng.uniform(7.0, 22.0);
            let t = self.utc_time(d, hour);
            for &p in &add {
                self.give(p, e, d);
            }
            for &p in &remove {
                self.take(p, e);
            }
            if add.len() + remove.len() == 1 {
                match (add.first(), remove.first()) {
                    (Some(&p), _) => self.grant(t, Who::Bot(Bot::ScimClient), p, e, None),
                    (_, Some(&p)) => self.revoke(t, Who::Bot(Bot::ScimClient), p, e, None),
                    _ => {}
                }
            } else {
                self.emit(
                    t,
                    Src::Scim,
                    Who::Bot(Bot::ScimClient),
                    None,
                    Op::ScimGroup {
                        ent: e,
                        add,
                        remove,
                    },
                    None,
                );
            }
        }
    }

    fn optional_held(&self, p: usize, src: Src) -> Vec<u32> {
        let person = &self.org.people[p];
        let team = &self.org.teams[person.team].name;
        let core: Vec<u32> = self.cat.core_of(src, person.dept, team);
        self.held[p]
            .iter()
            .copied()
            .filter(|e| {
                self.cat.ent(*e).src() == src && !core.contains(e) && !self.cat.ent(*e).privileged()
            })
            .filter(|e| !self.cat.all.core.contains(e))
            .collect()
    }

    // ------------------------------------------------------------------------------------------
    // people who provision
    // ------------------------------------------------------------------------------------------

    fn human_work(&mut self, d: NaiveDate) {
        let s = self.scale;
        let helpdesk = self.org.helpdesk.clone();
        let identity = self.org.identity.clone();
        let hd_rate = 17.0 * s / helpdesk.len().max(1) as f64;
        let id_rate = 7.0 * s / identity.len().max(1) as f64;
        for &hd in &helpdesk {
            if !self.org.people[hd].active_on(d) || self.rng.chance(0.07) {
                continue; // away
            }
            for _ in 0..self.rng.poisson(hd_rate) {
                self.access_request(hd, d);
            }
            for _ in 0..self.rng.poisson(hd_rate * 0.3) {
                self.removal(hd, d);
            }
        }
        for &adm in &identity {
            if !self.org.people[adm].active_on(d) || self.rng.chance(0.07) {
                continue;
            }
            for _ in 0..self.rng.poisson(id_rate) {
                self.access_request(adm, d);
            }
            for _ in 0..self.rng.poisson(id_rate * 0.25) {
                self.removal(adm, d);
            }
            if self.rng.chance(0.4) {
                let roles = [
                    "Global Administrator",
                    "Privileged Role Administrator",
                    "Exchange Administrator",
                    "User Administrator",
                ];
                let role = *self.rng.pick(&roles);
                self.pim(adm, d, role);
            }
        }
        for i in self.security.clone() {
            if self.rng.chance(0.06) && self.org.people[i].active_on(d) {
                self.pim(i, d, "Security Administrator");
            }
        }
        // JIT production access, approved, taken back within hours
        for _ in 0..self.rng.poisson(self.eng_prod.len() as f64 / 30.0) {
            self.jit(d);
        }
        // periodic privileged grants, approved
        for _ in 0..self.rng.poisson((1.5 * s).max(0.6)) {
            self.privileged_grant(d, None);
        }
        // AWS: Identity Center assignments, IAM groups and read-only policies
        for _ in 0..self.rng.poisson(1.5 * s) {
            let Some(adm) = self.pick_from(&identity, d, None) else {
                break;
            };
            let Some(p) = self.pick_from(&self.engineers.clone(), d, Some(adm)) else {
                break;
            };
            let sets = ["ReadOnly", "Developer", "DataEngineer", "PlatformEngineer"];
            let set = *self.rng.pick(&sets);
            let e = self.cat.get(Kind::PermissionSet, set);
            let t = self.work_time(adm, d);
            if self.has(p, e) {
                if self.rng.chance(0.3) {
                    self.revoke(t, Who::P(adm), p, e, None);
                    self.take(p, e);
                }
                continue;
            }
            self.sso_assign(t, adm, p, e, None);
            self.give(p, e, d);
        }
        for _ in 0..self.rng.poisson(1.0 * s) {
            let Some(adm) = self.pick_from(&identity, d, None) else {
                break;
            };
            let Some(p) = self.pick_person(d, |q| q.iam_user) else {
                break;
            };
            let team = self.org.teams[self.org.people[p].team].name.as_str();
            let opts: &[(Kind, &str)] = match team {
                "Platform" => &[
                    (Kind::IamGroup, "platform-engineers"),
                    (Kind::IamPolicy, "ReadOnlyAccess"),
                ],
                "Data" => &[
                    (Kind::IamGroup, "data-engineers"),
                    (Kind::IamPolicy, "AmazonS3ReadOnlyAccess"),
                ],
                _ => &[
                    (Kind::IamGroup, "payments-deployers"),
                    (Kind::IamPolicy, "ReadOnlyAccess"),
                ],
            };
            let (k, n) = *self.rng.pick(opts);
            let e = self.cat.get(k, n);
            let t = self.work_time(adm, d);
            if self.has(p, e) {
                self.revoke(t, Who::P(adm), p, e, None);
                self.take(p, e);
            } else {
                self.grant(t, Who::P(adm), p, e, None);
                self.give(p, e, d);
            }
        }
        // engineers rotate their own access keys
        for _ in 0..self.rng.poisson(0.4 * s) {
            if let Some(p) = self.pick_person(d, |q| q.iam_user) {
                let t = self.work_time(p, d);
                self.emit(t, Src::Aws, Who::P(p), Some(p), Op::SelfKey, None);
            }
        }
        // platform engineers create roles for their workloads
        for pe in self.org.platform.clone() {
            if self.org.people[pe].active_on(d) && self.rng.chance(0.06) {
                let t = self.work_time(pe, d);
                let app = *self.rng.pick(TF_APPS);
                let kind = *self.rng.pick(&["worker", "api", "job"]);
                let role = format!("svc-{app}-dev-{kind}");
                self.emit(
                    t,
                    Src::Aws,
                    Who::P(pe),
                    None,
                    Op::RoleCreate {
                        account: 2,
                        role: role.clone(),
                        sso: false,
                    },
                    None,
                );
                let policy = (*self.rng.pick(TF_POLICIES)).to_owned();
                let t2 = t + self.secs(20.0, 120.0);
                self.emit(
                    t2,
                    Src::Aws,
                    Who::P(pe),
                    None,
                    Op::RoleAttach {
                        account: 2,
                        role,
                        policy,
                        custom: true,
                        detach: false,
                    },
                    None,
                );
            }
        }
    }

    /// An access request fulfilled by `actor`: an optional entitlement for someone who lacks it.
    fn access_request(&mut self, actor: usize, d: NaiveDate) {
        let src = match self.rng.f() {
            x if x < 0.66 => Src::Okta,
            x if x < 0.83 => Src::Entra,
            _ => Src::Google,
        };
        for _ in 0..6 {
            let Some(p) = self.pick_person(d, |_| true) else {
                return;
            };
            if p == actor {
                continue;
            }
            let Some(e) = self.optional_for(p, d, Some(src)) else {
                continue;
            };
            let t = self.work_time(actor, d);
            self.grant(t, Who::P(actor), p, e, None);
            self.give(p, e, d);
            if self.rng.chance(0.3) {
                // time-limited: taken back after a while by the actor or by reclamation
                let back = d + Duration::days(self.rng.range(3, 21) as i64);
                if back < self.w.test_end && !is_weekend(back) {
                    let (who, rt) = if src == Src::Okta && self.rng.chance(0.5) {
                        {
                            let h = 6.0 + self.rng.f();
                            (Who::Bot(Bot::OktaWorkflows), self.utc_time(back, h))
                        }
                    } else {
                        (Who::P(actor), self.work_time(actor, back))
                    };
                    self.revoke(rt, who, p, e, None);
                    self.take_later(p, e, rt);
                }
            }
            return;
        }
    }

    fn removal(&mut self, actor: usize, d: NaiveDate) {
        let src = if self.rng.chance(0.7) {
            Src::Okta
        } else if self.rng.chance(0.5) {
            Src::Entra
        } else {
            Src::Google
        };
        for _ in 0..6 {
            let Some(p) = self.pick_person(d, |_| true) else {
                return;
            };
            let opts = self.optional_held(p, src);
            if opts.is_empty() || p == actor {
                continue;
            }
            let e = *self.rng.pick(&opts);
            let t = self.work_time(actor, d);
            self.revoke(t, Who::P(actor), p, e, None);
            self.take(p, e);
            return;
        }
    }

    fn pim(&mut self, p: usize, d: NaiveDate, role: &str) {
        let e = self.cat.get(Kind::EntraRole, role);
        let t = self.core_time_of_zone(
            p,
            d,
            self.org.people[p].hours.start,
            self.org.people[p].hours.start + 2.5,
        );
        let why = match self.rng.below(4) {
            0 => format!("INC-{} investigation", self.rng.range(10_000, 99_999)),
            1 => format!("CHG-{} scheduled change", self.rng.range(1000, 9999)),
            2 => "Daily admin tasks".to_owned(),
            _ => format!(
                "RITM00{} mailbox and license requests",
                self.rng.range(10_000, 99_999)
            ),
        };
        self.emit(
            t,
            Src::Entra,
            Who::Bot(Bot::MsPim),
            Some(p),
            Op::PimActivate(e, why),
            None,
        );
        let hours = *self.rng.pick(&[1i64, 2, 4, 4, 8]);
        let end = t + Duration::hours(hours);
        self.emit(
            end,
            Src::Entra,
            Who::Bot(Bot::MsPim),
            Some(p),
            Op::PimExpire(e),
            None,
        );
    }

    fn jit(&mut self, d: NaiveDate) {
        let Some(adm) = self.pick_from(&self.org.identity.clone(), d, None) else {
            return;
        };
        let Some(p) = self.pick_from(&self.eng_prod.clone(), d, Some(adm)) else {
            return;
        };
        if self.org.people[p].contractor {
            return;
        }
        let team = self.org.teams[self.org.people[p].team].name.clone();
        let group = if matches!(team.as_str(), "Platform" | "Infrastructure" | "Reliability")
            && self.rng.chance(0.5)
        {
            "prod-k8s-admins"
        } else {
            "prod-db-admins"
        };
        let e = self.cat.get(Kind::OktaGroup, group);
        if self.has(p, e) {
            return;
        }
        let t = self.core_time(adm, d);
        let hours = self.rng.uniform(1.0, 4.0);
        self.approve(p, e, t, hours + 6.0);
        self.grant(t, Who::P(adm), p, e, None);
        self.give(p, e, d);
        let rt = t + Duration::minutes((hours * 60.0) as i64);
        let who = if self.rng.chance(0.6) {
            Who::Bot(Bot::OktaWorkflows)
        } else {
            Who::P(adm)
        };
        self.revoke(rt, who, p, e, None);
        self.take_later(p, e, rt);
    }

    /// Someone who may hold admin access: IT staff most often, then Security and Platform.
    fn pick_privileged_target(&mut self, d: NaiveDate, not: usize) -> Option<usize> {
        let pool: Vec<usize> = match self.rng.weighted_index([0.6, 0.2, 0.2]) {
            0 => self
                .it_pool
                .iter()
                .copied()
                .filter(|i| self.org.people[*i].dept == IT)
                .collect(),
            1 => self.security.clone(),
            _ => self.org.platform.clone(),
        };
        self.pick_from(&pool, d, Some(not))
    }

    /// A privileged grant to someone in IT, Security or Platform, approved; often time-bound.
    /// With a label, the grant is the anomaly: `MissingApproval` skips the approval.
    fn privileged_grant(&mut self, d: NaiveDate, label: Option<Class>) -> bool {
        let Some(adm) = self.pick_from(&self.org.identity.clone(), d, None) else {
            return false;
        };
        for _ in 0..10 {
            let Some(p) = self.pick_privileged_target(d, adm) else {
                return false;
            };
            let opts: Vec<(u32, f64)> = self
                .privileged_options(p)
                .into_iter()
                .filter(|(e, _)| {
                    let ent = self.cat.ent(*e);
                    // a labelled grant must show its tier in the event (permission sets are
                    // named by their ARN there)
                    !self.has(p, *e)
                        && ent.privileged()
                        && (label.is_none() || ent.kind != Kind::PermissionSet)
                })
                .collect();
            if opts.is_empty() {
                continue;
            }
            let e = opts[self.rng.weighted_index(opts.iter().map(|o| o.1))].0;
            let t = self.core_time(adm, d);
            if label == Some(Class::MissingApproval) && self.approved(p, e, t) {
                continue;
            }
            let bounded = self.rng.chance(0.6);
            let days = self.rng.range(1, 10) as i64;
            if label.is_none() {
                self.approve(
                    p,
                    e,
                    t,
                    if bounded {
                        days as f64 * 24.0 + 12.0
                    } else {
                        24.0 * 14.0
                    },
                );
            }
            self.grant_any(t, adm, p, e, label);
            self.give(p, e, d);
            if bounded {
                let mut back = d + Duration::days(days);
                while is_weekend(back) {
                    back += Duration::days(1);
                }
                let rt = self.work_time(adm, back);
                self.revoke_any(rt, adm, p, e);
                self.take_later(p, e, rt);
            }
            return true;
        }
        false
    }

    fn approved(&self, p: usize, e: u32, t: T) -> bool {
        let person = &self.org.people[p];
        let name = self.cat.ent(e).approval_name().to_lowercase();
        let ts = rfc3339(t);
        self.approvals.iter().any(|a| {
            (a.target == person.email || a.target == person.idstore_id)
                && a.entitlement.to_lowercase() == name
                && a.approved_at <= ts
                && ts <= a.expires_at
        })
    }

    fn grant_any(&mut self, t: T, adm: usize, p: usize, e: u32, label: Option<Class>) {
        if self.cat.ent(e).kind == Kind::PermissionSet {
            self.sso_assign(t, adm, p, e, label);
        } else {
            self.grant(t, Who::P(adm), p, e, label);
        }
    }

    fn revoke_any(&mut self, t: T, adm: usize, p: usize, e: u32) {
        self.revoke(t, Who::P(adm), p, e, None);
    }

    fn on_call(&mut self, d: NaiveDate) {
        let identity = self.org.identity.clone();
        if self.rng.chance(0.3) {
            if let Some(adm) = self.pick_from(&identity, d, None) {
                for _ in 0..1 + self.rng.below(3) {
                    let h = self.rng.uniform(10.0, 17.0);
                    let Some(p) = self.pick_person(d, |_| true) else {
                        continue;
                    };
                    let Some(e) = self.optional_for(p, d, Some(Src::Okta)) else {
                        continue;
                    };
                    let t = at_local(self.org.people[adm].zone(), d, h, &mut self.rng);
                    self.grant(t, Who::P(adm), p, e, None);
                    self.give(p, e, d);
                }
            }
        }
    }

    fn noise(&mut self, d: NaiveDate, workday: bool) {
        let s = self.scale;
        let f = if workday { 1.0 } else { 0.15 };
        for _ in 0..self.rng.poisson(14.0 * s * f) {
            if let Some(p) = self.pick_person(d, |_| true) {
                let t = self.work_time(p, d);
                self.emit(t, Src::Okta, Who::P(p), None, Op::Noise, None);
            }
        }
        let aws_people: Vec<usize> = self
            .org
            .identity
            .iter()
            .chain(&self.org.platform)
            .copied()
            .collect();
        for _ in 0..self.rng.poisson(5.0 * s * f) {
            if let Some(p) = self.pick_from(&aws_people, d, None) {
                let t = self.work_time(p, d);
                let target = self.pick_person(d, |q| q.iam_user);
                self.emit(t, Src::Aws, Who::P(p), target, Op::Noise, None);
            }
        }
        let it: Vec<usize> = self
            .org
            .helpdesk
            .iter()
            .chain(&self.org.identity)
            .copied()
            .collect();
        for (src, rate) in [(Src::Entra, 3.0), (Src::Google, 2.0)] {
            for _ in 0..self.rng.poisson(rate * s * f) {
                if let (Some(a), Some(p)) =
                    (self.pick_from(&it, d, None), self.pick_person(d, |_| true))
                {
                    let t = self.work_time(a, d);
                    self.emit(t, src, Who::P(a), Some(p), Op::Noise, None);
                }
            }
        }
    }

    /// A planned bulk change by `actor` inside a change window that names them.
    fn change_window_bulk(&mut self, actor: usize, d: NaiveDate, label: Option<Class>) {
        let n = 20 + self.rng.below(26);
        let opts: [(Kind, &str, &str); 4] = [
            (
                Kind::OktaGroup,
                "vpn-users",
                "VPN concentrator migration: re-add users to vpn-users after the group rebuild",
            ),
            (
                Kind::OktaGroup,
                "confluence-editors",
                "Confluence space consolidation: grant editors on the merged spaces",
            ),
            (
                Kind::EntraGroup,
                "Intune - Corporate Devices",
                "Intune enrolment wave: add migrated laptops' owners to the device group",
            ),
            (
                Kind::OktaApp,
                "Lucidchart",
                "Visio to Lucidchart migration: assign Lucidchart to former Visio users",
            ),
        ];
        let (k, name, desc) = *self.rng.pick(&opts);
        let e = self.cat.get(k, name);
        let hours = self.org.people[actor].hours;
        let start_h = hours.start + self.rng.uniform(0.5, hours.length - 3.0);
        let start = at_local(self.org.people[actor].zone(), d, start_h, &mut self.rng);
        if self.is_busy(actor, start, start + Duration::hours(2)) {
            return;
        }
        let id = format!("CHG-{}", 4000 + self.rng.below(5000));
        let wstart = start - Duration::minutes(self.rng.range(10, 45) as i64);
        let wend = start + Duration::minutes(self.rng.range(90, 180) as i64);
        let mut t = start;
        let gap = self.rng.uniform(12.0, 45.0);
        let mut done = 0;
        for _ in 0..n * 3 {
            if done == n {
                break;
            }
            let Some(p) = self.pick_person(d, |_| true) else {
                continue;
            };
            if self.has(p, e) {
                continue;
            }
            t += self.secs(gap * 0.5, gap * 1.5);
            let api = self.rng.chance(0.5);
            let src = self.cat.ent(e).src();
            self.emit_ev(Ev {
                t,
                src,
                who: Who::P(actor),
                target: Some(p),
                op: Op::Grant(e),
                label,
                api,
            });
            self.give(p, e, d);
            done += 1;
        }
        let actor_email = self.org.people[actor].email.clone();
        self.busy.push((actor, wstart, wend.max(t)));
        self.windows.push(ChangeWindow {
            id,
            start: rfc3339(wstart),
            end: rfc3339(wend.max(t + Duration::minutes(10))),
            actors: vec![actor_email],
            description: desc.to_owned(),
        });
    }

    fn is_busy(&self, actor: usize, a: T, b: T) -> bool {
        self.busy.iter().any(|(x, s, e)| {
            *x == actor && a < *e + Duration::minutes(40) && *s - Duration::minutes(40) < b
        })
    }

    // ------------------------------------------------------------------------------------------
    // the test period's injections
    // ------------------------------------------------------------------------------------------

    fn make_plan(&mut self) {
        let w = self.w;
        let test_days: Vec<NaiveDate> = w.days().filter(|d| w.is_test(*d)).collect();
        let inner: Vec<NaiveDate> = test_days
            .iter()
            .copied()
            .filter(|d| *d > w.test_start && *d + Duration::days(1) < w.test_end)
            .collect();
        let inner = if inner.is_empty() {
            test_days.clone()
        } else {
            inner
        };
        let work: Vec<NaiveDate> = inner.iter().copied().filter(|d| !is_weekend(*d)).collect();
        let work = if work.is_empty() { inner.clone() } else { work };
        let n = self.per_class;
        let rng = &mut self.inj;
        let mut plan: Vec<(NaiveDate, Planned)> = Vec::new();
        let simple = |class| Planned {
            class,
            actor: None,
            people: Vec::new(),
            ent: None,
        };
        for class in [
            Class::OffHoursAdmin,
            Class::RareEntitlementDepartment,
            Class::LookalikeDomain,
            Class::LocalPartTypo,
            Class::MissingApproval,
            Class::BulkBurst,
            Class::SelfGrant,
            Class::CreateThenAdmin,
            Class::NewActorPrivileged,
        ] {
            for _ in 0..n {
                plan.push((*rng.pick(&work), simple(class)));
            }
        }
        // slow drip: one actor, one unusual elevated entitlement, one grant per working day
        let campaigns = ((n as f64 / 3.0).round() as usize).max(1);
        let mut helpdesk = self.org.helpdesk.clone();
        rng.shuffle(&mut helpdesk);
        for c in 0..campaigns {
            let actor = helpdesk[c % helpdesk.len()];
            let ent = self.cat.never_routine[c % self.cat.never_routine.len()];
            for d in &work {
                plan.push((
                    *d,
                    Planned {
                        class: Class::SlowDrip,
                        actor: Some(actor),
                        people: Vec::new(),
                        ent: Some(ent),
                    },
                ));
            }
        }
        for _ in 0..((n as f64 / 2.0).round() as usize).max(2) {
            plan.push((*rng.pick(&work), simple(Class::DecoyChangeWindow)));
        }
        // onboarding waves: hires starting that day, created in bulk by HR automation
        for _ in 0..((n as f64 / 4.0).round() as usize).max(1) {
            let d = *rng.pick(&work);
            let cap = (self.scale * 40.0).clamp(16.0, 40.0) as u64;
            let size = rng.range(10, cap + 1) as usize;
            let mut people = Vec::new();
            for _ in 0..size {
                let team = loop {
                    let t = rng.below(self.org.teams.len());
                    if self.org.teams[t].dept != IT {
                        break t;
                    }
                };
                let (dept, zone) = (self.org.teams[team].dept, self.org.teams[team].zone);
                let titles = self
                    .org
                    .people
                    .iter()
                    .filter(|p| p.team == team && p.manager.is_some())
                    .map(|p| p.title.clone())
                    .next()
                    .unwrap_or_else(|| "Associate".to_owned());
                let manager =
                    self.org.people.iter().position(|p| {
                        p.team == team && p.end.is_none() && p.title.contains("Manager")
                    });
                let mut p = self.org.new_person(
                    rng,
                    dept,
                    team,
                    zone,
                    titles.replace(" (Contract)", ""),
                    false,
                );
                p.start = d;
                p.origin = Origin::Wave;
                p.manager = manager;
                people.push(self.org.people.len());
                self.org.people.push(p);
            }
            plan.push((
                d,
                Planned {
                    class: Class::DecoyOnboarding,
                    actor: None,
                    people,
                    ent: None,
                },
            ));
        }
        // re-organisation: a team (or one manager's group) moves to another department
        let pairs: &[(&str, &str)] = &[
            ("Sales Operations", "Finance"),
            ("Support Operations", "Sales"),
            ("Growth", "Sales"),
            ("Procurement", "Legal"),
            ("GRC", "Legal"),
            ("Privacy", "Security"),
            ("Solutions Engineering", "Engineering"),
            ("Content", "Sales"),
            ("Payroll", "HR"),
        ];
        let mut moved_teams = HashSet::new();
        for _ in 0..((n as f64 / 8.0).round() as usize).max(1) {
            let d = *rng.pick(&work);
            let mut choices: Vec<(usize, usize)> = Vec::new();
            for (ti, t) in self.org.teams.iter().enumerate() {
                if moved_teams.contains(&ti) || t.dept == IT {
                    continue;
                }
                if let Some((_, to)) = pairs.iter().find(|(from, _)| *from == t.name) {
                    if let Some(nd) = DEPTS.iter().position(|x| x.name == *to) {
                        choices.push((ti, nd));
                    }
                }
            }
            if choices.is_empty() {
                let ti = rng.below(self.org.teams.len());
                let nd = (self.org.teams[ti].dept + 1 + rng.below(DEPTS.len() - 1)) % DEPTS.len();
                if self.org.teams[ti].dept == IT || nd == IT || moved_teams.contains(&ti) {
                    continue;
                }
                choices.push((ti, nd));
            }
            let (ti, nd) = *rng.pick(&choices);
            moved_teams.insert(ti);
            let members: Vec<usize> = (0..self.org.people.len())
                .filter(|&i| {
                    let p = &self.org.people[i];
                    p.team == ti
                        && p.origin == Origin::Staff
                        && p.end.is_none()
                        && p.before.is_none()
                        && p.start < w.hist_start
                })
                .collect();
            let moving: Vec<usize> = if members.len() <= 10 {
                members
            } else {
                // one manager and the people reporting to them
                let managers: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|m| {
                        members
                            .iter()
                            .any(|x| self.org.people[*x].manager == Some(*m))
                    })
                    .collect();
                if managers.is_empty() {
                    continue;
                }
                let m = *rng.pick(&managers);
                std::iter::once(m)
                    .chain(
                        members
                            .iter()
                            .copied()
                            .filter(|x| self.org.people[*x].manager == Some(m)),
                    )
                    .collect()
            };
            let old = self.org.teams[ti].clone();
            let new_team = self.org.teams.len();
            self.org.teams.push(Team {
                dept: nd,
                ..old.clone()
            });
            for &i in &moving {
                let p = &mut self.org.people[i];
                p.before = Some((old.dept, ti, d));
                p.dept = nd;
                p.team = new_team;
            }
            plan.push((
                d,
                Planned {
                    class: Class::DecoyReorg,
                    actor: None,
                    people: moving,
                    ent: None,
                },
            ));
        }
        for (d, p) in plan {
            self.plan.entry(d).or_default().push(p);
        }
    }

    fn execute(&mut self, d: NaiveDate, pl: Planned) {
        let c = Some(pl.class);
        let before = self.events.len();
        // an attempt may find nothing suitable (everyone already holds it, …): try again
        for _ in 0..8 {
            self.execute_once(d, &pl);
            if pl.class.is_decoy() || self.events[before..].iter().any(|e| e.label == c) {
                break;
            }
        }
    }

    fn execute_once(&mut self, d: NaiveDate, pl: &Planned) {
        let c = Some(pl.class);
        match pl.class {
            Class::OffHoursAdmin => self.off_hours_admin(d),
            Class::RareEntitlementDepartment => self.rare_entitlement(d),
            Class::LookalikeDomain => self.fake_account(d, pl.class),
            Class::LocalPartTypo => self.fake_account(d, pl.class),
            Class::MissingApproval => {
                self.privileged_grant(d, c);
            }
            Class::BulkBurst => self.bulk_burst(d),
            Class::SelfGrant => self.self_grant(d),
            Class::CreateThenAdmin => self.create_then_admin(d),
            Class::NewActorPrivileged => self.new_actor(d),
            Class::SlowDrip => {
                let (Some(actor), Some(e)) = (pl.actor, pl.ent) else {
                    return;
                };
                let Some(p) = self.pick_person(d, |q| q.dept != IT && q.dept != SECURITY) else {
                    return;
                };
                if self.has(p, e) {
                    return;
                }
                let t = self.core_time(actor, d);
                self.grant(t, Who::P(actor), p, e, c);
                self.give(p, e, d);
            }
            Class::DecoyOnboarding => {
                for &p in &pl.people {
                    self.provision_hire(p, d, c);
                }
            }
            Class::DecoyChangeWindow => {
                if let Some(a) = self.pick_from(&self.org.identity.clone(), d, None) {
                    self.change_window_bulk(a, d, c);
                }
            }
            Class::DecoyReorg => {
                let admins: Vec<usize> = self
                    .org
                    .helpdesk
                    .iter()
                    .chain(&self.org.identity)
                    .copied()
                    .collect();
                let Some(a1) = self.pick_from(&admins, d, None) else {
                    return;
                };
                let a2 = self.pick_from(&admins, d, Some(a1)).unwrap_or(a1);
                let mut t = [
                    self.core_time_of_zone(a1, d, 9.5, 11.0),
                    self.core_time_of_zone(a2, d, 13.0, 14.5),
                ];
                for (k, &p) in pl.people.iter().enumerate() {
                    let who = if k % 2 == 0 { a1 } else { a2 };
                    let slot = k % 2;
                    let end = self.move_person(p, d, Some((who, t[slot], Class::DecoyReorg)));
                    t[slot] = end + self.secs(240.0, 900.0);
                }
            }
            Class::DecoyNightAutomation => {}
        }
    }

    fn off_hours_admin(&mut self, d: NaiveDate) {
        let Some(adm) = self.pick_from(&self.org.identity.clone(), d, None) else {
            return;
        };
        for _ in 0..10 {
            let Some(p) = self.pick_privileged_target(d, adm) else {
                return;
            };
            let opts: Vec<u32> = self
                .privileged_options(p)
                .into_iter()
                .map(|o| o.0)
                .filter(|e| {
                    let ent = self.cat.ent(*e);
                    ent.tier == Tier::Admin && ent.kind != Kind::PermissionSet && !self.has(p, *e)
                })
                .collect();
            if opts.is_empty() {
                continue;
            }
            let e = *self.rng.pick(&opts);
            let h = self.rng.uniform(1.0, 4.5);
            let t = at_local(self.org.people[adm].zone(), d, h, &mut self.rng);
            self.approve(p, e, t, 24.0 * 3.0);
            self.grant_any(t, adm, p, e, Some(Class::OffHoursAdmin));
            self.give(p, e, d);
            let back = d + Duration::days(2);
            let rt = self.work_time(adm, back);
            self.revoke_any(rt, adm, p, e);
            self.take_later(p, e, rt);
            return;
        }
    }

    fn rare_entitlement(&mut self, d: NaiveDate) {
        let actors: Vec<usize> = self
            .org
            .helpdesk
            .iter()
            .chain(&self.org.identity)
            .copied()
            .collect();
        let Some(actor) = self.pick_from(&actors, d, None) else {
            return;
        };
        let prod = [
            self.cat.get(Kind::OktaGroup, "prod-db-admins"),
            self.cat.get(Kind::OktaGroup, "prod-k8s-admins"),
        ];
        for _ in 0..40 {
            let Some(p) = self.pick_person(d, |q| {
                q.dept != IT && q.dept != SECURITY && q.in_directory()
            }) else {
                return;
            };
            let dept = self.org.people[p].dept;
            let mut cands: Vec<u32> = (0..self.cat.ents.len() as u32)
                .filter(|e| {
                    let ent = self.cat.ent(*e);
                    ent.sensitive
                        && matches!(
                            ent.kind,
                            Kind::OktaGroup | Kind::OktaApp | Kind::EntraGroup | Kind::GoogleGroup
                        )
                        && self.hist_grants.get(e).is_some_and(|n| *n >= 2)
                        && !self.dept_seen.contains(&(dept, *e))
                })
                .collect();
            if self.rng.chance(0.7) {
                cands.retain(|e| !prod.contains(e));
            }
            if cands.is_empty() {
                continue;
            }
            let e = *self.rng.pick(&cands);
            let t = self.core_time(actor, d);
            self.grant(
                t,
                Who::P(actor),
                p,
                e,
                Some(Class::RareEntitlementDepartment),
            );
            self.give(p, e, d);
            return;
        }
    }

    /// An account on a lookalike domain, or with a misspelt local part, made by a helpdesk or
    /// identity person during their day.
    fn fake_account(&mut self, d: NaiveDate, class: Class) {
        let actors: Vec<usize> = self
            .org
            .helpdesk
            .iter()
            .chain(&self.org.identity)
            .copied()
            .collect();
        let Some(actor) = self.pick_from(&actors, d, None) else {
            return;
        };
        let Some(victim) = self.pick_person(d, |q| q.in_directory() && q.dept != IT) else {
            return;
        };
        let v = self.org.people[victim].clone();
        let (local, domain) = v.email.split_once('@').unwrap_or((&v.email, ""));
        let email = if class == Class::LookalikeDomain {
            let style = lookalike::any_style(&mut self.rng);
            let dom = lookalike::domain_lookalike(&mut self.rng, domain, style);
            let local = if self.rng.chance(0.65) {
                local.to_owned()
            } else {
                (*self.rng.pick(&[
                    "it-support",
                    "payroll",
                    "helpdesk",
                    "accounts",
                    "hr.benefits",
                    "ceo.office",
                ]))
                .to_owned()
            };
            format!("{local}@{dom}")
        } else {
            let typo = lookalike::local_part_typo(&mut self.rng, local);
            format!("{typo}@{domain}")
        };
        if self.org.email_taken(&email) {
            return;
        }
        self.org.reserve_email(&email);
        let mut p = self.org.new_person(
            &mut self.rng,
            v.dept,
            v.team,
            v.zone,
            v.title.clone(),
            false,
        );
        p.email = email;
        p.first = v.first.clone();
        p.last = v.last.clone();
        p.display = v.display.clone();
        p.origin = Origin::Fake;
        p.start = d;
        let idx = self.org.people.len();
        self.org.people.push(p);
        self.held.push(Vec::new());
        let t = self.core_time(actor, d);
        let src = match (class, self.rng.f()) {
            (Class::LookalikeDomain, x) if x < 0.6 => Src::Okta,
            (Class::LookalikeDomain, x) if x < 0.85 => Src::Entra,
            (Class::LookalikeDomain, _) => Src::Aws,
            (_, x) if x < 0.7 => Src::Okta,
            _ => Src::Google,
        };
        let op = if src == Src::Entra {
            Op::Invite
        } else {
            Op::Create
        };
        self.emit(t, src, Who::P(actor), Some(idx), op, Some(class));
    }

    fn bulk_burst(&mut self, d: NaiveDate) {
        let actors: Vec<usize> = self
            .org
            .helpdesk
            .iter()
            .chain(&self.org.identity)
            .copied()
            .collect();
        for _ in 0..10 {
            let Some(actor) = self.pick_from(&actors, d, None) else {
                return;
            };
            let start = self.core_time(actor, d);
            if self.is_busy(actor, start, start + Duration::minutes(15)) {
                continue;
            }
            let n = 20 + self.rng.below(41);
            let span = self.rng.uniform(5.0, 11.0) * 60.0;
            let gap = span / n as f64;
            let remove = self.rng.chance(0.25);
            let src = match self.rng.f() {
                x if x < 0.6 => Src::Okta,
                x if x < 0.8 => Src::Google,
                _ => Src::Entra,
            };
            let groups: Vec<u32> = self
                .cat
                .all
                .optional
                .iter()
                .map(|(e, _)| *e)
                .filter(|e| {
                    let ent = self.cat.ent(*e);
                    ent.src() == src
                        && matches!(
                            ent.kind,
                            Kind::OktaGroup | Kind::GoogleGroup | Kind::EntraGroup
                        )
                })
                .collect();
            let mut remove = remove;
            let mut pick = None;
            for attempt in 0..8 {
                let e = *self.rng.pick(&groups);
                let mut cands: Vec<usize> = (0..self.org.people.len())
                    .filter(|&p| {
                        p != actor
                            && self.org.people[p].active_on(d)
                            && self.org.people[p].origin == Origin::Staff
                            && self.has(p, e) == remove
                    })
                    .collect();
                if cands.len() >= n {
                    self.rng.shuffle(&mut cands);
                    cands.truncate(n);
                    pick = Some((e, cands));
                    break;
                }
                if attempt == 3 {
                    remove = false;
                }
            }
            let Some((e, targets)) = pick else { return };
            let mut t = start;
            for p in targets {
                t += self.secs(gap * 0.4, gap * 1.6);
                let label = Some(Class::BulkBurst);
                let api = self.rng.chance(0.6);
                self.emit_ev(Ev {
                    t,
                    src,
                    who: Who::P(actor),
                    target: Some(p),
                    op: if remove { Op::Revoke(e) } else { Op::Grant(e) },
                    label,
                    api,
                });
                if remove {
                    self.take(p, e);
                } else {
                    self.give(p, e, d);
                }
            }
            self.busy.push((actor, start, t));
            return;
        }
    }

    fn self_grant(&mut self, d: NaiveDate) {
        let c = Some(Class::SelfGrant);
        if self.rng.chance(0.3) {
            if let Some(pe) = self.pick_person(d, |q| q.role == Role::PlatformEng && q.iam_user) {
                let e = self.cat.get(Kind::IamPolicy, "AdministratorAccess");
                if !self.has(pe, e) {
                    let t = self.core_time(pe, d);
                    self.grant(t, Who::P(pe), pe, e, c);
                    self.give(pe, e, d);
                    return;
                }
            }
        }
        let Some(adm) = self.pick_from(&self.org.identity.clone(), d, None) else {
            return;
        };
        let opts = [
            (Kind::OktaRole, "Super administrator"),
            (Kind::EntraRole, "Global Administrator"),
            (Kind::GoogleRole, "_SEED_ADMIN_ROLE"),
            (Kind::OktaRole, "Organization administrator"),
        ];
        for _ in 0..4 {
            let (k, n) = *self.rng.pick(&opts);
            let e = self.cat.get(k, n);
            if self.has(adm, e) {
                continue;
            }
            let t = self.core_time(adm, d);
            self.grant(t, Who::P(adm), adm, e, c);
            self.give(adm, e, d);
            return;
        }
    }

    fn create_then_admin(&mut self, d: NaiveDate) {
        let Some(adm) = self.pick_from(&self.org.identity.clone(), d, None) else {
            return;
        };
        let dom = self.org.domains[0].clone();
        let local = match self.rng.below(4) {
            0 => format!(
                "svc-{}",
                *self
                    .rng
                    .pick(&["backup", "reporting", "sync", "monitoring", "migration"])
            ),
            1 => format!(
                "{}-admin",
                *self.rng.pick(&["it-ops", "break-fix", "infra", "tmp"])
            ),
            2 => {
                let f = self.org.people[self.rng.below(self.org.people.len())]
                    .first
                    .to_lowercase();
                format!("{f}.admin")
            }
            _ => format!("it-ops-backup{}", self.rng.below(10)),
        };
        let email = format!("{local}@{dom}");
        if self.org.email_taken(&email) {
            return;
        }
        self.org.reserve_email(&email);
        let (dept, team, zone) = {
            let a = &self.org.people[adm];
            (a.dept, a.team, a.zone)
        };
        let mut p = self
            .org
            .new_person(&mut self.rng, dept, team, zone, String::new(), false);
        p.email = email;
        p.display = local.replace(['-', '.'], " ");
        p.origin = Origin::Fake;
        p.start = d;
        let idx = self.org.people.len();
        self.org.people.push(p);
        self.held.push(Vec::new());
        let (src, k, n) = *self.rng.pick(&[
            (Src::Okta, Kind::OktaRole, "Super administrator"),
            (Src::Okta, Kind::OktaRole, "Super administrator"),
            (Src::Entra, Kind::EntraRole, "Global Administrator"),
            (Src::Google, Kind::GoogleRole, "_SEED_ADMIN_ROLE"),
            (Src::Aws, Kind::IamPolicy, "AdministratorAccess"),
        ]);
        let t = self.core_time(adm, d);
        self.emit(t, src, Who::P(adm), Some(idx), Op::Create, None);
        let t2 = t + Duration::seconds(self.rng.range(5 * 60, 30 * 60) as i64);
        let e = self.cat.get(k, n);
        self.grant(t2, Who::P(adm), idx, e, Some(Class::CreateThenAdmin));
    }

    fn new_actor(&mut self, d: NaiveDate) {
        let used = self.new_actors.clone();
        let Some(actor) = self.pick_person(d, |q| {
            !used.contains(&q.email)
                && q.role == Role::None
                && !q.iam_user
                && q.in_directory()
                && q.manager.is_some()
                && matches!(
                    DEPTS[q.dept].name,
                    "Security" | "Engineering" | "IT" | "Finance" | "Sales"
                )
        }) else {
            return;
        };
        self.new_actors.insert(self.org.people[actor].email.clone());
        let Some(p) = self.pick_from(&self.it_pool.clone(), d, Some(actor)) else {
            return;
        };
        let mut opts = vec![
            (Kind::OktaRole, "Super administrator"),
            (Kind::EntraRole, "Global Administrator"),
            (Kind::GoogleRole, "_SEED_ADMIN_ROLE"),
        ];
        if self.org.people[p].iam_user {
            opts.push((Kind::IamPolicy, "AdministratorAccess"));
        }
        let (k, n) = *self.rng.pick(&opts);
        let e = self.cat.get(k, n);
        let t = self.core_time(actor, d);
        self.grant(t, Who::P(actor), p, e, Some(Class::NewActorPrivileged));
        self.give(p, e, d);
    }
}

pub fn day_start(d: NaiveDate) -> T {
    DateTime::from_naive_utc_and_offset(d.and_hms_opt(0, 0, 0).expect("midnight"), Utc)
}
