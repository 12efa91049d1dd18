//! What can be granted, per source: groups, apps, admin roles, policies, permission sets, and
//! which of them a department or team usually holds.

use std::collections::BTreeMap;

use super::org::{DEPTS, Org};
use super::random::Rand;

/// The system a change is recorded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Src {
    Okta,
    Entra,
    Google,
    Aws,
    Scim,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    OktaGroup,
    OktaApp,
    OktaRole,
    EntraGroup,
    EntraRole,
    EntraApp,
    GoogleGroup,
    GoogleRole,
    IamGroup,
    IamPolicy,
    PermissionSet,
    ScimGroup,
}

impl Kind {
    pub fn src(self) -> Src {
        match self {
            Kind::OktaGroup | Kind::OktaApp | Kind::OktaRole => Src::Okta,
            Kind::EntraGroup | Kind::EntraRole | Kind::EntraApp => Src::Entra,
            Kind::GoogleGroup | Kind::GoogleRole => Src::Google,
            Kind::IamGroup | Kind::IamPolicy | Kind::PermissionSet => Src::Aws,
            Kind::ScimGroup => Src::Scim,
        }
    }
}

/// Privilege as the organisation sees it: admin and elevated grants need an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Admin,
    Elevated,
    Standard,
}

#[derive(Debug, Clone)]
pub struct Ent {
    pub kind: Kind,
    pub name: String,
    pub id: String,
    pub tier: Tier,
    /// Entra role template id / Google role id / permission set ARN … (per kind).
    pub aux: String,
    /// Entra role well-known object name.
    pub aux2: String,
    /// Only ever held by its own department (never granted elsewhere as a long-tail request).
    pub sensitive: bool,
}

impl Ent {
    pub fn src(&self) -> Src {
        self.kind.src()
    }

    pub fn privileged(&self) -> bool {
        self.tier != Tier::Standard
    }

    /// The name an approval refers to (what the normalized event calls it).
    pub fn approval_name(&self) -> &str {
        match self.kind {
            Kind::PermissionSet => &self.aux,
            _ => &self.name,
        }
    }
}

/// Entitlements of one unit, per source.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    /// Given at hire by automation.
    pub core: Vec<u32>,
    /// Requested later, with relative weights.
    pub optional: Vec<(u32, f64)>,
}

#[derive(Debug)]
pub struct Catalog {
    pub ents: Vec<Ent>,
    by_name: BTreeMap<(u8, String), u32>,
    pub all: Bundle,
    pub dept: Vec<Bundle>,
    pub team: BTreeMap<String, Bundle>,
    /// Non-sensitive optional entitlements of every unit (the long tail of legitimate requests).
    pub long_tail: Vec<u32>,
    /// Elevated entitlements routine work never grants (a slow drip uses them).
    pub never_routine: Vec<u32>,
    pub accounts: Accounts,
}

/// AWS accounts of the organisation.
#[derive(Debug, Clone)]
pub struct Accounts {
    pub management: String,
    pub prod: String,
    pub staging: String,
    pub sso_instance: String,
}

const ENTRA_ROLES: &[(&str, &str, &str, Tier)] = &[
    (
        "Global Administrator",
        "62e90394-69f5-4237-9190-012177145e10",
        "TenantAdmins",
        Tier::Admin,
    ),
    (
        "Privileged Role Administrator",
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "PrivilegedRoleAdmins",
        Tier::Admin,
    ),
    (
        "Exchange Administrator",
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "ExchangeServiceAdmins",
        Tier::Elevated,
    ),
    (
        "User Administrator",
        "fe930be7-5e62-47db-91af-98c3a49a38b1",
        "UserAccountAdmins",
        Tier::Elevated,
    ),
    (
        "Helpdesk Administrator",
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        "HelpdeskAdmins",
        Tier::Elevated,
    ),
    (
        "Groups Administrator",
        "fdd7a751-b60b-444a-984c-02652fe8fa1c",
        "GroupsAdministrators",
        Tier::Elevated,
    ),
    (
        "Security Administrator",
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
        "SecurityAdministrators",
        Tier::Elevated,
    ),
    (
        "Intune Administrator",
        "3a2c62db-5318-420d-8d74-23affee5d9d5",
        "IntuneServiceAdmins",
        Tier::Elevated,
    ),
    (
        "Authentication Administrator",
        "c4e39bd9-1100-46d3-8c65-fb160da0071f",
        "AuthenticationAdministrators",
        Tier::Elevated,
    ),
    (
        "Security Reader",
        "5d6b6bb7-de71-4623-b4af-96380a352509",
        "SecurityReaders",
        Tier::Standard,
    ),
    (
        "Global Reader",
        "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
        "GlobalReaders",
        Tier::Standard,
    ),
];

const OKTA_ROLES: &[(&str, Tier)] = &[
    ("Super administrator", Tier::Admin),
    ("Organization administrator", Tier::Admin),
    ("Help Desk administrator", Tier::Elevated),
    ("Group Membership administrator", Tier::Elevated),
    ("Application administrator", Tier::Elevated),
    ("Mobile administrator", Tier::Elevated),
    ("API Access Management administrator", Tier::Elevated),
    ("Read only admin", Tier::Standard),
    ("Report administrator", Tier::Standard),
];

const GOOGLE_ROLES: &[(&str, Tier)] = &[
    ("_SEED_ADMIN_ROLE", Tier::Admin),
    ("_GROUPS_ADMIN_ROLE", Tier::Elevated),
    ("_USER_MANAGEMENT_ADMIN_ROLE", Tier::Elevated),
    ("_HELP_DESK_ADMIN_ROLE", Tier::Elevated),
    ("_SERVICES_ADMIN_ROLE", Tier::Elevated),
    ("_MOBILE_ADMIN_ROLE", Tier::Elevated),
];

const IAM_POLICIES: &[(&str, Tier)] = &[
    ("ReadOnlyAccess", Tier::Standard),
    ("AmazonS3ReadOnlyAccess", Tier::Standard),
    ("SecurityAudit", Tier::Standard),
    ("AWSBillingReadOnlyAccess", Tier::Standard),
    ("PowerUserAccess", Tier::Elevated),
    ("AdministratorAccess", Tier::Admin),
    ("IAMFullAccess", Tier::Admin),
];

const PERMISSION_SETS: &[(&str, Tier)] = &[
    ("ReadOnly", Tier::Standard),
    ("Developer", Tier::Standard),
    ("DataEngineer", Tier::Standard),
    ("PlatformEngineer", Tier::Standard),
    ("SecurityAudit", Tier::Standard),
    ("AdministratorAccess", Tier::Admin),
];

/// (name, weight, sensitive) for a kind.
type Opt = (&'static str, f64, bool);

fn okta_dept(dept: &str) -> (&'static [&'static str], &'static [Opt]) {
    match dept {
        "Engineering" => (
            &["GitHub Enterprise Cloud", "Jira Software"],
            &[
                ("G:prod-readonly", 5.0, false),
                ("Datadog", 4.0, false),
                ("AWS IAM Identity Center", 3.0, false),
                ("PagerDuty", 2.0, false),
                ("Sentry", 2.0, false),
                ("LaunchDarkly", 1.0, false),
            ],
        ),
        "Sales" => (
            &["Salesforce", "Gong"],
            &[
                ("Outreach", 3.0, false),
                ("LinkedIn Sales Navigator", 2.0, false),
                ("G:sales-enablement", 4.0, false),
                ("Highspot", 2.0, false),
                ("ZoomInfo", 1.5, false),
            ],
        ),
        "Marketing" => (
            &["HubSpot", "Canva"],
            &[
                ("Google Analytics", 3.0, false),
                ("Marketo", 3.0, false),
                ("Hootsuite", 1.0, false),
                ("G:web-cms-editors", 2.0, false),
                ("Semrush", 1.0, false),
            ],
        ),
        "Finance" => (
            &["NetSuite", "Expensify"],
            &[
                ("Bill.com", 3.0, false),
                ("G:expense-approvers", 2.0, false),
                ("G:finance-reports", 2.0, true),
                ("Coupa", 2.0, false),
                ("Carta", 0.5, true),
            ],
        ),
        "HR" => (
            &["Workday HCM", "Greenhouse"],
            &[
                ("Lattice", 3.0, false),
                ("G:people-data", 2.0, true),
                ("Culture Amp", 1.5, false),
                ("Checkr", 1.0, true),
            ],
        ),
        "IT" => (
            &["Zendesk", "Jamf Pro"],
            &[
                ("G:it-oncall", 2.0, false),
                ("Tailscale", 2.0, false),
                ("Jira Service Management", 2.0, false),
                ("Okta Workflows", 1.0, true),
            ],
        ),
        "Security" => (
            &["CrowdStrike Falcon", "Splunk Cloud"],
            &[
                ("Wiz", 3.0, false),
                ("G:security-oncall", 2.0, false),
                ("G:soc-analysts", 2.0, true),
                ("Vanta", 1.0, false),
            ],
        ),
        "Legal" => (
            &["Ironclad", "DocuSign"],
            &[
                ("G:contracts-archive", 2.0, true),
                ("Box", 2.0, false),
                ("Vanta", 0.5, false),
            ],
        ),
        _ => (
            &["Zendesk", "Intercom"],
            &[
                ("Zendesk Explore", 2.0, false),
                ("Statuspage", 1.0, false),
                ("Salesforce", 1.0, false),
                ("Jira Software", 1.0, false),
            ],
        ),
    }
}

fn okta_team(team: &str) -> &'static [Opt] {
    match team {
        "Platform" | "Infrastructure" | "Reliability" => &[
            ("G:oncall-platform", 3.0, false),
            ("Terraform Cloud", 3.0, false),
        ],
        "Payments" => &[
            ("G:pci-cde-access", 2.0, true),
            ("Stripe Dashboard", 3.0, true),
        ],
        "Data" => &[
            ("Snowflake", 4.0, false),
            ("Looker", 3.0, false),
            ("dbt Cloud", 2.0, false),
        ],
        "Machine Learning" => &[("Snowflake", 2.0, false), ("Weights & Biases", 3.0, false)],
        "Mobile" => &[("App Store Connect", 3.0, false), ("Firebase", 2.0, false)],
        "Web" => &[("Vercel", 2.0, false)],
        "Enterprise" => &[("G:deal-desk", 3.0, false)],
        "Sales Operations" => &[
            ("G:sales-ops-reports", 2.0, false),
            ("G:deal-desk", 1.0, false),
        ],
        "Accounting" => &[("G:month-end-close", 2.0, false)],
        "Payroll" => &[("ADP Workforce Now", 3.0, true)],
        "Recruiting" => &[("LinkedIn Recruiter", 3.0, false)],
        "Helpdesk" => &[("G:helpdesk-tier2", 2.0, false)],
        "Identity" => &[("Okta Workflows", 2.0, true)],
        "Security Operations" => &[("G:incident-responders", 2.0, false)],
        "Application Security" => &[("Snyk", 3.0, false)],
        "Tier 2" => &[("G:support-tier2", 3.0, false)],
        _ => &[],
    }
}

fn entra_dept(dept: &str) -> &'static [Opt] {
    match dept {
        "Engineering" => &[("Teams - Incident Bridge", 3.0, false)],
        "Sales" => &[
            ("Teams - Customer Escalations", 3.0, false),
            ("Power BI Pro", 2.0, false),
        ],
        "Marketing" => &[
            ("SharePoint - Brand Assets", 3.0, false),
            ("A:Adobe Creative Cloud", 2.0, false),
        ],
        "Finance" => &[
            ("SharePoint - Finance", 3.0, true),
            ("Power BI Pro", 3.0, false),
        ],
        "HR" => &[("SharePoint - HR Confidential", 3.0, true)],
        "IT" => &[
            ("Exchange - support@ shared mailbox", 3.0, false),
            ("Teams - Incident Bridge", 2.0, false),
        ],
        "Security" => &[
            ("Exchange - security@ shared mailbox", 2.0, true),
            ("Teams - Incident Bridge", 3.0, false),
        ],
        "Legal" => &[("SharePoint - Legal Hold", 3.0, true)],
        _ => &[
            ("Exchange - support@ shared mailbox", 3.0, false),
            ("Teams - Customer Escalations", 2.0, false),
        ],
    }
}

fn google_dept(dept: &str) -> &'static [Opt] {
    match dept {
        "Engineering" => &[
            ("eng-oncall", 2.0, false),
            ("architecture-review", 1.5, false),
            ("interviewers", 1.0, false),
        ],
        "Sales" => &[
            ("customer-escalations", 2.0, false),
            ("partners-external", 1.0, false),
        ],
        "Marketing" => &[("press", 1.5, false), ("design-crit", 2.0, false)],
        "Finance" => &[
            ("finance-approvals", 2.0, true),
            ("board-materials", 0.5, true),
        ],
        "HR" => &[
            ("people-team-private", 2.0, true),
            ("interviewers", 2.0, false),
        ],
        "IT" => &[("it-alerts", 2.0, false), ("vendor-contacts", 1.0, false)],
        "Security" => &[
            ("security-alerts", 2.0, false),
            ("incident-response", 2.0, true),
        ],
        "Legal" => &[
            ("board-materials", 1.5, true),
            ("legal-requests", 2.0, false),
        ],
        _ => &[
            ("customer-escalations", 2.0, false),
            ("support-leads", 1.0, false),
        ],
    }
}

impl Catalog {
    pub fn build(org: &Org, rng: &mut Rand) -> Catalog {
        let mut c = Catalog {
            ents: Vec::new(),
            by_name: BTreeMap::new(),
            all: Bundle::default(),
            dept: vec![Bundle::default(); DEPTS.len()],
            team: BTreeMap::new(),
            long_tail: Vec::new(),
            never_routine: Vec::new(),
            accounts: Accounts {
                management: rng.digits(12),
                prod: rng.digits(12),
                staging: rng.digits(12),
                sso_instance: format!("ssoins-{}", rng.hex(16)),
            },
        };
        let dom = org.domains[0].clone();

        // Okta
        let e = c.add(rng, Kind::OktaGroup, "all-staff", Tier::Standard, false);
        c.all.core.push(e);
        for app in [
            "Slack",
            "Zoom",
            "Microsoft Office 365",
            "Google Workspace",
            "1Password",
        ] {
            let e = c.add(rng, Kind::OktaApp, app, Tier::Standard, false);
            c.all.core.push(e);
        }
        for (name, w) in [
            ("G:vpn-users", 3.0),
            ("G:confluence-editors", 2.0),
            ("Miro", 1.5),
            ("Loom", 1.0),
            ("Figma", 1.0),
            ("Lucidchart", 0.6),
            ("Calendly", 0.5),
        ] {
            let e = c.add_okta(rng, name, Tier::Standard, false);
            c.all.optional.push((e, w));
        }
        // Entra
        let e = c.add(rng, Kind::EntraGroup, "All Staff", Tier::Standard, false);
        c.all.core.push(e);
        for (name, w) in [
            ("Intune - Corporate Devices", 3.0),
            ("M365 E5 Licensing", 1.5),
            ("Teams - Town Hall Presenters", 0.3),
            ("Visio Users", 0.5),
            ("Project Plan 3 Users", 0.5),
        ] {
            let e = c.add(rng, Kind::EntraGroup, name, Tier::Standard, false);
            c.all.optional.push((e, w));
        }
        // Google
        let e = c.add(
            rng,
            Kind::GoogleGroup,
            &format!("everyone@{dom}"),
            Tier::Standard,
            false,
        );
        c.all.core.push(e);
        for (name, w) in [("social", 1.5), ("office-news", 1.0), ("mentoring", 0.8)] {
            let e = c.add(
                rng,
                Kind::GoogleGroup,
                &format!("{name}@{dom}"),
                Tier::Standard,
                false,
            );
            c.all.optional.push((e, w));
        }
        // SCIM (Atlassian): core groups for its users are added per person, not per department
        for name in ["jira-software-users", "confluence-users"] {
            c.add(rng, Kind::ScimGroup, name, Tier::Standard, false);
        }
        c.add(
            rng,
            Kind::ScimGroup,
            "jira-servicedesk-agents",
            Tier::Standard,
            false,
        );

        for (d, def) in DEPTS.iter().enumerate() {
            let (core, opt) = okta_dept(def.name);
            let mut b = Bundle::default();
            let e = c.add(
                rng,
                Kind::OktaGroup,
                &format!("{}-all", def.slug),
                Tier::Standard,
                false,
            );
            b.core.push(e);
            for app in core {
                let e = c.add(rng, Kind::OktaApp, app, Tier::Standard, false);
                b.core.push(e);
            }
            for (name, w, sens) in opt {
                b.optional
                    .push((c.add_okta(rng, name, Tier::Standard, *sens), *w));
            }
            let e = c.add(
                rng,
                Kind::EntraGroup,
                &format!("{} Team", def.name),
                Tier::Standard,
                false,
            );
            b.core.push(e);
            for (name, w, sens) in entra_dept(def.name) {
                let e = if let Some(app) = name.strip_prefix("A:") {
                    c.add(rng, Kind::EntraApp, app, Tier::Standard, *sens)
                } else {
                    c.add(rng, Kind::EntraGroup, name, Tier::Standard, *sens)
                };
                b.optional.push((e, *w));
            }
            let e = c.add(
                rng,
                Kind::GoogleGroup,
                &format!("{}@{dom}", def.slug),
                Tier::Standard,
                false,
            );
            b.core.push(e);
            for (name, w, sens) in google_dept(def.name) {
                b.optional.push((
                    c.add(
                        rng,
                        Kind::GoogleGroup,
                        &format!("{name}@{dom}"),
                        Tier::Standard,
                        *sens,
                    ),
                    *w,
                ));
            }
            c.dept[d] = b;
        }
        for t in &org.teams {
            if c.team.contains_key(&t.name) {
                continue;
            }
            let mut b = Bundle::default();
            let e = c.add(
                rng,
                Kind::OktaGroup,
                &format!("team-{}", t.slug),
                Tier::Standard,
                false,
            );
            b.core.push(e);
            let e = c.add(
                rng,
                Kind::GoogleGroup,
                &format!("{}-team@{dom}", t.slug),
                Tier::Standard,
                false,
            );
            b.core.push(e);
            for (name, w, sens) in okta_team(&t.name) {
                b.optional
                    .push((c.add_okta(rng, name, Tier::Standard, *sens), *w));
            }
            c.team.insert(t.name.clone(), b);
        }

        // privileged entitlements
        for g in ["prod-db-admins", "prod-k8s-admins"] {
            c.add(rng, Kind::OktaGroup, g, Tier::Admin, true);
        }
        for (name, tier) in OKTA_ROLES {
            c.add(rng, Kind::OktaRole, name, *tier, true);
        }
        for (name, template, wkn, tier) in ENTRA_ROLES {
            let e = c.add(rng, Kind::EntraRole, name, *tier, true);
            c.ents[e as usize].aux = (*template).to_owned();
            c.ents[e as usize].aux2 = (*wkn).to_owned();
        }
        for (name, tier) in GOOGLE_ROLES {
            let e = c.add(rng, Kind::GoogleRole, name, *tier, true);
            c.ents[e as usize].aux = rng.digits(17);
        }
        for g in [
            "developers",
            "platform-engineers",
            "data-engineers",
            "payments-deployers",
            "security-auditors",
            "billing-viewers",
        ] {
            c.add(rng, Kind::IamGroup, g, Tier::Standard, false);
        }
        for (name, tier) in IAM_POLICIES {
            let e = c.add(rng, Kind::IamPolicy, name, *tier, *tier != Tier::Standard);
            c.ents[e as usize].id = format!("arn:aws:iam::aws:policy/{name}");
        }
        for (name, tier) in PERMISSION_SETS {
            let e = c.add(
                rng,
                Kind::PermissionSet,
                name,
                *tier,
                *tier != Tier::Standard,
            );
            let ps = format!("ps-{}", rng.hex(16));
            let inst = c.accounts.sso_instance.clone();
            let ent = &mut c.ents[e as usize];
            ent.aux = format!("arn:aws:sso:::permissionSet/{inst}/{ps}");
            ent.id = ps;
        }
        c.never_routine = vec![
            c.get(Kind::OktaRole, "API Access Management administrator"),
            c.get(Kind::EntraRole, "Authentication Administrator"),
            c.get(Kind::GoogleRole, "_SERVICES_ADMIN_ROLE"),
        ];

        let mut tail: Vec<u32> = c
            .dept
            .iter()
            .flat_map(|b| b.optional.iter())
            .chain(c.team.values().flat_map(|b| b.optional.iter()))
            .map(|(e, _)| *e)
            .filter(|e| !c.ents[*e as usize].sensitive)
            .collect();
        tail.sort_unstable();
        tail.dedup();
        c.long_tail = tail;
        c
    }

    fn add_okta(&mut self, rng: &mut Rand, name: &str, tier: Tier, sensitive: bool) -> u32 {
        match name.strip_prefix("G:") {
            Some(g) => self.add(rng, Kind::OktaGroup, g, tier, sensitive),
            None => self.add(rng, Kind::OktaApp, name, tier, sensitive),
        }
    }

    /// Adds an entitlement (or returns the one of that name).
    fn add(&mut self, rng: &mut Rand, kind: Kind, name: &str, tier: Tier, sensitive: bool) -> u32 {
        let key = (kind as u8, name.to_owned());
        if let Some(&e) = self.by_name.get(&key) {
            return e;
        }
        let id = match kind {
            Kind::OktaGroup => format!("00g{}", rng.alnum(17)),
            Kind::OktaApp => format!("0oa{}", rng.alnum(17)),
            Kind::OktaRole | Kind::GoogleRole => String::new(),
            Kind::EntraGroup | Kind::EntraRole | Kind::EntraApp | Kind::ScimGroup => rng.guid(),
            Kind::GoogleGroup => name.to_owned(),
            Kind::IamGroup => format!("AGPA{}", rng.upper_num(17)),
            Kind::IamPolicy | Kind::PermissionSet => String::new(),
        };
        let e = self.ents.len() as u32;
        self.ents.push(Ent {
            kind,
            name: name.to_owned(),
            id,
            tier,
            aux: String::new(),
            aux2: String::new(),
            sensitive,
        });
        self.by_name.insert(key, e);
        e
    }

    /// A catalog entry by kind and name (panics on a name the catalog does not define).
    pub fn get(&self, kind: Kind, name: &str) -> u32 {
        *self
            .by_name
            .get(&(kind as u8, name.to_owned()))
            .unwrap_or_else(|| panic!("no {kind:?} named {name}"))
    }

    pub fn ent(&self, e: u32) -> &Ent {
        &self.ents[e as usize]
    }

    /// Core entitlements of a unit in one source.
    pub fn core_of(&self, src: Src, dept: usize, team: &str) -> Vec<u32> {
        self.all
            .core
            .iter()
            .chain(&self.dept[dept].core)
            .chain(
                self.team
                    .get(team)
                    .map(|b| b.core.as_slice())
                    .unwrap_or(&[]),
            )
            .copied()
            .filter(|e| self.ent(*e).src() == src)
            .collect()
    }

    /// Optional entitlements of a unit (all sources), with weights.
    pub fn optional_of(&self, dept: usize, team: &str) -> Vec<(u32, f64)> {
        self.all
            .optional
            .iter()
            .chain(&self.dept[dept].optional)
            .chain(
                self.team
                    .get(team)
                    .map(|b| b.optional.as_slice())
                    .unwrap_or(&[]),
            )
            .copied()
            .collect()
    }
}
