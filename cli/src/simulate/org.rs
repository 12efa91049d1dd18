//! The synthetic organisation: departments, teams, people, the IT staff who provision access,
//! and the HR directory they are exported to.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

use super::clock::{Hours, ZONES, Zone, is_weekend};
use super::random::Rand;

pub const COMPANIES: &[&str] = &[
    "acmerocket",
    "northwind",
    "bluefjord",
    "tallgrass",
    "quillon",
    "brightpath",
    "copperleaf",
    "halcyonic",
    "meridiana",
    "oakridge",
    "silverline",
    "vantora",
    "kestrelco",
    "lumenfield",
    "riverbend",
    "stonegate",
    "corvalis",
    "windmere",
];

const FIRST: &[&str] = &[
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Nancy",
    "Matthew",
    "Lisa",
    "Anthony",
    "Betty",
    "Mark",
    "Sandra",
    "Steven",
    "Ashley",
    "Paul",
    "Emily",
    "Andrew",
    "Donna",
    "Joshua",
    "Michelle",
    "Kevin",
    "Carol",
    "Brian",
    "Amanda",
    "George",
    "Melissa",
    "Timothy",
    "Deborah",
    "Ronald",
    "Stephanie",
    "Jason",
    "Rebecca",
    "Ryan",
    "Laura",
    "Jacob",
    "Helen",
    "Gary",
    "Sharon",
    "Nicholas",
    "Cynthia",
    "Eric",
    "Kathleen",
    "Jonathan",
    "Amy",
    "Priya",
    "Aarav",
    "Ananya",
    "Rohan",
    "Wei",
    "Mei",
    "Hiroshi",
    "Yuki",
    "Jonas",
    "Lena",
    "Lukas",
    "Hannah",
    "Felix",
    "Sofia",
    "Mateo",
    "Lucia",
    "Diego",
    "Camila",
    "Omar",
    "Fatima",
    "Ahmed",
    "Aisha",
    "Kwame",
    "Ama",
    "Chidi",
    "Ngozi",
    "Ivan",
    "Olga",
    "Mikhail",
    "Elena",
    "Lars",
    "Ingrid",
    "Sven",
    "Astrid",
    "Pierre",
    "Camille",
    "Luca",
    "Giulia",
    "Marco",
    "Chiara",
    "Noah",
    "Olivia",
    "Liam",
    "Emma",
    "Ethan",
    "Ava",
    "Mason",
    "Isabella",
    "Logan",
    "Mia",
    "Lucas",
    "Harper",
    "Aiden",
    "Zoe",
    "Arjun",
    "Kavya",
    "Tariq",
    "Leila",
    "Mateus",
    "Beatriz",
    "Joao",
    "Ines",
    "Sean",
    "Siobhan",
    "Connor",
    "Niamh",
    "Tomasz",
    "Agnieszka",
    "Kenji",
    "Sakura",
    "Minh",
    "Linh",
    "Jin",
    "Seo-yeon",
    "Rafael",
    "Valentina",
];

const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Patel",
    "Shah",
    "Mehta",
    "Kumar",
    "Singh",
    "Iyer",
    "Chen",
    "Wang",
    "Zhang",
    "Liu",
    "Tanaka",
    "Sato",
    "Suzuki",
    "Kim",
    "Park",
    "Choi",
    "Weber",
    "Fischer",
    "Schmidt",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Schulz",
    "Meier",
    "Rossi",
    "Russo",
    "Ferrari",
    "Bianchi",
    "Dubois",
    "Laurent",
    "Moreau",
    "Lefebvre",
    "Silva",
    "Santos",
    "Oliveira",
    "Costa",
    "Pereira",
    "Novak",
    "Kowalski",
    "Nowak",
    "Petrov",
    "Ivanova",
    "Larsen",
    "Nielsen",
    "Andersson",
    "Johansson",
    "Okafor",
    "Mensah",
    "Adeyemi",
    "Haddad",
    "Khan",
    "Rahman",
    "Hussain",
    "O'Brien",
    "Murphy",
    "Kelly",
    "Walsh",
    "Byrne",
    "Doyle",
    "Fitzgerald",
    "MacDonald",
    "Campbell-Ross",
    "Stewart",
    "Reid",
    "Fraser",
    "Olsen",
    "Berg",
    "Lindqvist",
    "Katz",
    "Cohen",
    "Levi",
    "Alvarez",
    "Mendez",
    "Castro",
    "Vargas",
    "Rojas",
    "Popescu",
    "Horvath",
    "Varga",
    "Yilmaz",
    "Demir",
    "Pham",
    "Tran",
    "Le",
    "Vo",
    "Bui",
];

#[derive(Debug, Clone, Copy)]
pub struct DeptDef {
    pub name: &'static str,
    pub slug: &'static str,
    share: f64,
    teams: &'static [&'static str],
    min_teams: usize,
    head: &'static str,
}

pub const IT: usize = 5;
pub const SECURITY: usize = 6;
pub const ENGINEERING: usize = 0;

pub static DEPTS: &[DeptDef] = &[
    DeptDef {
        name: "Engineering",
        slug: "eng",
        share: 0.30,
        teams: &[
            "Platform",
            "Payments",
            "Data",
            "Web",
            "Mobile",
            "Core Services",
            "Search",
            "Infrastructure",
            "Machine Learning",
            "Developer Experience",
            "Growth Engineering",
            "Reliability",
        ],
        min_teams: 3,
        head: "VP Engineering",
    },
    DeptDef {
        name: "Sales",
        slug: "sales",
        share: 0.15,
        teams: &[
            "Enterprise",
            "SMB",
            "Sales Operations",
            "Solutions Engineering",
            "Partnerships",
        ],
        min_teams: 2,
        head: "VP Sales",
    },
    DeptDef {
        name: "Marketing",
        slug: "marketing",
        share: 0.07,
        teams: &["Growth", "Brand", "Product Marketing", "Content"],
        min_teams: 2,
        head: "VP Marketing",
    },
    DeptDef {
        name: "Finance",
        slug: "finance",
        share: 0.05,
        teams: &["Accounting", "FP&A", "Procurement", "Payroll"],
        min_teams: 2,
        head: "VP Finance",
    },
    DeptDef {
        name: "HR",
        slug: "hr",
        share: 0.04,
        teams: &["People Operations", "Recruiting", "Total Rewards"],
        min_teams: 2,
        head: "Head of People",
    },
    DeptDef {
        name: "IT",
        slug: "it",
        share: 0.0,
        teams: &["Identity", "Helpdesk", "Endpoint"],
        min_teams: 3,
        head: "IT Director",
    },
    DeptDef {
        name: "Security",
        slug: "security",
        share: 0.03,
        teams: &["Security Operations", "Application Security", "GRC"],
        min_teams: 2,
        head: "Head of Security",
    },
    DeptDef {
        name: "Legal",
        slug: "legal",
        share: 0.02,
        teams: &["Commercial", "Privacy"],
        min_teams: 1,
        head: "General Counsel",
    },
    DeptDef {
        name: "Support",
        slug: "support",
        share: 0.14,
        teams: &["Tier 1", "Tier 2", "Support Operations"],
        min_teams: 2,
        head: "VP Customer Support",
    },
];

#[derive(Debug, Clone)]
pub struct Team {
    pub name: String,
    pub slug: String,
    pub dept: usize,
    pub zone: usize,
}

/// What a person does with provisioning, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    None,
    /// Identity team: admin roles, AWS, JIT production access, change windows.
    Identity,
    /// Helpdesk: access requests, contractors, removals.
    Helpdesk,
    /// Platform engineers: their own workload roles in AWS.
    PlatformEng,
}

/// How a record came to be in the people list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A real person (directory row unless they left).
    Staff,
    /// A hire of an HR onboarding wave (decoy).
    Wave,
    /// An account that is not a person of the directory (lookalike, typo, backdoor).
    Fake,
}

#[derive(Debug, Clone)]
pub struct Person {
    pub first: String,
    pub last: String,
    pub display: String,
    pub email: String,
    pub dept: usize,
    pub team: usize,
    /// Department and team before a move on the given day (movers, re-organised teams).
    pub before: Option<(usize, usize, NaiveDate)>,
    pub title: String,
    pub manager: Option<usize>,
    pub contractor: bool,
    pub zone: usize,
    pub start: NaiveDate,
    /// Last working day, for leavers (not in the directory).
    pub end: Option<NaiveDate>,
    pub origin: Origin,
    pub role: Role,
    pub hours: Hours,
    pub okta_id: String,
    pub entra_id: String,
    pub idstore_id: String,
    pub scim_id: String,
    pub google_id: String,
    pub iam_user: bool,
    pub office_ip: String,
    pub home_ip: String,
    pub ua: usize,
    pub session: String,
    /// Uses Atlassian (provisioned over SCIM).
    pub atlassian: bool,
}

impl Person {
    pub fn zone(&self) -> &'static Zone {
        &ZONES[self.zone]
    }

    pub fn in_directory(&self) -> bool {
        self.origin != Origin::Fake && self.end.is_none()
    }

    /// Department and team on a given day.
    pub fn unit_on(&self, day: NaiveDate) -> (usize, usize) {
        match self.before {
            Some((d, t, until)) if day < until => (d, t),
            _ => (self.dept, self.team),
        }
    }

    /// Has an account on this day (created by then, not yet gone).
    pub fn active_on(&self, day: NaiveDate) -> bool {
        self.origin != Origin::Fake && self.start <= day && self.end.is_none_or(|e| day <= e)
    }

    pub fn ip(&self, rng: &mut Rand) -> String {
        if rng.chance(0.72) {
            self.office_ip.clone()
        } else {
            self.home_ip.clone()
        }
    }
}

/// The simulated periods.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub hist_start: NaiveDate,
    pub test_start: NaiveDate,
    pub test_end: NaiveDate,
}

impl Window {
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + use<> {
        let (a, b) = (self.hist_start, self.test_end);
        (0..(b - a).num_days()).map(move |i| a + Duration::days(i))
    }

    pub fn is_test(&self, day: NaiveDate) -> bool {
        day >= self.test_start
    }

    pub fn business_days(&self) -> usize {
        self.days().filter(|d| !is_weekend(*d)).count()
    }
}

#[derive(Debug)]
pub struct Org {
    pub company: String,
    /// Own e-mail domains: the primary, then the labs subsidiary's.
    pub domains: Vec<String>,
    pub teams: Vec<Team>,
    pub people: Vec<Person>,
    pub identity: Vec<usize>,
    pub helpdesk: Vec<usize>,
    pub platform: Vec<usize>,
    pub it_director: usize,
    pub security_head: usize,
    pub customer_id: String,
    emails: std::collections::HashSet<String>,
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if c != '&' && !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

fn local_part(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect::<String>()
        .to_lowercase()
}

fn team_titles(dept: usize, team: &str) -> (&'static str, &'static [&'static str]) {
    match (DEPTS[dept].name, team) {
        ("Engineering", "Platform" | "Infrastructure" | "Reliability") => (
            "Engineering Manager",
            &[
                "Site Reliability Engineer",
                "Platform Engineer",
                "Platform Engineer",
                "DevOps Engineer",
            ],
        ),
        ("Engineering", "Data") => (
            "Data Engineering Manager",
            &[
                "Data Engineer",
                "Data Engineer",
                "Analytics Engineer",
                "Data Scientist",
            ],
        ),
        ("Engineering", "Machine Learning") => (
            "Engineering Manager",
            &[
                "Machine Learning Engineer",
                "Research Scientist",
                "Data Scientist",
            ],
        ),
        ("Engineering", "Mobile") => (
            "Engineering Manager",
            &["iOS Engineer", "Android Engineer", "Software Engineer"],
        ),
        ("Engineering", _) => (
            "Engineering Manager",
            &[
                "Software Engineer",
                "Software Engineer",
                "Software Engineer",
                "QA Engineer",
            ],
        ),
        ("Sales", "Enterprise") => (
            "Sales Director",
            &[
                "Account Executive",
                "Account Executive",
                "Solutions Engineer",
            ],
        ),
        ("Sales", "SMB") => (
            "Sales Manager",
            &["Account Executive", "Sales Development Representative"],
        ),
        ("Sales", "Sales Operations") => (
            "Sales Operations Manager",
            &["Sales Operations Analyst", "Deal Desk Specialist"],
        ),
        ("Sales", "Solutions Engineering") => {
            ("Solutions Engineering Manager", &["Solutions Engineer"])
        }
        ("Sales", _) => (
            "Partnerships Manager",
            &["Partner Manager", "Channel Account Manager"],
        ),
        ("Marketing", _) => (
            "Marketing Manager",
            &[
                "Marketing Manager",
                "Content Strategist",
                "Growth Marketer",
                "Designer",
            ],
        ),
        ("Finance", "Accounting") => (
            "Controller",
            &[
                "Accountant",
                "Senior Accountant",
                "Accounts Payable Specialist",
            ],
        ),
        ("Finance", "FP&A") => ("FP&A Manager", &["FP&A Analyst", "Financial Analyst"]),
        ("Finance", "Payroll") => ("Payroll Manager", &["Payroll Specialist"]),
        ("Finance", _) => ("Procurement Manager", &["Procurement Specialist", "Buyer"]),
        ("HR", "Recruiting") => (
            "Recruiting Manager",
            &["Recruiter", "Recruiting Coordinator", "Sourcer"],
        ),
        ("HR", _) => (
            "People Operations Manager",
            &[
                "People Partner",
                "People Operations Specialist",
                "Compensation Analyst",
            ],
        ),
        ("IT", "Identity") => (
            "Identity Engineering Manager",
            &["Identity Engineer", "Identity Engineer", "IAM Analyst"],
        ),
        ("IT", "Helpdesk") => (
            "IT Support Lead",
            &[
                "IT Support Specialist",
                "IT Support Specialist",
                "IT Support Engineer",
            ],
        ),
        ("IT", _) => (
            "Endpoint Engineering Manager",
            &["Endpoint Engineer", "Systems Administrator"],
        ),
        ("Security", "Security Operations") => (
            "Security Operations Manager",
            &[
                "Security Analyst",
                "Security Engineer",
                "Detection Engineer",
            ],
        ),
        ("Security", "Application Security") => (
            "Application Security Manager",
            &["Application Security Engineer"],
        ),
        ("Security", _) => ("GRC Manager", &["GRC Analyst", "Compliance Specialist"]),
        ("Legal", _) => (
            "Associate General Counsel",
            &[
                "Counsel",
                "Paralegal",
                "Contracts Manager",
                "Privacy Counsel",
            ],
        ),
        (_, "Tier 1") => (
            "Support Manager",
            &["Customer Support Specialist", "Customer Support Specialist"],
        ),
        (_, "Tier 2") => (
            "Support Manager",
            &["Technical Support Engineer", "Senior Support Engineer"],
        ),
        _ => (
            "Support Operations Manager",
            &["Support Operations Analyst", "Knowledge Base Manager"],
        ),
    }
}

const UAS: usize = 5;

fn draw_zone(rng: &mut Rand) -> usize {
    rng.weighted_index(ZONES.iter().map(|z| z.weight))
}

/// A business day in [from, to), Monday-biased (most hires start on a Monday).
pub fn start_day(rng: &mut Rand, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days().max(1) as u64;
    for _ in 0..20 {
        let d = from + Duration::days(rng.range(0, span) as i64);
        if is_weekend(d) {
            continue;
        }
        if d.weekday() == Weekday::Mon || rng.chance(0.3) {
            return d;
        }
    }
    let mut d = from;
    while is_weekend(d) {
        d += Duration::days(1);
    }
    d
}

impl Org {
    /// Builds an organisation of about `size` directory people (plus the leavers of the window).
    pub fn build(rng: &mut Rand, size: usize, window: Window) -> Org {
        let company = (*rng.pick(COMPANIES)).to_owned();
        let domains = vec![
            format!("{company}.example"),
            format!("{company}-labs.example"),
        ];
        let s = size as f64 / 1000.0;
        let n_identity = ((3.0 * s).round() as usize).max(2);
        let n_helpdesk = ((6.0 * s).round() as usize).max(3);
        let n_endpoint = ((2.0 * s).round() as usize).max(1);
        let it_size = 1 + (n_identity + 1) + (n_helpdesk + 1) + (n_endpoint + 1);
        let rest = size.saturating_sub(it_size).max(40) as f64;
        let share_total: f64 = DEPTS.iter().map(|d| d.share).sum();

        let mut org = Org {
            company,
            domains,
            teams: Vec::new(),
            people: Vec::new(),
            identity: Vec::new(),
            helpdesk: Vec::new(),
            platform: Vec::new(),
            it_director: 0,
            security_head: 0,
            customer_id: format!("C0{}", rng.alnum(7).to_lowercase()),
            emails: Default::default(),
        };
        let hire_p = 0.00088 * window.business_days() as f64;

        for (d, def) in DEPTS.iter().enumerate() {
            let (team_sizes, names): (Vec<usize>, Vec<&str>) = if d == IT {
                (
                    vec![n_identity + 1, n_helpdesk + 1, n_endpoint + 1],
                    def.teams.to_vec(),
                )
            } else {
                let dsize = ((rest * def.share / share_total) * rng.uniform(0.92, 1.08))
                    .round()
                    .max(4.0) as usize;
                let k = (dsize / 35).clamp(def.min_teams, def.teams.len());
                let weights: Vec<f64> = (0..k).map(|_| rng.uniform(0.6, 1.4)).collect();
                let wsum: f64 = weights.iter().sum();
                let sizes = weights
                    .iter()
                    .map(|w| ((dsize - 1) as f64 * w / wsum).round().max(2.0) as usize)
                    .collect();
                (sizes, def.teams[..k].to_vec())
            };
            // the department head leads the first team's managers
            let head = org.people.len();
            for (ti, (tsize, tname)) in team_sizes.iter().zip(&names).enumerate() {
                let team_idx = org.teams.len();
                let zone = draw_zone(rng);
                org.teams.push(Team {
                    name: (*tname).to_owned(),
                    slug: slug(tname),
                    dept: d,
                    zone,
                });
                let (lead_title, titles) = team_titles(d, tname);
                let first_member = org.people.len();
                let n = *tsize + usize::from(ti == 0);
                for i in 0..n {
                    let idx = org.people.len();
                    let is_head = ti == 0 && i == 0;
                    let is_lead = if ti == 0 { i == 1 } else { i == 0 };
                    let lead_idx = if ti == 0 {
                        first_member + 1
                    } else {
                        first_member
                    };
                    let title = if is_head {
                        def.head.to_owned()
                    } else if is_lead {
                        if lead_title.contains("Manager") && d == ENGINEERING {
                            format!("{lead_title}, {tname}")
                        } else {
                            lead_title.to_owned()
                        }
                    } else {
                        (*rng.pick(titles)).to_owned()
                    };
                    let manager = if is_head {
                        None
                    } else if is_lead {
                        Some(head)
                    } else {
                        // a tree of fan-out 8 under the team lead
                        let rel = idx - lead_idx;
                        Some(lead_idx + (rel - 1) / 8)
                    };
                    let spread = d == IT && tname != &"Endpoint";
                    let pzone = if spread || rng.chance(0.25) {
                        draw_zone(rng)
                    } else {
                        zone
                    };
                    let labs = matches!(*tname, "Data" | "Machine Learning") && rng.chance(0.6);
                    let contractor = !is_head && !is_lead && d != IT && rng.chance(0.08);
                    let title = if contractor {
                        format!("{title} (Contract)")
                    } else {
                        title
                    };
                    let veteran = is_head || is_lead || d == IT;
                    let start = if !veteran && rng.chance(hire_p) {
                        start_day(rng, window.hist_start, window.test_end + Duration::days(7))
                    } else {
                        let years =
                            (rng.f() * rng.f() * 6.0 + 0.1) * if veteran { 1.6 } else { 1.0 };
                        start_day(
                            rng,
                            window.hist_start - Duration::days((years * 365.0) as i64 + 7),
                            window.hist_start - Duration::days((years * 365.0) as i64),
                        )
                    };
                    let mut p = org.new_person(rng, d, team_idx, pzone, title, labs);
                    p.manager = manager;
                    p.contractor = contractor;
                    p.start = start;
                    if d == IT && !is_head {
                        p.role = match *tname {
                            "Identity" => Role::Identity,
                            "Helpdesk" => Role::Helpdesk,
                            _ => Role::None,
                        };
                    } else if d == ENGINEERING
                        && matches!(*tname, "Platform" | "Infrastructure" | "Reliability")
                        && !contractor
                    {
                        p.role = Role::PlatformEng;
                    }
                    if d == ENGINEERING && matches!(*tname, "Platform" | "Data" | "Payments") {
                        p.iam_user = rng.chance(0.3);
                    }
                    org.people.push(p);
                }
            }
            if d == IT {
                org.it_director = head;
            }
            if d == SECURITY {
                org.security_head = head;
            }
        }

        // Leavers during the window: in the event history, gone from the HR export.
        let leave_p = 0.00048 * window.business_days() as f64;
        let n_leavers = (org.people.len() as f64 * leave_p).round() as usize;
        for _ in 0..n_leavers {
            let team = rng.below(org.teams.len());
            let t = &org.teams[team];
            if t.dept == IT {
                continue;
            }
            let (_, titles) = team_titles(t.dept, &t.name);
            let title = (*rng.pick(titles)).to_owned();
            let (d, z) = (t.dept, t.zone);
            let mut p = org.new_person(rng, d, team, z, title, false);
            p.start = window.hist_start - Duration::days(rng.range(200, 2000) as i64);
            let mut end = window.hist_start
                + Duration::days(
                    rng.range(0, (window.test_end - window.hist_start).num_days() as u64) as i64,
                );
            while is_weekend(end) {
                end -= Duration::days(1);
            }
            p.end = Some(end);
            p.manager = org
                .people
                .iter()
                .position(|q| q.team == team && q.title.contains("Manager"));
            org.people.push(p);
        }

        // Movers: a transfer to another team (and often department) during the window.
        let n_movers =
            (org.people.len() as f64 * 0.0002 * window.business_days() as f64).round() as usize;
        for _ in 0..n_movers {
            let i = rng.below(org.people.len());
            let team = rng.below(org.teams.len());
            let p = &org.people[i];
            if p.role != Role::None
                || p.before.is_some()
                || p.end.is_some()
                || p.team == team
                || org.teams[team].dept == IT
                || p.manager.is_none()
            {
                continue;
            }
            let from = (p.dept, p.team);
            let day = start_day(rng, window.hist_start + Duration::days(1), window.test_end);
            if p.start >= day {
                continue;
            }
            let p = &mut org.people[i];
            p.before = Some((from.0, from.1, day));
            p.team = team;
            p.dept = org.teams[team].dept;
            let (_, titles) = team_titles(p.dept, &org.teams[team].name);
            p.title = (*rng.pick(titles)).to_owned();
        }

        for (i, p) in org.people.iter().enumerate() {
            if p.end.is_some() {
                continue;
            }
            match p.role {
                Role::Identity => org.identity.push(i),
                Role::Helpdesk => org.helpdesk.push(i),
                Role::PlatformEng => org.platform.push(i),
                Role::None => {}
            }
        }
        org
    }

    /// A new person (not yet in the list) with a unique e-mail address and all their ids.
    pub fn new_person(
        &mut self,
        rng: &mut Rand,
        dept: usize,
        team: usize,
        zone: usize,
        title: String,
        labs: bool,
    ) -> Person {
        let first = (*rng.pick(FIRST)).to_owned();
        let last = (*rng.pick(LAST)).to_owned();
        let domain = &self.domains[usize::from(labs)];
        let base = format!("{}.{}", local_part(&first), local_part(&last));
        let mut email = format!("{base}@{domain}");
        let mut n = 1;
        while self.emails.contains(&email) {
            email = if n <= 3 {
                let initial = (b'a' + rng.below(26) as u8) as char;
                format!(
                    "{}.{initial}.{}@{domain}",
                    local_part(&first),
                    local_part(&last)
                )
            } else {
                format!("{base}{n}@{domain}")
            };
            n += 1;
        }
        self.emails.insert(email.clone());
        let z = &ZONES[zone];
        Person {
            display: format!("{first} {last}"),
            first,
            last,
            email,
            dept,
            team,
            before: None,
            title,
            manager: None,
            contractor: false,
            zone,
            start: NaiveDate::from_ymd_opt(2020, 1, 6).expect("date"),
            end: None,
            origin: Origin::Staff,
            role: Role::None,
            hours: Hours::draw(rng),
            okta_id: format!("00u{}", rng.alnum(17)),
            entra_id: rng.guid(),
            idstore_id: format!("{}-{}", rng.hex(10), rng.guid()[9..].to_owned()),
            scim_id: rng.guid(),
            google_id: rng.digits(21),
            iam_user: false,
            office_ip: format!("{}{}", z.net, 10 + 25 * (zone % 9) + rng.below(3)),
            home_ip: format!(
                "{}{}",
                rng.pick(&["203.0.113.", "192.0.2.", "198.51.100."]),
                rng.range(2, 250)
            ),
            ua: rng.below(UAS),
            session: format!("102{}", rng.alnum(22)),
            atlassian: matches!(
                DEPTS[dept].name,
                "Engineering" | "IT" | "Security" | "Support"
            ) || rng.chance(0.15),
        }
    }

    /// Whether an address is already taken (directory or created accounts).
    pub fn email_taken(&self, email: &str) -> bool {
        self.emails.contains(email)
    }

    pub fn reserve_email(&mut self, email: &str) {
        self.emails.insert(email.to_owned());
    }

    pub fn dept_name(&self, p: usize) -> &'static str {
        DEPTS[self.people[p].dept].name
    }

    /// Directory rows (people on the HR export), in HR order.
    pub fn directory_csv(&self) -> String {
        let mut out = String::from(
            "email,user_id,display_name,department,team,title,manager,employment_type,timezone,start_date,team_since\n",
        );
        for p in self.people.iter().filter(|p| p.in_directory()) {
            let manager = p
                .manager
                .map(|m| self.people[m].email.as_str())
                .unwrap_or("");
            let fields = [
                p.email.as_str(),
                p.okta_id.as_str(),
                p.display.as_str(),
                DEPTS[p.dept].name,
                self.teams[p.team].name.as_str(),
                p.title.as_str(),
                manager,
                if p.contractor {
                    "contractor"
                } else {
                    "employee"
                },
                p.zone().name,
                &p.start.to_string(),
                // HR's effective date of the person's latest move, as a job change records it.
                &p.before
                    .map(|(_, _, since)| since.to_string())
                    .unwrap_or_default(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
        out
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Window {
        let test_start = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        Window {
            hist_start: test_start - Duration::days(60),
            test_start,
            test_end: test_start + Duration::days(7),
        }
    }

    #[test]
    fn builds_an_org_of_about_the_asked_size_with_unique_emails() {
        let org = Org::build(&mut Rand::new(3, 0), 500, window());
        let dir = org.people.iter().filter(|p| p.in_directory()).count();
        assert!((450..=560).contains(&dir), "{dir}");
        let mut emails: Vec<_> = org.people.iter().map(|p| &p.email).collect();
        emails.sort();
        emails.dedup();
        assert_eq!(emails.len(), org.people.len());
        assert!(org.identity.len() >= 2 && org.helpdesk.len() >= 3);
        assert!(org.people.iter().all(|p| p.email == p.email.to_lowercase()));
    }

    #[test]
    fn slugs_are_group_names() {
        assert_eq!(slug("FP&A"), "fpa");
        assert_eq!(slug("Tier 1"), "tier-1");
        assert_eq!(slug("Core Services"), "core-services");
    }
}
