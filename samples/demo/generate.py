#!/usr/bin/env python3
"""Generate the bundled provguard demo organisation ("Acme Rocket").

Deterministic (one ``random.Random(7)``, fixed gzip headers), standard library only.
Writes, next to this file:

  context/directory.csv, context/approvals.jsonl, context/change_windows.jsonl, context/domains.txt
  history/okta.jsonl.gz        Okta System Log events, one per line (60 days)
  history/cloudtrail.json.gz   one CloudTrail log file {"Records": [...]}
  history/entra.jsonl.gz       Microsoft Graph directoryAudit objects, one per line
  replay/day.jsonl             2026-11-02 (UTC): raw events of all three sources in time order

Run:  python3 samples/demo/generate.py
See README.md for the story and what each planted event should trigger.
"""

import csv
import gzip
import io
import json
import os
import uuid
from datetime import date, datetime, timedelta, timezone
from random import Random
from zoneinfo import ZoneInfo

R = Random(7)
HERE = os.path.dirname(os.path.abspath(__file__))
UTC = timezone.utc

HIST_START = datetime(2026, 9, 2, tzinfo=UTC)
HIST_END = datetime(2026, 11, 1, tzinfo=UTC)
REPLAY_DAY = date(2026, 11, 2)
ACCOUNT = "111122223333"
DOMAIN = "acmerocket.example"
LABS = "acmerocket-labs.example"
SSO_INSTANCE = "ssoins-7223a5c1f0e4b9d2"
US_HOLIDAYS = {date(2026, 9, 7)}  # Labor Day
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
UPPER_NUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------

def rid(n, alphabet=ALNUM):
    return "".join(R.choice(alphabet) for _ in range(n))


def hexs(n):
    return "".join(R.choice("0123456789abcdef") for _ in range(n))


def guid():
    return str(uuid.UUID(int=R.getrandbits(128), version=4))


def okta_uuid(t):
    """Okta System Log uuids are version-1 (time-based) UUIDs."""
    ticks = int((t - datetime(1582, 10, 15, tzinfo=UTC)).total_seconds() * 10_000_000) + R.randrange(10_000)
    node, seq = R.choice(OKTA_NODES)
    return str(uuid.UUID(fields=(ticks & 0xFFFFFFFF, (ticks >> 32) & 0xFFFF, ((ticks >> 48) & 0x0FFF) | 0x1000,
                                 0x80 | (seq >> 8), seq & 0xFF, node)))


OKTA_NODES = [(R.getrandbits(48), R.randrange(0x4000)) for _ in range(12)]  # the org's System Log writers


def okta_id(prefix):
    return prefix + rid(17)


def okta_request_id():
    return rid(22, ALNUM + "-_") + "AAA" + R.choice("ABCDEFGH")


def fmt_okta(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def fmt_ct(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_graph(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}{R.randrange(10)}Z"


def fmt_rfc(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def local_to_utc(day, hour, tz):
    """A local wall-clock time (fractional hour) on `day` in `tz`, as an aware UTC datetime."""
    h = int(hour)
    m = int((hour - h) * 60)
    s = R.randrange(60)
    ms = R.randrange(1000)
    loc = datetime(day.year, day.month, day.day, h, m, s, ms * 1000, tzinfo=ZoneInfo(tz))
    return loc.astimezone(UTC)


def days(start, end):
    d = start
    while d < end:
        yield d
        d += timedelta(days=1)


def weighted(items):
    """items: [(value, weight)] -> value"""
    total = sum(w for _, w in items)
    x = R.uniform(0, total)
    for v, w in items:
        x -= w
        if x <= 0:
            return v
    return items[-1][0]


# ----------------------------------------------------------------------------------------------
# the organisation
# ----------------------------------------------------------------------------------------------

NY, BER, LA = "America/New_York", "Europe/Berlin", "America/Los_Angeles"
OFFICES = {
    NY: {"nat": "198.51.100.23", "net": "198.51.100.", "city": "New York", "state": "New York", "country": "United States",
         "postalCode": "10013", "lat": 40.7209, "lon": -74.0007, "asNumber": 701, "asOrg": "verizon business", "isp": "verizon business",
         "domain": "verizon.net"},
    BER: {"nat": "203.0.113.41", "net": "203.0.113.", "city": "Berlin", "state": "Land Berlin", "country": "Germany",
          "postalCode": "10117", "lat": 52.5170, "lon": 13.3889, "asNumber": 3320, "asOrg": "deutsche telekom ag", "isp": "deutsche telekom ag",
          "domain": "t-ipconnect.de"},
    LA: {"nat": "192.0.2.77", "net": "192.0.2.", "city": "Los Angeles", "state": "California", "country": "United States",
         "postalCode": "90013", "lat": 34.0443, "lon": -118.2448, "asNumber": 20001, "asOrg": "charter communications", "isp": "spectrum",
         "domain": "rr.com"},
}

UAS = [
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36", "Mac OS X", "CHROME"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36 Edg/129.0.0.0", "Windows 10", "EDGE_CHROMIUM"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.6; rv:131.0) Gecko/20100101 Firefox/131.0", "Mac OS X", "FIREFOX"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15", "Mac OS X", "SAFARI"),
]

# first, last, department, team, title, manager (first.last), employment, tz, start date, labs domain
PEOPLE = [
    # Engineering / Platform
    ("Jonas", "Weber", "Engineering", "Platform", "Engineering Manager, Platform", "", "employee", BER, "2021-03-01", False),
    ("Sam", "Rivera", "Engineering", "Platform", "Senior Site Reliability Engineer", "jonas.weber", "employee", BER, "2022-06-13", False),
    ("Lena", "Fischer", "Engineering", "Platform", "Site Reliability Engineer", "jonas.weber", "employee", BER, "2023-01-09", False),
    ("Marco", "Rossi", "Engineering", "Platform", "Platform Engineer", "jonas.weber", "employee", BER, "2024-04-15", False),
    ("Hannah", "Kim", "Engineering", "Platform", "Platform Engineer", "jonas.weber", "employee", NY, "2022-09-19", False),
    ("Derek", "Olsen", "Engineering", "Platform", "Platform Engineer", "jonas.weber", "employee", LA, "2025-02-03", False),
    ("Felix", "Wagner", "Engineering", "Platform", "DevOps Engineer (Contract)", "jonas.weber", "contractor", BER, "2026-10-19", False),
    ("Oscar", "Lindqvist", "Engineering", "Platform", "Site Reliability Engineer", "jonas.weber", "employee", BER, "2026-11-02", False),
    # Engineering / Payments
    ("Grace", "Liu", "Engineering", "Payments", "Engineering Manager, Payments", "", "employee", LA, "2020-11-02", False),
    ("Carlos", "Mendez", "Engineering", "Payments", "Senior Software Engineer", "grace.liu", "employee", LA, "2021-07-12", False),
    ("Aisha", "Bello", "Engineering", "Payments", "Software Engineer", "grace.liu", "employee", LA, "2023-05-22", False),
    ("Ben", "Carter", "Engineering", "Payments", "Software Engineer", "grace.liu", "employee", NY, "2024-01-08", False),
    ("Yuki", "Tanaka", "Engineering", "Payments", "Software Engineer", "grace.liu", "employee", LA, "2022-02-14", False),
    ("Olivia", "Chen", "Engineering", "Payments", "QA Engineer (Contract)", "grace.liu", "contractor", LA, "2025-08-04", False),
    ("Noah", "Patel", "Engineering", "Payments", "Software Engineer", "grace.liu", "employee", LA, "2025-05-12", False),
    ("Liam", "Murphy", "Engineering", "Payments", "Software Engineer", "grace.liu", "employee", LA, "2026-11-02", False),
    # Engineering / Data
    ("Miriam", "Katz", "Engineering", "Data", "Data Engineering Manager", "", "employee", NY, "2021-01-11", False),
    ("Tobias", "Braun", "Engineering", "Data", "Senior Data Engineer", "miriam.katz", "employee", BER, "2022-10-04", True),
    ("Elena", "Popescu", "Engineering", "Data", "Data Engineer", "miriam.katz", "employee", BER, "2023-09-01", True),
    ("Kwame", "Mensah", "Engineering", "Data", "Data Engineer", "miriam.katz", "employee", NY, "2026-09-21", False),
    ("Sofia", "Alvarez", "Engineering", "Data", "Analytics Engineer", "miriam.katz", "employee", NY, "2024-06-03", False),
    ("Arjun", "Mehta", "Engineering", "Data", "Data Scientist", "miriam.katz", "employee", NY, "2023-03-20", False),
    ("Ivan", "Novak", "Engineering", "Data", "Data Engineer (Contract)", "miriam.katz", "contractor", BER, "2025-11-17", True),
    ("Hugo", "Laurent", "Engineering", "Data", "Data Engineer", "miriam.katz", "employee", BER, "2026-10-05", False),
    ("Mia", "Schulz", "Engineering", "Data", "Data Engineer", "miriam.katz", "employee", BER, "2026-11-02", True),
    # Sales / Enterprise
    ("Patrick", "Doyle", "Sales", "Enterprise", "Sales Director, Enterprise", "", "employee", NY, "2020-05-04", False),
    ("Megan", "Shaw", "Sales", "Enterprise", "Account Executive", "patrick.doyle", "employee", NY, "2021-10-18", False),
    ("Brian", "Foster", "Sales", "Enterprise", "Account Executive", "patrick.doyle", "employee", NY, "2022-03-07", False),
    ("Chloe", "Martin", "Sales", "Enterprise", "Solutions Engineer", "patrick.doyle", "employee", NY, "2023-02-13", False),
    ("Diego", "Ramirez", "Sales", "Enterprise", "Account Executive", "patrick.doyle", "employee", NY, "2024-08-26", False),
    ("Emily", "Walsh", "Sales", "Enterprise", "Sales Operations Manager", "patrick.doyle", "employee", NY, "2021-06-01", False),
    ("Tyler", "Brooks", "Sales", "Enterprise", "Account Executive", "patrick.doyle", "employee", NY, "2026-10-05", False),
    ("Jonathan", "Smith", "Sales", "Enterprise", "Account Executive", "patrick.doyle", "employee", NY, "2026-11-16", False),
    # Sales / SMB
    ("Jessica", "Park", "Sales", "SMB", "Sales Manager, SMB", "patrick.doyle", "employee", LA, "2021-04-12", False),
    ("Ryan", "Cooper", "Sales", "SMB", "Account Executive", "jessica.park", "employee", LA, "2022-11-07", False),
    ("Alyssa", "Nguyen", "Sales", "SMB", "Sales Development Representative", "jessica.park", "employee", LA, "2024-02-20", False),
    ("Marcus", "Hill", "Sales", "SMB", "Account Executive", "jessica.park", "employee", LA, "2023-07-10", False),
    ("Natalie", "Ross", "Sales", "SMB", "Sales Development Representative", "jessica.park", "employee", LA, "2026-09-14", False),
    ("Jordan", "Blake", "Sales", "SMB", "Account Executive", "jessica.park", "employee", LA, "2025-03-03", False),
    ("Rosa", "Delgado", "Sales", "SMB", "Account Executive", "jessica.park", "employee", LA, "2026-10-05", False),
    ("Ava", "Thompson", "Sales", "SMB", "Sales Development Representative", "jessica.park", "employee", LA, "2026-11-02", False),
    # Finance
    ("Maria", "Lopez", "Finance", "Accounting", "Controller", "", "employee", NY, "2020-08-17", False),
    ("David", "Stein", "Finance", "Accounting", "Senior Accountant", "maria.lopez", "employee", NY, "2021-09-13", False),
    ("Laura", "Bennett", "Finance", "Accounting", "FP&A Analyst", "maria.lopez", "employee", NY, "2023-04-03", False),
    ("Henry", "Zhou", "Finance", "Accounting", "Accountant", "maria.lopez", "employee", NY, "2024-10-07", False),
    ("Fatima", "Khan", "Finance", "Accounting", "Payroll Specialist", "maria.lopez", "employee", NY, "2022-01-18", False),
    ("George", "Miller", "Finance", "Accounting", "Accountant (Contract)", "maria.lopez", "contractor", NY, "2026-10-12", False),
    ("Isabella", "Moore", "Finance", "Accounting", "Accounts Payable Specialist", "maria.lopez", "employee", NY, "2026-11-02", False),
    # HR
    ("Sarah", "Collins", "HR", "People Operations", "Head of People", "", "employee", NY, "2020-06-22", False),
    ("Daniel", "Reyes", "HR", "People Operations", "People Partner", "sarah.collins", "employee", NY, "2026-09-08", False),
    ("Amelia", "Grant", "HR", "People Operations", "Recruiter", "sarah.collins", "employee", LA, "2023-11-06", False),
    ("Julia", "Hoffmann", "HR", "People Operations", "People Operations Specialist", "sarah.collins", "employee", BER, "2022-05-02", False),
    # IT / Identity
    ("Rebecca", "Stone", "IT", "Identity", "IT Director", "", "employee", NY, "2020-09-14", False),
    ("Kevin", "O'Brien", "IT", "Identity", "Senior Identity Engineer", "rebecca.stone", "employee", NY, "2021-02-01", False),
    ("Anna", "Schmidt", "IT", "Identity", "Identity Engineer", "rebecca.stone", "employee", BER, "2022-04-19", False),
    ("Luis", "Garcia", "IT", "Identity", "Identity Engineer", "rebecca.stone", "employee", LA, "2023-06-05", False),
    ("Priya", "Desai", "IT", "Identity", "Identity Engineer", "rebecca.stone", "employee", NY, "2024-03-11", False),
    ("Dana", "Whitfield", "IT", "Identity", "IAM Analyst", "rebecca.stone", "employee", NY, "2024-09-30", False),
    # IT / Helpdesk
    ("Ravi", "Kumar", "IT", "Helpdesk", "IT Support Lead", "rebecca.stone", "employee", LA, "2021-08-23", False),
    ("Tom", "Becker", "IT", "Helpdesk", "IT Support Specialist", "ravi.kumar", "employee", BER, "2023-01-16", False),
    ("Jasmine", "Lee", "IT", "Helpdesk", "IT Support Specialist", "ravi.kumar", "employee", NY, "2022-07-25", False),
    ("Omar", "Haddad", "IT", "Helpdesk", "IT Support Specialist", "ravi.kumar", "employee", NY, "2024-05-13", False),
    # Security
    ("Ethan", "Brooks", "Security", "Security Operations", "Head of Security", "", "employee", NY, "2021-05-10", False),
    ("Nina", "Petrova", "Security", "Security Operations", "Security Engineer", "ethan.brooks", "employee", NY, "2023-08-14", False),
    ("Lukas", "Meier", "Security", "Security Operations", "Security Engineer", "ethan.brooks", "employee", BER, "2022-12-05", False),
    ("Zoe", "Adams", "Security", "Security Operations", "Security Analyst", "ethan.brooks", "employee", LA, "2024-11-18", False),
]

# People who left before the history window ends (not in the HR export any more).
LEAVERS = [
    ("Paul", "Turner", "Sales", "Enterprise", NY, date(2026, 9, 25)),
    ("Sandra", "Kowalski", "Engineering", "Payments", LA, date(2026, 10, 9)),
    ("Victor", "Huang", "Finance", "Accounting", NY, date(2026, 10, 23)),
]


class Person:
    def __init__(self, first, last, dept, team, title, manager, etype, tz, start, labs):
        self.first, self.last = first, last
        self.display = f"{first} {last}"
        local = f"{first}.{last}".lower().replace("'", "")
        self.email = f"{local}@{LABS if labs else DOMAIN}"
        self.dept, self.team, self.title, self.etype, self.tz = dept, team, title, etype, tz
        self.manager_key = manager
        self.manager = ""
        self.start = date.fromisoformat(start) if isinstance(start, str) else start
        self.okta_id = okta_id("00u")
        self.entra_id = guid()
        self.idstore_id = f"{hexs(8)}-{hexs(4)}-{hexs(4)}-{hexs(4)}-{hexs(12)}"
        off = OFFICES[tz]
        self.home_ip = off["net"] + str(R.randrange(100, 250))
        self.ua = R.choice(UAS)
        self.session = "102" + rid(22)
        self.hours = (8.5, 17.5)  # usual local working hours

    def ip(self):
        return OFFICES[self.tz]["nat"] if R.random() < 0.7 else self.home_ip

    def __repr__(self):
        return self.email


people = [Person(*p) for p in PEOPLE]
BY = {p.email.split("@")[0]: p for p in people}
for p in people:
    if p.manager_key:
        p.manager = BY[p.manager_key].email
leavers = [Person(f, l, d, t, "", "", "employee", tz, "2022-01-10", False) for f, l, d, t, tz, _ in LEAVERS]
for lv, (_, _, _, _, _, left) in zip(leavers, LEAVERS):
    lv.left = left

P = BY.__getitem__
IDENTITY_ADMINS = [P("kevin.obrien"), P("anna.schmidt"), P("luis.garcia")]
P("kevin.obrien").hours = (9.0, 17.0)
HELPDESK = [P("tom.becker"), P("jasmine.lee"), P("omar.haddad"), P("ravi.kumar")]
PLATFORM_ENGINEERS = [P("jonas.weber"), P("sam.rivera"), P("lena.fischer"), P("marco.rossi"), P("hannah.kim"), P("derek.olsen")]
WAVE = [p for p in people if p.start == REPLAY_DAY]
HISTORY_HIRES = [p for p in people if HIST_START.date() <= p.start < HIST_END.date()]


def active(p, t):
    """The person has an account at time t (created on or before the start date)."""
    return p.start <= t.date() and p not in WAVE and p.email != P("jonathan.smith").email


# ----------------------------------------------------------------------------------------------
# entitlement catalogues (what each department/team normally receives)
# ----------------------------------------------------------------------------------------------

def G(name):
    return ("group", name)


def A(name):
    return ("app", name)


OKTA_CORE_ALL = [G("all-staff"), A("Slack"), A("Zoom"), A("Microsoft Office 365")]
OKTA_CORE_DEPT = {
    "Engineering": [G("eng-all"), A("GitHub Enterprise Cloud")],
    "Sales": [G("sales-all"), A("Salesforce")],
    "Finance": [G("finance-all"), A("NetSuite")],
    "HR": [G("hr-all"), A("Workday")],
    "IT": [G("it-all"), A("Zendesk")],
    "Security": [G("security-all"), A("CrowdStrike Falcon")],
}
OKTA_CORE_TEAM = {
    "Platform": [G("platform-team")], "Payments": [G("payments-eng")], "Data": [G("data-eng")],
    "Enterprise": [G("sales-enterprise")], "SMB": [G("sales-smb")], "Helpdesk": [G("it-helpdesk")],
    "Identity": [G("identity-team")], "Security Operations": [G("soc-analysts")],
}
OKTA_OPT_ALL = [(G("vpn-users"), 3), (G("confluence-editors"), 2), (A("Miro"), 1.5), (A("Loom"), 1), (A("Figma"), 1)]
OKTA_OPT_DEPT = {
    "Engineering": [(G("prod-readonly"), 5), (A("Datadog"), 4), (A("AWS IAM Identity Center"), 3), (A("PagerDuty"), 2), (A("Jira Software"), 3)],
    "Sales": [(A("Gong"), 5), (A("Outreach"), 3), (G("sales-enablement"), 4), (A("LinkedIn Sales Navigator"), 2)],
    "Finance": [(A("Expensify"), 3), (A("Bill.com"), 3), (G("expense-approvers"), 2), (G("finance-reports"), 2)],
    "HR": [(A("Greenhouse"), 3), (A("Lattice"), 3), (G("people-data"), 2)],
    "IT": [(A("Jamf Pro"), 3), (G("it-oncall"), 2), (A("Tailscale"), 2)],
    "Security": [(A("Splunk Cloud"), 3), (A("Wiz"), 3), (G("security-oncall"), 2)],
}
OKTA_OPT_TEAM = {
    "Platform": [(G("oncall-platform"), 3), (A("Terraform Cloud"), 3)],
    "Payments": [(A("Stripe Dashboard"), 3), (G("pci-cde-access"), 2)],
    "Data": [(A("Snowflake"), 4), (A("Looker"), 3)],
    "Enterprise": [(G("deal-desk"), 3)],
    "SMB": [(G("smb-pipeline"), 2)],
    "Accounting": [(G("month-end-close"), 2)],
    "Helpdesk": [(G("helpdesk-tier2"), 2)],
}
# Just-in-time production access (admin tier), always with a ticket.
JIT_GROUPS = {"Platform": ["prod-db-admins", "prod-k8s-admins"], "Data": ["prod-db-admins"], "Payments": ["prod-db-admins"]}

ENTRA_CORE_ALL = [G("All Staff")]
ENTRA_CORE_DEPT = {"Engineering": [G("Engineering Team")], "Sales": [G("Sales Team")], "Finance": [G("Finance Team")],
                   "HR": [G("People Team")], "IT": [G("IT Team")], "Security": [G("Security Team")]}
ENTRA_OPT_ALL = [(G("Intune - Corporate Devices"), 3), (G("Teams - Town Hall Presenters"), 1)]
ENTRA_OPT_DEPT = {
    "Engineering": [(G("Teams - Incident Bridge"), 3), (G("Visio Users"), 1)],
    "Sales": [(G("Power BI Pro"), 2), (G("Teams - Customer Escalations"), 3)],
    "Finance": [(G("SharePoint - Finance"), 3), (G("Power BI Pro"), 3)],
    "HR": [(G("SharePoint - HR Confidential"), 3)],
    "IT": [(G("Exchange - support@ shared mailbox"), 3), (G("Teams - Incident Bridge"), 2)],
    "Security": [(G("Teams - Incident Bridge"), 3), (G("Exchange - security@ shared mailbox"), 2)],
}
ENTRA_OPT_TEAM = {"Enterprise": [(G("Teams - Enterprise Deals"), 3)], "Data": [(G("Power BI Pro"), 3)]}

ENTRA_ROLES = {  # name: template id (built-in role template ids are the same in every tenant)
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "Exchange Administrator": "29232cdf-9323-42fd-ade2-1d097af3e4de",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Helpdesk Administrator": "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "Groups Administrator": "fdd7a751-b60b-444a-984c-02652fe8fa1c",
    "Security Administrator": "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "Security Reader": "5d6b6bb7-de71-4623-b4af-96380a352509",
    "Global Reader": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
}
ENTRA_ROLE_WKN = {
    "Global Administrator": "TenantAdmins", "Privileged Role Administrator": "PrivilegedRoleAdmins",
    "Exchange Administrator": "ExchangeServiceAdmins", "User Administrator": "UserAccountAdmins",
    "Helpdesk Administrator": "HelpdeskAdmins", "Groups Administrator": "GroupsAdministrators",
    "Security Administrator": "SecurityAdministrators", "Security Reader": "SecurityReaders", "Global Reader": "GlobalReaders",
}
ENTRA_ROLE_OBJ = {name: guid() for name in ENTRA_ROLES}

CT_GROUPS = {"Engineering": [("developers", 3)], "Platform": [("platform-engineers", 3)], "Data": [("data-engineers", 3)],
             "Payments": [("payments-deployers", 3)], "Finance": [("billing-viewers", 3)], "Security": [("security-auditors", 3)]}
CT_POLICIES = {"Platform": [("ReadOnlyAccess", 3)], "Data": [("AmazonS3ReadOnlyAccess", 3), ("ReadOnlyAccess", 1)],
               "Security": [("SecurityAudit", 3)], "Finance": [("AWSBillingReadOnlyAccess", 2)]}
PERMISSION_SETS = {"ReadOnlyAccess": "ps-6804a3b2c1d9e7f0", "PlatformEngineer": "ps-2b9e41c7d05a8f36",
                   "DataEngineer": "ps-91c3f7e28a4d6b05", "AdministratorAccess": "ps-0d5e8a1f93b7c264"}
SSO_ADMIN_ROLE = "AWSReservedSSO_AdministratorAccess_0123456789abcdef"
SSO_PLATFORM_ROLE = "AWSReservedSSO_PlatformEngineer_fedcba9876543210"
TF_POLICIES = [("app-s3-read", 4), ("app-sqs-consumer", 3), ("app-secrets-read", 3), ("app-dynamodb-rw", 2), ("ci-ecr-push", 2)]
TF_APPS = ["orders", "ledger", "payouts", "catalog", "search", "notifier", "ingest", "billing", "fraud-score", "exports"]

OKTA_IDS = {}


def okta_ent_id(kind, name):
    key = (kind, name)
    if key not in OKTA_IDS:
        OKTA_IDS[key] = okta_id({"group": "00g", "app": "0oa", "rule": "0pr", "appuser": "0ua"}[kind])
    return OKTA_IDS[key]


ENTRA_GROUP_IDS = {}


def entra_group_id(name):
    if name not in ENTRA_GROUP_IDS:
        ENTRA_GROUP_IDS[name] = guid()
    return ENTRA_GROUP_IDS[name]


def okta_catalog(p):
    core = OKTA_CORE_ALL + OKTA_CORE_DEPT.get(p.dept, []) + OKTA_CORE_TEAM.get(p.team, [])
    opt = OKTA_OPT_ALL + OKTA_OPT_DEPT.get(p.dept, []) + OKTA_OPT_TEAM.get(p.team, [])
    return core, opt


def entra_catalog(p):
    core = ENTRA_CORE_ALL + ENTRA_CORE_DEPT.get(p.dept, [])
    opt = ENTRA_OPT_ALL + ENTRA_OPT_DEPT.get(p.dept, []) + ENTRA_OPT_TEAM.get(p.team, [])
    return core, opt


def ct_catalog(p):
    groups = CT_GROUPS.get(p.dept, []) + CT_GROUPS.get(p.team, [])
    pols = CT_POLICIES.get(p.team, []) + CT_POLICIES.get(p.dept, [])
    return [(G(n), w) for n, w in groups] + [(("policy", n), w) for n, w in pols]


# who holds what, per source: {(source, email): {ent: held_until or None}}
HELD = {}


def held(src, p):
    return HELD.setdefault((src, p.email), {})


def has(src, p, ent, t):
    h = held(src, p)
    return ent in h and (h[ent] is None or h[ent] > t)


for p in people + leavers:
    if p in WAVE or p.email.startswith("jonathan.smith"):
        continue
    if p.start >= HIST_START.date():
        continue  # created during the history
    core, opt = okta_catalog(p)
    for e in core:
        held("okta", p)[e] = None
    for e, _ in opt:
        if R.random() < 0.35:
            held("okta", p)[e] = None
    core, opt = entra_catalog(p)
    for e in core:
        held("entra", p)[e] = None
    for e, _ in opt:
        if R.random() < 0.4:
            held("entra", p)[e] = None
    for e, _ in ct_catalog(p):
        if R.random() < 0.5:
            held("ct", p)[e] = None


# ----------------------------------------------------------------------------------------------
# abstract events
# ----------------------------------------------------------------------------------------------

EVENTS = []      # history
REPLAY = []      # replay day
APPROVALS = []
WINDOWS = []


class Ev(dict):
    pass


def emit(bucket, src, t, typ, actor, target=None, ent=None, **kw):
    e = Ev(src=src, t=t, typ=typ, actor=actor, target=target, ent=ent, **kw)
    bucket.append(e)
    return e


def approve(target, entitlement, t, approver, prefix="IT", valid_hours=24 * 7, lead=None):
    lead = lead if lead is not None else timedelta(minutes=R.randrange(20, 600))
    at = t - lead
    ticket = f"{prefix}-{R.randrange(1000, 9999)}"
    APPROVALS.append({"ticket": ticket, "target": target.email if isinstance(target, Person) else target,
                      "entitlement": entitlement, "approved_by": approver.email,
                      "approved_at": fmt_rfc(at), "expires_at": fmt_rfc(at + timedelta(hours=valid_hours))})
    return ticket


def business_time(p, day, lo=None, hi=None):
    a, b = p.hours
    lo = a if lo is None else lo
    hi = b if hi is None else hi
    return local_to_utc(day, R.triangular(lo, hi, (lo + hi) / 2 - 1), p.tz)


def is_workday(p, day):
    if day.weekday() >= 5:
        return False
    if p.tz != BER and day in US_HOLIDAYS:
        return False
    return True


def pick_target(src, t, exclude=(), pool=None):
    pool = pool or people
    cands = [p for p in pool if active(p, t) and p not in exclude]
    return R.choice(cands)


def pick_optional(src, p, t, catalog_fn):
    if src == "ct":
        opt = catalog_fn(p)
    else:
        _, opt = catalog_fn(p)
    free = [(e, w) for e, w in opt if not has(src, p, e, t)]
    if not free:
        return None
    return weighted(free)


def grant_optional(bucket, src, actor, t, catalog_fn, typ_for, remove_by=None, keep=0.2, target=None, pool=None):
    """An actor grants one optional entitlement to someone who lacks it; usually time-bound."""
    for _ in range(12):
        p = target or pick_target(src, t, exclude=(actor,) if isinstance(actor, Person) else (), pool=pool)
        ent = pick_optional(src, p, t, catalog_fn)
        if ent:
            break
    else:
        return None
    emit(bucket, src, t, typ_for(ent), actor, p, ent)
    until = None
    if R.random() > keep:
        # access reviews / licence reclamation take it back after a while
        d = t.date() + timedelta(days=R.randrange(2, 18))
        remover = remove_by(actor) if remove_by else actor
        if isinstance(remover, Person):
            while not is_workday(remover, d):
                d += timedelta(days=1)
            rt = business_time(remover, d)
        else:
            rt = datetime(d.year, d.month, d.day, 6, R.randrange(0, 20), R.randrange(60), tzinfo=UTC)
        if rt < HIST_END:
            emit(bucket, src, rt, typ_for(ent).replace(".add", ".remove"), remover, p, ent)
            until = rt
    held(src, p)[ent] = until
    return ent


def reclaim(bucket, src, actor, t, catalog_fn):
    """Remove one optional entitlement someone holds (unused licence, access review)."""
    for _ in range(10):
        p = pick_target(src, t, exclude=(actor,) if isinstance(actor, Person) else ())
        opt = catalog_fn(p) if src == "ct" else catalog_fn(p)[1]
        have = [e for e, _ in opt if has(src, p, e, t) and held(src, p)[e] is None]
        if have:
            ent = R.choice(have)
            typ = {"okta": okta_typ, "entra": entra_typ, "ct": ct_typ}[src](ent).replace(".add", ".remove")
            emit(bucket, src, t, typ, actor, p, ent)
            held(src, p)[ent] = t
            return ent
    return None


def okta_typ(ent):
    return "okta.group.add" if ent[0] == "group" else "okta.app.add"


def entra_typ(ent):
    return "entra.group.add"


def ct_typ(ent):
    return "ct.group.add" if ent[0] == "group" else "ct.policy.add"


OKTA_WORKFLOWS = "okta_workflows"
OKTA_SYSTEM = "okta_system"
ENTRA_PROV = "entra_provisioning"
MS_PIM = "ms_pim"
TERRAFORM = "terraform"
SSO_SERVICE = "sso_service"


def remover_okta(actor):
    return OKTA_WORKFLOWS if R.random() < 0.5 else actor


# ----------------------------------------------------------------------------------------------
# history
# ----------------------------------------------------------------------------------------------

def hr_onboard(bucket, p, day, base_hour_utc=11.0):
    """Workday -> Okta import (system principal), group rules, app assignments, then Entra provisioning."""
    t = datetime(day.year, day.month, day.day, int(base_hour_utc), R.randrange(0, 4), R.randrange(60),
                 R.randrange(1000) * 1000, tzinfo=UTC)
    emit(bucket, "okta", t, "okta.user.create", OKTA_SYSTEM, p, None, job=True)
    core, _ = okta_catalog(p)
    for e in core:
        t += timedelta(seconds=R.uniform(0.4, 3.0))
        emit(bucket, "okta", t, okta_typ(e), OKTA_SYSTEM, p, e, job=True)
        held("okta", p)[e] = None
    t2 = t + timedelta(minutes=R.uniform(2, 6))
    emit(bucket, "entra", t2, "entra.user.create", ENTRA_PROV, p, None)
    for e in entra_catalog(p)[0]:
        t2 += timedelta(seconds=R.uniform(2, 20))
        emit(bucket, "entra", t2, "entra.group.add", ENTRA_PROV, p, e)
        held("entra", p)[e] = None
    return t


def manual_onboard(bucket, p, actor, t):
    """Contractors are not in Workday: IT creates them by hand and adds the usual access."""
    emit(bucket, "okta", t, "okta.user.create", actor, p, None)
    core, _ = okta_catalog(p)
    for e in core:
        t += timedelta(seconds=R.uniform(15, 70))
        emit(bucket, "okta", t, okta_typ(e), actor, p, e)
        held("okta", p)[e] = None
    return t


def gen_history():
    hire_days = {p.start: [] for p in HISTORY_HIRES}
    for p in HISTORY_HIRES:
        hire_days[p.start].append(p)
    change_days = {date(2026, 9, 26): (P("anna.schmidt"), "confluence-editors"), date(2026, 10, 17): (P("kevin.obrien"), "vpn-users")}

    for day in days(HIST_START.date(), HIST_END.date()):
        # --- HR-driven and manual onboarding
        for p in hire_days.get(day, []):
            if p.etype == "contractor":
                actor = R.choice([P("ravi.kumar"), P("luis.garcia")]) if p.tz != BER else P("tom.becker")
                t = business_time(actor, day, 9.5, 11.5)
                manual_onboard(EVENTS, p, actor, t)
                emit(EVENTS, "entra", t + timedelta(minutes=R.uniform(20, 60)), "entra.user.create", ENTRA_PROV, p, None)
            else:
                hr_onboard(EVENTS, p, day)
            if p.dept == "Engineering":
                # engineers also get an IAM user for programmatic access (created by an identity admin)
                adm = R.choice(IDENTITY_ADMINS)
                d2 = day + timedelta(days=1)
                while not is_workday(adm, d2):
                    d2 += timedelta(days=1)
                t = business_time(adm, d2)
                emit(EVENTS, "ct", t, "ct.user.create", adm, p, None)
                emit(EVENTS, "ct", t + timedelta(seconds=R.uniform(30, 90)), "ct.group.add", adm, p, G("developers"))
                held("ct", p)[G("developers")] = None
        # --- leavers: HR termination -> Okta deactivation (system principal) and Entra disable
        for lv in leavers:
            if lv.left == day:
                t = datetime(day.year, day.month, day.day, 22, R.randrange(0, 10), R.randrange(60), tzinfo=UTC)
                emit(EVENTS, "okta", t, "okta.user.deactivate", OKTA_SYSTEM, lv, None, job=True)
                for e in list(held("okta", lv)):
                    if e[0] == "app":
                        t += timedelta(seconds=R.uniform(0.5, 2))
                        emit(EVENTS, "okta", t, "okta.app.remove", OKTA_SYSTEM, lv, e, job=True)
                emit(EVENTS, "entra", t + timedelta(minutes=4), "entra.user.disable", ENTRA_PROV, lv, None)

        # --- Terraform: nightly apply of the infra-live repository (every day)
        tf_t = datetime(day.year, day.month, day.day, 2, 0, 0, tzinfo=UTC) + timedelta(minutes=R.uniform(-15, 25))
        for _ in range(R.choice([2, 3, 3, 4])):
            tf_t += timedelta(seconds=R.uniform(40, 200))
            tf_change(EVENTS, tf_t)
        # read-only noise in the trail (dropped by the normalizer)
        for _ in range(R.choice([0, 1, 1, 2])):
            who = R.choice(IDENTITY_ADMINS + PLATFORM_ENGINEERS)
            if is_workday(who, day):
                emit(EVENTS, "ct", business_time(who, day), "ct.read", who, None, None)

        # --- helpdesk: ~3 grants a day each, mostly Okta, some Entra
        for hd in HELPDESK:
            if not is_workday(hd, day):
                continue
            for _ in range(R.choice([2, 3, 3, 3, 4])):
                t = business_time(hd, day)
                if R.random() < 0.8:
                    grant_optional(EVENTS, "okta", hd, t, okta_catalog, okta_typ, remove_by=remover_okta)
                else:
                    grant_optional(EVENTS, "entra", hd, t, entra_catalog, entra_typ)
            if R.random() < 0.08:
                emit(EVENTS, "okta", business_time(hd, day), "okta.noise", hd, None, None)

        # --- identity admins: Okta/Entra/AWS grants, JIT production access, role grants
        for adm in IDENTITY_ADMINS:
            if not is_workday(adm, day):
                continue
            for _ in range(R.choice([3, 4, 4, 5])):
                t = business_time(adm, day)
                x = R.random()
                if x < 0.62:
                    grant_optional(EVENTS, "okta", adm, t, okta_catalog, okta_typ, remove_by=remover_okta)
                elif x < 0.80:
                    grant_optional(EVENTS, "entra", adm, t, entra_catalog, entra_typ)
                else:
                    ct_human_grant(EVENTS, adm, t)
            # Entra PIM: admins activate an eligible role most mornings
            if R.random() < 0.45:
                pim_activation(EVENTS, adm, day)
        pri = P("priya.desai")
        if is_workday(pri, day):
            for _ in range(R.choice([0, 1, 1, 2])):
                grant_optional(EVENTS, "okta", pri, business_time(pri, day), okta_catalog, okta_typ, remove_by=remover_okta)
        eth = P("ethan.brooks")
        if is_workday(eth, day) and R.random() < 0.25:
            pim_activation(EVENTS, eth, day, roles=["Security Administrator"])

        # --- JIT production access (admin tier), approved, removed the same day
        if day.weekday() < 5 and R.random() < 0.75:
            jit_grant(EVENTS, day)
        if day.weekday() < 5 and R.random() < 0.25:
            jit_grant(EVENTS, day)

        # --- platform engineers create service roles for new workloads
        for pe in PLATFORM_ENGINEERS:
            if is_workday(pe, day) and R.random() < 0.12:
                pe_change(EVENTS, pe, business_time(pe, day))

        # --- system principal: group rules re-evaluated after profile changes
        if R.random() < 0.5:
            t = datetime(day.year, day.month, day.day, R.choice([5, 13, 19]), R.randrange(60), R.randrange(60), tzinfo=UTC)
            grant_optional(EVENTS, "okta", OKTA_SYSTEM, t, okta_catalog, okta_typ, keep=1.0)
        if R.random() < 0.3:
            t = datetime(day.year, day.month, day.day, 3, R.randrange(60), R.randrange(60), tzinfo=UTC)
            grant_optional(EVENTS, "entra", ENTRA_PROV, t, entra_catalog, entra_typ, keep=1.0)

        # --- licence reclamation / access reviews: unused optional access is taken back
        t_rev = datetime(day.year, day.month, day.day, 6, R.randrange(0, 30), R.randrange(60), tzinfo=UTC)
        for _ in range(R.choice([4, 5, 6, 7])):
            reclaim(EVENTS, "okta", OKTA_WORKFLOWS, t_rev, okta_catalog)
            t_rev += timedelta(minutes=R.uniform(3, 40))
        for adm in IDENTITY_ADMINS:
            if is_workday(adm, day) and R.random() < 0.5:
                reclaim(EVENTS, "entra", adm, business_time(adm, day), entra_catalog)
            if is_workday(adm, day) and R.random() < 0.15:
                reclaim(EVENTS, "ct", adm, business_time(adm, day), ct_catalog)

        # --- sign-ins and SSO in the System Log (not provisioning; dropped)
        for _ in range(R.choice([0, 1, 1, 2])):
            who = R.choice(people[:60])
            if active(who, datetime(day.year, day.month, day.day, tzinfo=UTC)) and is_workday(who, day):
                emit(EVENTS, "okta", business_time(who, day), "okta.noise", who, None, None)
        if R.random() < 0.5:
            who = R.choice(HELPDESK + IDENTITY_ADMINS)
            if is_workday(who, day):
                tgt = pick_target("entra", datetime(day.year, day.month, day.day, tzinfo=UTC))
                emit(EVENTS, "entra", business_time(who, day), "entra.user.update", who, tgt, None)

        # --- change windows: weekend bulk work (history)
        if day in change_days:
            bulk_in_window(EVENTS, change_days[day][0], day, 10.0, history=True, group=change_days[day][1])

    # --- rarer privileged grants, spread over the window, approved
    role_grants_history()
    contractor_key_rotations()


def tf_change(bucket, t):
    x = R.random()
    app = R.choice(TF_APPS)
    env = R.choice(["prod", "staging"])
    if x < 0.3:
        emit(bucket, "ct", t, "ct.role.create", TERRAFORM, None, None, role=f"svc-{app}-{env}")
    elif x < 0.8:
        pol = weighted(TF_POLICIES)
        emit(bucket, "ct", t, "ct.role.attach", TERRAFORM, None, ("policy", pol), role=f"svc-{app}-{env}", custom=True)
    elif x < 0.93:
        emit(bucket, "ct", t, "ct.role.inline", TERRAFORM, None, ("policy", "logs-write"), role=f"svc-{app}-{env}")
    else:
        pol = weighted(TF_POLICIES)
        emit(bucket, "ct", t, "ct.role.detach", TERRAFORM, None, ("policy", pol), role=f"svc-{app}-{env}", custom=True)


def ct_human_grant(bucket, adm, t):
    eng = [p for p in people if p.dept in ("Engineering", "Finance", "Security")]
    x = R.random()
    if x < 0.85:
        ent = grant_optional(bucket, "ct", adm, t, ct_catalog, ct_typ, pool=eng, keep=0.45)
        return ent
    # Identity Center account assignment of a permission set to a user or group
    ps = R.choice(["ReadOnlyAccess", "PlatformEngineer", "DataEngineer"])
    tgt = R.choice([p for p in eng if active(p, t)])
    emit(bucket, "ct", t, "ct.sso.assign", adm, tgt, ("permission_set", ps))
    if R.random() < 0.3:
        # first assignment of that permission set in a member account: Identity Center provisions the role
        role = f"AWSReservedSSO_{ps}_{hexs(16)}"
        emit(bucket, "ct", t + timedelta(seconds=2), "ct.sso.side_create", SSO_SERVICE, None, None, role=role)
        pol = {"ReadOnlyAccess": "ReadOnlyAccess", "PlatformEngineer": "PowerUserAccess", "DataEngineer": "AmazonS3ReadOnlyAccess"}[ps]
        emit(bucket, "ct", t + timedelta(seconds=3), "ct.sso.side_attach", SSO_SERVICE, None, ("policy", pol), role=role)


def pe_change(bucket, pe, t):
    app = R.choice(TF_APPS)
    role = f"svc-{app}-{R.choice(['dev', 'staging'])}-{R.choice(['worker', 'api', 'job'])}"
    emit(bucket, "ct", t, "ct.role.create", pe, None, None, role=role, sso=SSO_PLATFORM_ROLE)
    emit(bucket, "ct", t + timedelta(seconds=R.uniform(20, 90)), "ct.role.attach", pe, None,
         ("policy", weighted(TF_POLICIES)), role=role, custom=True, sso=SSO_PLATFORM_ROLE)


def jit_grant(bucket, day):
    team = weighted([("Platform", 3), ("Data", 2), ("Payments", 2)])
    t0 = datetime(day.year, day.month, day.day, tzinfo=UTC)
    cands = [p for p in people if p.team == team and active(p, t0) and p.etype == "employee"]
    tgt = R.choice(cands)
    adm = R.choice(IDENTITY_ADMINS + [P("priya.desai")])
    if not is_workday(adm, day):
        return
    group = R.choice(JIT_GROUPS[team])
    t = business_time(adm, day, adm.hours[0], adm.hours[1] - 3)
    if has("okta", tgt, G(group), t):
        return
    mgr = BY[tgt.manager.split("@")[0]] if tgt.manager else P("rebecca.stone")
    if R.random() < 0.95:  # a couple of old grants predate the ticketing rule
        approve(tgt, group, t, mgr, prefix="ENG", valid_hours=12, lead=timedelta(minutes=R.randrange(10, 240)))
    emit(bucket, "okta", t, "okta.group.add", adm, tgt, G(group))
    rt = t + timedelta(hours=R.uniform(1.5, 3.0))
    emit(bucket, "okta", rt, "okta.group.remove", adm, tgt, G(group))
    held("okta", tgt)[G(group)] = rt


def pim_activation(bucket, who, day, roles=None):
    role = R.choice(roles or ["Global Administrator", "Privileged Role Administrator", "Exchange Administrator", "Exchange Administrator"])
    t = business_time(who, day, who.hours[0], who.hours[0] + 2.5)
    emit(bucket, "entra", t, "entra.role.add", MS_PIM, who, ("role", role))
    end = t + timedelta(hours=R.choice([2, 4, 4, 8]))
    emit(bucket, "entra", end, "entra.role.remove", MS_PIM, who, ("role", role))


def role_grants_history():
    plan = [
        # (date, source, actor, target, role, approver, revoke after days)
        (date(2026, 9, 3), "okta", "kevin.obrien", "priya.desai", "Super administrator", "rebecca.stone", 2),
        (date(2026, 9, 9), "okta", "anna.schmidt", "tom.becker", "Help Desk administrator", "ravi.kumar", None),
        (date(2026, 9, 15), "okta", "luis.garcia", "dana.whitfield", "Application administrator", "rebecca.stone", None),
        (date(2026, 9, 22), "okta", "kevin.obrien", "lukas.meier", "Read only administrator", "ethan.brooks", None),
        (date(2026, 9, 29), "okta", "anna.schmidt", "dana.whitfield", "Super administrator", "rebecca.stone", 1),
        (date(2026, 10, 6), "okta", "kevin.obrien", "omar.haddad", "Help Desk administrator", "ravi.kumar", None),
        (date(2026, 10, 8), "okta", "luis.garcia", "priya.desai", "Organization administrator", "rebecca.stone", 3),
        (date(2026, 10, 14), "okta", "anna.schmidt", "rebecca.stone", "Super administrator", "ethan.brooks", 1),
        (date(2026, 10, 20), "okta", "kevin.obrien", "zoe.adams", "Report administrator", "ethan.brooks", None),
        (date(2026, 10, 27), "okta", "luis.garcia", "dana.whitfield", "Super administrator", "rebecca.stone", 1),
        (date(2026, 9, 10), "entra", "kevin.obrien", "ravi.kumar", "Helpdesk Administrator", "rebecca.stone", None),
        (date(2026, 9, 17), "entra", "anna.schmidt", "lukas.meier", "Security Reader", "ethan.brooks", None),
        (date(2026, 9, 24), "entra", "luis.garcia", "priya.desai", "User Administrator", "rebecca.stone", None),
        (date(2026, 10, 1), "entra", "kevin.obrien", "dana.whitfield", "Global Administrator", "rebecca.stone", 2),
        (date(2026, 10, 7), "entra", "anna.schmidt", "zoe.adams", "Global Reader", "ethan.brooks", None),
        (date(2026, 10, 13), "entra", "luis.garcia", "jasmine.lee", "Groups Administrator", "ravi.kumar", None),
        (date(2026, 10, 21), "entra", "kevin.obrien", "nina.petrova", "Security Reader", "ethan.brooks", None),
        (date(2026, 10, 28), "entra", "anna.schmidt", "priya.desai", "Global Administrator", "rebecca.stone", 1),
        (date(2026, 9, 16), "ct", "kevin.obrien", "jonas.weber", "PowerUserAccess", "rebecca.stone", None),
        (date(2026, 9, 30), "ct", "anna.schmidt", "lena.fischer", "PowerUserAccess", "jonas.weber", None),
        (date(2026, 10, 12), "ct", "luis.garcia", "jonas.weber", "AdministratorAccess", "rebecca.stone", 1),
        (date(2026, 10, 22), "ct", "kevin.obrien", "marco.rossi", "PowerUserAccess", "jonas.weber", None),
    ]
    unapproved = {date(2026, 9, 22), date(2026, 10, 6)}  # grants nobody filed a ticket for
    for d, src, a, tg, role, appr, revoke_days in plan:
        actor, target, approver = P(a), P(tg), P(appr)
        t = business_time(actor, d, actor.hours[0] + 0.5, actor.hours[1] - 1)
        if d not in unapproved:
            approve(target, role, t, approver, prefix="IT", valid_hours=24 * 5)
        typ = {"okta": "okta.role.grant", "entra": "entra.role.add", "ct": "ct.policy.add"}[src]
        kind = "policy" if src == "ct" else "role"
        emit(EVENTS, src, t, typ, actor, target, (kind, role))
        if revoke_days:
            rd = d + timedelta(days=revoke_days)
            while not is_workday(actor, rd):
                rd += timedelta(days=1)
            rt = business_time(actor, rd)
            rtyp = {"okta": "okta.role.revoke", "entra": "entra.role.remove", "ct": "ct.policy.remove"}[src]
            emit(EVENTS, src, rt, rtyp, actor, target, (kind, role))


def contractor_key_rotations():
    sam = P("sam.rivera")
    for d in (date(2026, 9, 11), date(2026, 10, 16)):
        emit(EVENTS, "ct", business_time(sam, d), "ct.key.self", sam, sam, ("credential", "access_key"), iam_user=True)


def bulk_in_window(bucket, actor, day, local_hour, history=False, group=None, targets=None, desc=None):
    """Planned bulk change by the window's listed actor (e.g. a re-org moving a team's access)."""
    start = local_to_utc(day, local_hour, actor.tz)
    w_id = f"CHG-{R.randrange(4000, 4999)}"
    if group is None:
        group = R.choice(["vpn-users", "confluence-editors"])
    if targets is None:
        t0 = start
        targets = [p for p in people if active(p, t0) and not has("okta", p, G(group), t0)]
        R.shuffle(targets)
        targets = targets[:R.randrange(8, 12)]
    desc = desc or {
        "vpn-users": "VPN concentrator migration, phase 1: re-add users to vpn-users after the group rebuild",
        "confluence-editors": "Confluence space consolidation: grant editors on the merged spaces",
        "sales-enablement": "Q4 sales kickoff: enrol Sales reps in sales-enablement (Highspot content)",
    }[group]
    WINDOWS.append({"id": w_id, "start": fmt_rfc(start - timedelta(minutes=30)), "end": fmt_rfc(start + timedelta(hours=2)),
                    "actors": [actor.email], "description": desc})
    t = start
    for p in targets:
        t += timedelta(seconds=R.uniform(25, 55))
        emit(bucket, "okta", t, "okta.group.add", actor, p, G(group))
        held("okta", p)[G(group)] = None
    return w_id


# ----------------------------------------------------------------------------------------------
# rendering: Okta System Log
# ----------------------------------------------------------------------------------------------

OKTA_SYSTEM_ACTOR = {"id": "0oa1b5sys7PrincPl0h7", "type": "SystemPrincipal", "alternateId": "system@okta.com",
                     "displayName": "Okta System", "detailEntry": None}
OKTA_WORKFLOWS_ACTOR = {"id": "0oa4wfl0ws9XqTz2m0h7", "type": "PublicClientApp", "alternateId": "0oa4wfl0ws9XqTz2m0h7",
                        "displayName": "Okta Workflows OAuth", "detailEntry": None}
OKTA_META = {
    "okta.user.create": ("user.lifecycle.create", "Create okta user", "core.user.config.user_creation.success"),
    "okta.user.deactivate": ("user.lifecycle.deactivate", "Deactivate Okta user", "core.user.config.user_deactivated"),
    "okta.group.add": ("group.user_membership.add", "Add user to group membership", "core.user_group_member.user_add"),
    "okta.group.remove": ("group.user_membership.remove", "Remove user from group membership", "core.user_group_member.user_remove"),
    "okta.app.add": ("application.user_membership.add", "Add user to application membership", "app.generic.provision.assign_user_to_app"),
    "okta.app.remove": ("application.user_membership.remove", "Remove user from application membership", "app.generic.provision.deprovision_user_from_app"),
    "okta.role.grant": ("user.account.privilege.grant", "Grant user privilege", "core.user.admin_privilege.granted"),
    "okta.role.revoke": ("user.account.privilege.revoke", "Revoke user privilege", "core.user.admin_privilege.revoked"),
}


def okta_user_target(p, email=None, display=None, uid=None):
    return {"id": uid or p.okta_id, "type": "User", "alternateId": email or p.email,
            "displayName": display or p.display, "detailEntry": None}


def okta_geo(off):
    return {"city": off["city"], "state": off["state"], "country": off["country"], "postalCode": off["postalCode"],
            "geolocation": {"lat": off["lat"], "lon": off["lon"]}}


def render_okta(e):
    t = e["t"]
    actor = e["actor"]
    typ = e["typ"]
    req = okta_request_id()
    if isinstance(actor, Person):
        ip = e.get("ip") or actor.ip()
        off = OFFICES[actor.tz]
        ua, os_, browser = actor.ua
        a = {"id": actor.okta_id, "type": "User", "alternateId": actor.email, "displayName": actor.display, "detailEntry": None}
        client = {"userAgent": {"rawUserAgent": ua, "os": os_, "browser": browser}, "zone": "null", "device": "Computer",
                  "id": None, "ipAddress": ip, "geographicalContext": okta_geo(off)}
        auth = {"authenticationProvider": None, "credentialProvider": None, "credentialType": None, "issuer": None,
                "interface": None, "authenticationStep": 0, "externalSessionId": actor.session}
        sec = {"asNumber": off["asNumber"], "asOrg": off["asOrg"], "isp": off["isp"], "domain": off["domain"], "isProxy": False}
        transaction = {"type": "WEB", "id": req, "detail": {}}
    else:
        a = OKTA_SYSTEM_ACTOR if actor == OKTA_SYSTEM else OKTA_WORKFLOWS_ACTOR
        client = {"userAgent": None, "zone": None, "device": None, "id": None, "ipAddress": None, "geographicalContext": None}
        if actor == OKTA_WORKFLOWS:
            client = {"userAgent": {"rawUserAgent": "okta-sdk-java/8.2.5 java/17.0.9 Linux/5.10.223", "os": "Linux", "browser": "UNKNOWN"},
                      "zone": "null", "device": "Unknown", "id": "0oa4wfl0ws9XqTz2m0h7", "ipAddress": "52.88.31.204",
                      "geographicalContext": {"city": "Boardman", "state": "Oregon", "country": "United States", "postalCode": "97818",
                                              "geolocation": {"lat": 45.8491, "lon": -119.7143}}}
        auth = {"authenticationProvider": None, "credentialProvider": None, "credentialType": None, "issuer": None,
                "interface": None, "authenticationStep": 0, "externalSessionId": None}
        sec = {"asNumber": None, "asOrg": None, "isp": None, "domain": None, "isProxy": None}
        transaction = {"type": "JOB" if actor == OKTA_SYSTEM else "WEB", "id": rid(20) if actor == OKTA_SYSTEM else req, "detail": {}}

    if typ == "okta.noise":
        et, dm, leg = R.choice([("user.session.start", "User login to Okta", "core.user_auth.login_success"),
                                ("user.authentication.sso", "User single sign on to app", "app.auth.sso"),
                                ("user.authentication.sso", "User single sign on to app", "app.auth.sso")])
        target = None
        if et == "user.authentication.sso":
            app = R.choice(["Slack", "Zoom", "Microsoft Office 365", "Salesforce", "GitHub Enterprise Cloud", "Jira Software"])
            target = [{"id": okta_ent_id("app", app), "type": "AppInstance", "alternateId": app, "displayName": app, "detailEntry": None}]
        debug = {"requestId": req, "requestUri": "/idp/idx/identify" if et == "user.session.start" else "/app/sso/saml",
                 "url": "/idp/idx/identify?" if et == "user.session.start" else "/app/sso/saml?", "threatSuspected": "false"}
    else:
        et, dm, leg = OKTA_META[typ]
        tgt = e["target"]
        tu = okta_user_target(tgt, e.get("email"), e.get("display"), e.get("uid"))
        target = [tu]
        debug = {"requestId": req, "threatSuspected": "false"}
        ent = e["ent"]
        if typ in ("okta.group.add", "okta.group.remove"):
            gid = okta_ent_id("group", ent[1])
            target.append({"id": gid, "type": "UserGroup", "alternateId": "unknown", "displayName": ent[1], "detailEntry": None})
            debug["requestUri"] = f"/api/v1/groups/{gid}/users/{tu['id']}"
            debug["url"] = debug["requestUri"] + "?"
            if actor == OKTA_SYSTEM:
                debug = {"requestId": req, "triggeredByGroupRuleId": okta_ent_id("rule", ent[1])}
        elif typ in ("okta.app.add", "okta.app.remove"):
            aid = okta_ent_id("app", ent[1])
            target = [
                {"id": okta_ent_id("appuser", tu["id"] + ent[1]), "type": "AppUser", "alternateId": tu["alternateId"], "displayName": tu["displayName"], "detailEntry": None},
                {"id": aid, "type": "AppInstance", "alternateId": ent[1], "displayName": ent[1], "detailEntry": None},
                tu,
            ]
            debug["requestUri"] = f"/api/v1/apps/{aid}/users"
            debug["url"] = debug["requestUri"] + "?"
            if actor == OKTA_SYSTEM:
                debug = {"requestId": req, "appAssignmentSource": "GROUP"}
        elif typ in ("okta.role.grant", "okta.role.revoke"):
            key = "privilegeGranted" if typ == "okta.role.grant" else "privilegeRevoked"
            debug[key] = ent[1]
            debug["requestUri"] = f"/api/internal/administrators/{tu['id']}"
            debug["url"] = debug["requestUri"] + "?"
        elif typ == "okta.user.create":
            if actor == OKTA_SYSTEM:
                debug = {"requestId": req, "jobId": transaction["id"], "importSource": "Workday"}
            else:
                debug["requestUri"] = "/api/v1/users"
                debug["url"] = "/api/v1/users?activate=true"
        elif typ == "okta.user.deactivate":
            debug = {"requestId": req, "jobId": transaction["id"], "importSource": "Workday"}
    if actor == OKTA_SYSTEM and isinstance(debug, dict):
        debug.setdefault("requestId", req)
    return {
        "uuid": okta_uuid(t),
        "published": fmt_okta(t),
        "eventType": et,
        "version": "0",
        "displayMessage": dm,
        "severity": "INFO",
        "client": client,
        "device": None,
        "actor": a,
        "outcome": {"result": "SUCCESS", "reason": None},
        "target": target,
        "transaction": transaction,
        "debugContext": {"debugData": debug},
        "legacyEventType": leg,
        "authenticationContext": auth,
        "securityContext": sec,
    }


# ----------------------------------------------------------------------------------------------
# rendering: Microsoft Graph directoryAudit
# ----------------------------------------------------------------------------------------------

ENTRA_PROV_APP = {"appId": None, "displayName": "Microsoft Entra provisioning", "servicePrincipalId": guid(), "servicePrincipalName": None}
MS_PIM_APP = {"appId": None, "displayName": "MS-PIM", "servicePrincipalId": guid(), "servicePrincipalName": None}


def mp(name, new, old=None):
    return {"displayName": name, "oldValue": old, "newValue": new}


def render_entra(e):
    t = e["t"]
    typ = e["typ"]
    actor = e["actor"]
    corr = guid()
    rec = {
        "id": f"Directory_{corr}_{rid(5, UPPER_NUM)}_{R.randrange(10**8, 10**9)}",
        "category": "UserManagement",
        "correlationId": corr,
        "result": "success",
        "resultReason": "",
        "activityDisplayName": "",
        "activityDateTime": fmt_graph(t),
        "loggedByService": "Core Directory",
        "operationType": "",
        "initiatedBy": None,
        "targetResources": [],
        "additionalDetails": [],
    }
    if isinstance(actor, Person):
        ip = e.get("ip") or actor.ip()
        rec["initiatedBy"] = {"user": {"id": actor.entra_id, "displayName": None, "userPrincipalName": actor.email,
                                       "ipAddress": ip, "roles": []}, "app": None}
        rec["additionalDetails"] = [{"key": "User-Agent", "value": actor.ua[0]}]
    else:
        rec["initiatedBy"] = {"user": None, "app": ENTRA_PROV_APP if actor == ENTRA_PROV else MS_PIM_APP}
    tgt = e["target"]
    ent = e["ent"]

    def user_res(props):
        return {"id": tgt.entra_id, "displayName": None, "type": "User", "userPrincipalName": e.get("email") or tgt.email,
                "groupType": None, "modifiedProperties": props, "administrativeUnits": []}

    if typ == "entra.user.create":
        rec.update(category="UserManagement", activityDisplayName="Add user", operationType="Add")
        props = [mp("AccountEnabled", "[true]", "[]"),
                 mp("DisplayName", json.dumps([tgt.display]), "[]"),
                 mp("UserPrincipalName", json.dumps([tgt.email]), "[]"),
                 mp("UserType", "[\"Member\"]", "[]"),
                 mp("Department", json.dumps([tgt.dept]), "[]"),
                 mp("JobTitle", json.dumps([tgt.title]), "[]"),
                 mp("Included Updated Properties", "\"AccountEnabled, DisplayName, UserPrincipalName, UserType, Department, JobTitle\"")]
        rec["targetResources"] = [user_res(props)]
    elif typ == "entra.user.disable":
        rec.update(category="UserManagement", activityDisplayName="Disable account", operationType="Update")
        rec["targetResources"] = [user_res([mp("AccountEnabled", "[false]", "[true]"),
                                            mp("Included Updated Properties", "\"AccountEnabled\"")])]
    elif typ == "entra.user.update":
        rec.update(category="UserManagement", activityDisplayName="Update user", operationType="Update")
        field = R.choice([("MobilePhone", "[\"+1 212 555 01%02d\"]" % R.randrange(100)), ("JobTitle", json.dumps([tgt.title])),
                          ("OfficeLocation", json.dumps([OFFICES[tgt.tz]["city"]]))])
        rec["targetResources"] = [user_res([mp(field[0], field[1], "[]"), mp("Included Updated Properties", json.dumps(field[0]))])]
    elif typ in ("entra.group.add", "entra.group.remove"):
        add = typ == "entra.group.add"
        gid = entra_group_id(ent[1])
        rec.update(category="GroupManagement", activityDisplayName="Add member to group" if add else "Remove member from group",
                   operationType="Assign" if add else "Unassign")
        if add:
            props = [mp("Group.ObjectID", json.dumps(gid)), mp("Group.DisplayName", json.dumps(ent[1]))]
        else:
            props = [mp("Group.ObjectID", None, json.dumps(gid)), mp("Group.DisplayName", None, json.dumps(ent[1]))]
        rec["targetResources"] = [user_res(props),
                                  {"id": gid, "displayName": None, "type": "Group", "userPrincipalName": None,
                                   "groupType": "unifiedGroups" if ent[1].startswith("Teams") else "azureAD",
                                   "modifiedProperties": [], "administrativeUnits": []}]
    elif typ in ("entra.role.add", "entra.role.remove"):
        add = typ == "entra.role.add"
        name = ent[1]
        rec.update(category="RoleManagement", activityDisplayName="Add member to role" if add else "Remove member from role",
                   operationType="Assign" if add else "Unassign")
        vals = [("Role.ObjectID", ENTRA_ROLE_OBJ[name]), ("Role.DisplayName", name), ("Role.TemplateId", ENTRA_ROLES[name]),
                ("Role.WellKnownObjectName", ENTRA_ROLE_WKN[name])]
        props = [mp(k, json.dumps(v)) if add else mp(k, None, json.dumps(v)) for k, v in vals]
        rec["targetResources"] = [user_res(props),
                                  {"id": ENTRA_ROLE_OBJ[name], "displayName": None, "type": "Role", "userPrincipalName": None,
                                   "groupType": None, "modifiedProperties": [], "administrativeUnits": []}]
    else:
        raise ValueError(typ)
    return rec


# ----------------------------------------------------------------------------------------------
# rendering: CloudTrail
# ----------------------------------------------------------------------------------------------

TF_ROLE_ID = "AROA" + rid(17, UPPER_NUM)
SSO_ADMIN_ROLE_ID = "AROA" + rid(17, UPPER_NUM)
SSO_PLATFORM_ROLE_ID = "AROA" + rid(17, UPPER_NUM)
SAM_IAM_ID = "AIDA" + rid(17, UPPER_NUM)
SAM_KEY = "AKIA" + rid(16, UPPER_NUM)
TF_UA = ("APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.68.0 "
         "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.30.5 ua/2.1 os/linux lang/go#1.22.6 "
         "md/GOOS#linux md/GOARCH#amd64 api/iam#1.35.1")
CLI_UA = ("aws-cli/2.17.50 md/awscrt#0.21.2 ua/2.0 os/macos#23.6.0 md/arch#arm64 lang/python#3.12.6 md/pyimpl#CPython "
          "cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#iam.{cmd}")
TF_RUNNER_IPS = ["34.201.88.17", "34.201.88.42", "18.208.140.9"]


def sso_identity(p, role, role_id, t):
    created = t - timedelta(minutes=R.randrange(3, 50))
    return {
        "type": "AssumedRole",
        "principalId": f"{role_id}:{p.email}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{p.email}",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIA" + rid(16, UPPER_NUM),
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": role_id,
                              "arn": f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/{role}",
                              "accountId": ACCOUNT, "userName": role},
            "webIdFederationData": {},
            "attributes": {"creationDate": fmt_ct(created), "mfaAuthenticated": "false"},
        },
    }


def tf_identity(t):
    session = f"tf-nightly-{t:%Y%m%d}"
    return {
        "type": "AssumedRole",
        "principalId": f"{TF_ROLE_ID}:{session}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/terraform-ci/{session}",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIA" + rid(16, UPPER_NUM),
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": TF_ROLE_ID, "arn": f"arn:aws:iam::{ACCOUNT}:role/terraform-ci",
                              "accountId": ACCOUNT, "userName": "terraform-ci"},
            "webIdFederationData": {"federatedProvider": f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com",
                                    "attributes": {}},
            "attributes": {"creationDate": fmt_ct(t.replace(minute=0, second=0) - timedelta(minutes=20)), "mfaAuthenticated": "false"},
        },
    }


def policy_arn(name, custom=False):
    if custom:
        return f"arn:aws:iam::{ACCOUNT}:policy/{name}"
    if name == "AWSBillingReadOnlyAccess":
        return "arn:aws:iam::aws:policy/AWSBillingReadOnlyAccess"
    return f"arn:aws:iam::aws:policy/{name}"


def render_ct(e):
    t = e["t"]
    typ = e["typ"]
    actor = e["actor"]
    rec = {
        "eventVersion": "1.10",
        "userIdentity": None,
        "eventTime": fmt_ct(t),
        "eventSource": "iam.amazonaws.com",
        "eventName": "",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "",
        "userAgent": "",
        "requestParameters": None,
        "responseElements": None,
        "requestID": guid(),
        "eventID": guid(),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": "iam.amazonaws.com"},
    }
    console = False
    if actor == TERRAFORM:
        rec["userIdentity"] = tf_identity(t)
        rec["sourceIPAddress"] = R.choice(TF_RUNNER_IPS)
        rec["userAgent"] = TF_UA
    elif actor == SSO_SERVICE:
        rec["userIdentity"] = {"type": "AWSService", "invokedBy": "sso.amazonaws.com"}
        rec["sourceIPAddress"] = "sso.amazonaws.com"
        rec["userAgent"] = "sso.amazonaws.com"
        rec.pop("tlsDetails")
    elif e.get("iam_user"):
        rec["userIdentity"] = {"type": "IAMUser", "principalId": SAM_IAM_ID, "arn": f"arn:aws:iam::{ACCOUNT}:user/{actor.email}",
                               "accountId": ACCOUNT, "accessKeyId": SAM_KEY, "userName": actor.email}
        rec["sourceIPAddress"] = e.get("ip") or actor.ip()
        rec["userAgent"] = CLI_UA.format(cmd=e.get("cmd", "create-access-key"))
    else:
        role, role_id = (SSO_PLATFORM_ROLE, SSO_PLATFORM_ROLE_ID) if e.get("sso") == SSO_PLATFORM_ROLE else (SSO_ADMIN_ROLE, SSO_ADMIN_ROLE_ID)
        rec["userIdentity"] = sso_identity(actor, role, role_id, t)
        rec["sourceIPAddress"] = e.get("ip") or actor.ip()
        console = R.random() < 0.8 if e.get("console") is None else e["console"]
        rec["userAgent"] = "AWS Internal" if console else CLI_UA.format(cmd="x")
        if console:
            rec["sessionCredentialFromConsole"] = "true"

    tgt = e["target"]
    ent = e["ent"]
    if typ == "ct.read":
        name, params = R.choice([("GetUser", lambda: {"userName": R.choice(people[:22]).email}),
                                 ("ListAttachedUserPolicies", lambda: {"userName": R.choice(people[:22]).email}),
                                 ("ListRoles", lambda: None), ("GetRole", lambda: {"roleName": f"svc-{R.choice(TF_APPS)}-prod"}),
                                 ("ListGroupsForUser", lambda: {"userName": R.choice(people[:22]).email})])
        rec.update(eventName=name, requestParameters=params(), readOnly=True)
        if rec["userAgent"].startswith("aws-cli"):
            rec["userAgent"] = CLI_UA.format(cmd=name.lower())
    elif typ == "ct.role.create" or typ == "ct.sso.side_create":
        role = e["role"]
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                                                         "Action": "sts:AssumeRole"}]}
        path = "/"
        if typ == "ct.sso.side_create":
            path = "/aws-reserved/sso.amazonaws.com/"
            trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
                "Federated": f"arn:aws:iam::{ACCOUNT}:saml-provider/AWSSSO_{hexs(16)}_DO_NOT_DELETE"},
                "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
                "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}}}]}
        rec.update(eventName="CreateRole", requestParameters={"roleName": role, "path": path,
                                                              "assumeRolePolicyDocument": json.dumps(trust, separators=(",", ":"))},
                   responseElements={"role": {"path": path, "roleName": role, "roleId": "AROA" + rid(17, UPPER_NUM),
                                              "arn": f"arn:aws:iam::{ACCOUNT}:role{path}{role}",
                                              "createDate": t.strftime("%b %-d, %Y, %-I:%M:%S %p")}})
    elif typ in ("ct.role.attach", "ct.role.detach", "ct.sso.side_attach"):
        rec.update(eventName="DetachRolePolicy" if typ == "ct.role.detach" else "AttachRolePolicy",
                   requestParameters={"roleName": e["role"], "policyArn": policy_arn(ent[1], e.get("custom", False))})
    elif typ == "ct.role.inline":
        doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                                                       "Resource": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/ecs/{e['role']}:*"}]}
        rec.update(eventName="PutRolePolicy", requestParameters={"roleName": e["role"], "policyName": "logs-write",
                                                                  "policyDocument": json.dumps(doc, separators=(",", ":"))})
    elif typ in ("ct.group.add", "ct.group.remove"):
        rec.update(eventName="AddUserToGroup" if typ == "ct.group.add" else "RemoveUserFromGroup",
                   requestParameters={"groupName": ent[1], "userName": e.get("email") or tgt.email})
    elif typ in ("ct.policy.add", "ct.policy.remove"):
        rec.update(eventName="AttachUserPolicy" if typ == "ct.policy.add" else "DetachUserPolicy",
                   requestParameters={"userName": e.get("email") or tgt.email, "policyArn": policy_arn(ent[1])})
    elif typ == "ct.user.create":
        uname = tgt.email
        rec.update(eventName="CreateUser", requestParameters={"userName": uname, "tags": [{"key": "team", "value": tgt.team.lower()}]},
                   responseElements={"user": {"path": "/", "userName": uname, "userId": "AIDA" + rid(17, UPPER_NUM),
                                              "arn": f"arn:aws:iam::{ACCOUNT}:user/{uname}",
                                              "createDate": t.strftime("%b %-d, %Y, %-I:%M:%S %p"),
                                              "tags": [{"key": "team", "value": tgt.team.lower()}]}})
    elif typ == "ct.key.self":
        rec.update(eventName="CreateAccessKey", requestParameters=None,
                   responseElements={"accessKey": {"userName": actor.email, "accessKeyId": "AKIA" + rid(16, UPPER_NUM),
                                                   "status": "Active", "createDate": t.strftime("%b %-d, %Y, %-I:%M:%S %p")}})
    elif typ == "ct.sso.assign":
        ps_arn = f"arn:aws:sso:::permissionSet/{SSO_INSTANCE}/{PERMISSION_SETS[ent[1]]}"
        params = {"instanceArn": f"arn:aws:sso:::instance/{SSO_INSTANCE}", "targetId": ACCOUNT, "targetType": "AWS_ACCOUNT",
                  "permissionSetArn": ps_arn, "principalType": "USER", "principalId": tgt.idstore_id}
        status = dict(params)
        status.pop("instanceArn")
        status.update(status="IN_PROGRESS", requestId=guid())
        rec.update(eventSource="sso.amazonaws.com", eventName="CreateAccountAssignment", requestParameters=params,
                   responseElements={"accountAssignmentCreationStatus": status})
        rec["tlsDetails"]["clientProvidedHostHeader"] = "sso.us-east-1.amazonaws.com"
    else:
        raise ValueError(typ)
    return rec


RENDER = {"okta": render_okta, "entra": render_entra, "ct": render_ct}


# ----------------------------------------------------------------------------------------------
# a small model of the baselines, to pick replay events that are ordinary for their scopes
# ----------------------------------------------------------------------------------------------

TENANT = {"okta": "okta", "entra": "unknown", "ct": ACCOUNT}


def ent_key(e):
    ent = e["ent"]
    if ent is None:
        return None
    return f"{ent[0]}:{ent[1].lower()}"


def is_grant(e):
    return e["typ"].endswith(".add") or e["typ"] in ("okta.role.grant", "ct.sso.assign", "ct.role.attach", "ct.role.inline",
                                                     "ct.sso.side_attach", "ct.key.self")


def shares(events, at, scope_fn):
    """Decayed grant counts per (scope, entitlement) at time `at` (30-day half-life)."""
    out = {}
    for e in events:
        if not is_grant(e) or e["t"] > at:
            continue
        w = 0.5 ** ((at - e["t"]).total_seconds() / (30 * 86400))
        for s in scope_fn(e):
            d = out.setdefault(s, {})
            d[ent_key(e)] = d.get(ent_key(e), 0.0) + w
    return out


def scope_team(e):
    tg = e["target"]
    out = [(e["src"], "tenant", "")]
    if isinstance(tg, Person):
        out += [(e["src"], "team", tg.team), (e["src"], "dept", tg.dept)]
    return out


def scope_actor(e):
    a = e["actor"]
    return [(e["src"], "actor", a.email if isinstance(a, Person) else a)]


def share(tab, scope, key):
    d = tab.get(scope, {})
    n = sum(d.values())
    return (d.get(key, 0.0) + 0.5) / (n + 1.0), n


# ----------------------------------------------------------------------------------------------
# replay day 2026-11-02
# ----------------------------------------------------------------------------------------------

PLANTED = []


def at_utc(h, m, s=0, ms=0):
    return datetime(2026, 11, 2, h, m, s, ms * 1000, tzinfo=UTC)


def rarity(team_tab, actor_tab, src, actor, p, ent):
    """The p-values provguard's rarity detectors would see (first mature scope team -> dept -> tenant)."""
    key = f"{ent[0]}:{ent[1].lower()}"
    dept_p = 1.0
    for scope in ((src, "team", p.team), (src, "dept", p.dept), (src, "tenant", "")):
        pv, n = share(team_tab, scope, key)
        if n >= 20:
            dept_p = pv
            break
    actor_p, n = share(actor_tab, (src, "actor", actor.email), key)
    return min(dept_p, actor_p if n >= 20 else 1.0)


def ordinary_grant(actor, t, src, team_tab, actor_tab, avoid=(), only_groups=False):
    """A grant the actor commonly makes, of an entitlement the target's team commonly receives."""
    catalog_fn = {"okta": okta_catalog, "entra": entra_catalog}[src]
    cands = []
    for p in people:
        if not active(p, t) or p is actor or p in avoid:
            continue
        _, opt = catalog_fn(p)
        for ent, _w in opt:
            if has(src, p, ent, t) or (only_groups and ent[0] != "group"):
                continue
            cands.append((rarity(team_tab, actor_tab, src, actor, p, ent), p, ent))
    cands.sort(key=lambda c: (-c[0], c[1].email, c[2]))
    good = [c for c in cands if c[0] >= 0.1] or cands[:5]
    _, p, ent = R.choice(good)
    typ = {"okta": okta_typ, "entra": entra_typ}[src](ent)
    e = emit(REPLAY, src, t, typ, actor, p, ent)
    held(src, p)[ent] = None
    return e


def gen_replay():
    end = at_utc(23, 59)
    team_tab = shares(EVENTS, end, scope_team)
    actor_tab = shares(EVENTS, end, scope_actor)
    day = REPLAY_DAY

    def local(p, h, m):
        return local_to_utc(day, h + m / 60, p.tz).replace(second=R.randrange(60))

    # --- Terraform's nightly apply (automation at night is its normal)
    t = at_utc(1, 58, 12)
    emit(REPLAY, "ct", t, "ct.role.create", TERRAFORM, None, None, role="svc-ledger-prod")
    emit(REPLAY, "ct", t + timedelta(seconds=95), "ct.role.attach", TERRAFORM, None, ("policy", "app-sqs-consumer"),
         role="svc-ledger-prod", custom=True)
    emit(REPLAY, "ct", t + timedelta(seconds=240), "ct.role.inline", TERRAFORM, None, ("policy", "logs-write"), role="svc-ledger-prod")

    # --- 1. off-hours Super administrator grant, no approval (Kevin works 09-17 New York)
    kevin, rebecca = P("kevin.obrien"), P("rebecca.stone")
    e = emit(REPLAY, "okta", local(kevin, 2, 10), "okta.role.grant", kevin, rebecca, ("role", "Super administrator"),
             ip="198.51.100.214")
    PLANTED.append((1, e, "off_hours, missing_approval"))

    # --- Berlin morning: routine work
    tom, anna = P("tom.becker"), P("anna.schmidt")
    ordinary_grant(tom, local(tom, 9, 12), "okta", team_tab, actor_tab)
    ordinary_grant(anna, local(anna, 9, 31), "okta", team_tab, actor_tab)
    pim = emit(REPLAY, "entra", local(anna, 9, 47), "entra.role.add", MS_PIM, anna, ("role", "Exchange Administrator"))
    ordinary_grant(tom, local(tom, 10, 5), "entra", team_tab, actor_tab)

    # --- approved privileged grant (decoy): Anna gives Luis Super administrator for the SSO migration
    luis = P("luis.garcia")
    t = local(anna, 10, 15)
    approve(luis, "Super administrator", t, rebecca, prefix="IT", valid_hours=72, lead=timedelta(hours=15, minutes=20))
    emit(REPLAY, "okta", t, "okta.role.grant", anna, luis, ("role", "Super administrator"))

    # --- 2. Sales hire added to the production database admins group by helpdesk
    tyler = P("tyler.brooks")
    e = emit(REPLAY, "okta", local(tom, 11, 20), "okta.group.add", tom, tyler, G("prod-db-admins"))
    PLANTED.append((2, e, "rare_entitlement_for_department, rare_entitlement_for_actor (+ missing_approval: prod-db-admins is admin tier)"))
    ordinary_grant(anna, local(anna, 11, 42), "okta", team_tab, actor_tab)

    # --- onboarding wave: Workday import of the five hires starting today (system principal)
    t = at_utc(11, 0, 41, 305)
    for p in WAVE:
        emit(REPLAY, "okta", t, "okta.user.create", OKTA_SYSTEM, p, None, job=True)
        for ent in [G("all-staff")] + [x for x in OKTA_CORE_DEPT[p.dept] if x[0] == "group"] + OKTA_CORE_TEAM.get(p.team, [])[:1]:
            t += timedelta(seconds=R.uniform(0.5, 2.5))
            emit(REPLAY, "okta", t, "okta.group.add", OKTA_SYSTEM, p, ent, job=True)
        t += timedelta(seconds=R.uniform(3, 8))
    t2 = at_utc(11, 6, 2, 114)
    for p in WAVE:
        emit(REPLAY, "entra", t2, "entra.user.create", ENTRA_PROV, p, None)
        t2 += timedelta(seconds=R.uniform(20, 40))

    # --- New York morning
    jas, omar, pri = P("jasmine.lee"), P("omar.haddad"), P("priya.desai")
    ordinary_grant(omar, local(omar, 9, 4), "okta", team_tab, actor_tab)
    ordinary_grant(kevin, local(kevin, 9, 10), "okta", team_tab, actor_tab)
    ordinary_grant(jas, local(jas, 9, 18), "okta", team_tab, actor_tab)
    emit(REPLAY, "entra", local(kevin, 9, 22), "entra.role.add", MS_PIM, kevin, ("role", "Global Administrator"))

    # --- 3. account on a lookalike of the tenant's own domain
    maria = P("maria.lopez")
    e = emit(REPLAY, "okta", local(omar, 9, 26), "okta.user.create", omar, maria, None,
             email="maria.lopez@acmerocket.exarnple", display="Maria Lopez", uid=okta_id("00u"))
    PLANTED.append((3, e, "email_lookalike_domain"))

    # --- 8. an actor never seen in history grants Global Administrator in Entra
    nina, dana = P("nina.petrova"), P("dana.whitfield")
    e = emit(REPLAY, "entra", local(nina, 9, 34), "entra.role.add", nina, dana, ("role", "Global Administrator"))
    PLANTED.append((8, e, "new_actor, missing_approval"))

    ordinary_grant(kevin, local(kevin, 9, 51), "entra", team_tab, actor_tab)

    # --- 6. create an account, then make it Super administrator 12 minutes later
    backdoor = Person("IT", "Ops Backup", "IT", "Identity", "", "", "employee", NY, "2026-11-02", False)
    backdoor.email = "it-ops-backup@acmerocket.example"
    backdoor.display = "IT Ops Backup"
    t = local(pri, 10, 5)
    emit(REPLAY, "okta", t, "okta.user.create", pri, backdoor, None)
    e = emit(REPLAY, "okta", t + timedelta(minutes=12, seconds=9), "okta.role.grant", pri, backdoor, ("role", "Super administrator"))
    PLANTED.append((6, e, "escalation_chain (+ missing_approval)"))

    # --- 5. an engineer attaches AdministratorAccess to their own IAM user
    sam = P("sam.rivera")
    e = emit(REPLAY, "ct", local(sam, 16, 8), "ct.policy.add", sam, sam, ("policy", "AdministratorAccess"), iam_user=True,
             cmd="attach-user-policy")
    PLANTED.append((5, e, "self_grant, missing_approval"))

    # --- approved privileged grant (decoy): PowerUserAccess for a Platform engineer, ticket on file
    hannah, jonas = P("hannah.kim"), P("jonas.weber")
    t = local(kevin, 10, 40)
    approve(hannah, "PowerUserAccess", t, jonas, prefix="ENG", valid_hours=48, lead=timedelta(hours=2, minutes=5))
    emit(REPLAY, "ct", t, "ct.policy.add", kevin, hannah, ("policy", "PowerUserAccess"), console=True)

    # --- 7. burst: 12 group adds in 6 minutes by one helpdesk person (usually ~3 a day)
    t = local(jas, 11, 0)
    burst = []
    for i in range(12):
        e = ordinary_grant(jas, t, "okta", team_tab, actor_tab)
        burst.append(e)
        t += timedelta(seconds=R.uniform(25, 31))
    PLANTED.append((7, burst[4], "volume_burst (the 5th add alerts; the rest of the burst is attached to it)"))

    ordinary_grant(omar, local(omar, 11, 48), "entra", team_tab, actor_tab)
    ordinary_grant(kevin, local(kevin, 13, 15), "okta", team_tab, actor_tab)

    # --- Los Angeles: change window with a bulk group change by its listed actor
    ravi = P("ravi.kumar")
    ordinary_grant(ravi, local(ravi, 8, 55), "okta", team_tab, actor_tab)
    t = at_utc(17, 0)
    lacking = [p for p in people if active(p, t) and p is not luis and not has("okta", p, G("vpn-users"), t)]
    R.shuffle(lacking)
    bulk_in_window(REPLAY, luis, day, 9.5, group="vpn-users", targets=lacking[:10],
                   desc="VPN concentrator migration, phase 2: re-add the users the cutover script dropped from vpn-users")
    ordinary_grant(ravi, local(ravi, 10, 47), "okta", team_tab, actor_tab)

    # --- 4. a new account whose address is one typo away from a directory address
    e = emit(REPLAY, "okta", local(luis, 11, 35), "okta.user.create", luis, P("jonathan.smith"), None,
             email="jonathna.smith@acmerocket.example", display="Jonathan Smith", uid=okta_id("00u"))
    PLANTED.append((4, e, "email_typo"))

    ordinary_grant(luis, local(luis, 13, 5), "okta", team_tab, actor_tab)
    ordinary_grant(ravi, local(ravi, 14, 20), "entra", team_tab, actor_tab)
    emit(REPLAY, "entra", pim["t"] + timedelta(hours=4), "entra.role.remove", MS_PIM, anna, ("role", "Exchange Administrator"))
    # a sign-in or two: not provisioning, dropped
    emit(REPLAY, "okta", local(jas, 8, 52), "okta.noise", jas, None, None)
    emit(REPLAY, "okta", local(luis, 8, 41), "okta.noise", luis, None, None)


# ----------------------------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------------------------

def dumps(o):
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False)


def write_gz(path, text):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode())
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def main():
    gen_history()
    hist = sorted((e for e in EVENTS if HIST_START <= e["t"] < HIST_END), key=lambda e: e["t"])
    EVENTS[:] = hist
    gen_replay()
    REPLAY.sort(key=lambda e: e["t"])

    os.makedirs(os.path.join(HERE, "context"), exist_ok=True)
    os.makedirs(os.path.join(HERE, "history"), exist_ok=True)
    os.makedirs(os.path.join(HERE, "replay"), exist_ok=True)

    # context
    with open(os.path.join(HERE, "context", "directory.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["email", "user_id", "display_name", "department", "team", "title", "manager", "employment_type", "timezone", "start_date"])
        for p in people:
            w.writerow([p.email, p.okta_id, p.display, p.dept, p.team, p.title, p.manager, p.etype, p.tz, p.start.isoformat()])
    APPROVALS.sort(key=lambda a: a["approved_at"])
    with open(os.path.join(HERE, "context", "approvals.jsonl"), "w") as f:
        for a in APPROVALS:
            f.write(dumps(a) + "\n")
    WINDOWS.sort(key=lambda w: w["start"])
    with open(os.path.join(HERE, "context", "change_windows.jsonl"), "w") as f:
        for w in WINDOWS:
            f.write(dumps(w) + "\n")
    with open(os.path.join(HERE, "context", "domains.txt"), "w") as f:
        f.write(f"{DOMAIN}\n{LABS}\n")

    # history
    counts = {"okta": 0, "entra": 0, "ct": 0}
    okta_lines, entra_lines, ct_records = [], [], []
    for e in EVENTS:
        rec = RENDER[e["src"]](e)
        counts[e["src"]] += 1
        {"okta": okta_lines, "entra": entra_lines, "ct": ct_records}[e["src"]].append(rec)
    write_gz(os.path.join(HERE, "history", "okta.jsonl.gz"), "".join(dumps(r) + "\n" for r in okta_lines))
    write_gz(os.path.join(HERE, "history", "entra.jsonl.gz"), "".join(dumps(r) + "\n" for r in entra_lines))
    write_gz(os.path.join(HERE, "history", "cloudtrail.json.gz"), dumps({"Records": ct_records}) + "\n")

    # replay
    planted_ids = {}
    with open(os.path.join(HERE, "replay", "day.jsonl"), "w") as f:
        for e in REPLAY:
            rec = RENDER[e["src"]](e)
            e["id"] = rec.get("uuid") or rec.get("eventID") or rec.get("id")
            f.write(dumps(rec) + "\n")
    for n, e, reasons in sorted(PLANTED, key=lambda x: x[0]):
        planted_ids[n] = e["id"]

    total = sum(counts.values())
    print(f"history: {total} records (okta {counts['okta']}, cloudtrail {counts['ct']}, entra {counts['entra']})")
    print(f"replay: {len(REPLAY)} records on {REPLAY_DAY}; approvals {len(APPROVALS)}; change windows {len(WINDOWS)}; "
          f"directory {len(people)} people")
    for src, fn in (("okta", okta_catalog), ("entra", entra_catalog)):
        tot = hold = 0
        for p in people:
            if active(p, HIST_END):
                for ent, _ in fn(p)[1]:
                    tot += 1
                    hold += has(src, p, ent, HIST_END)
        print(f"  {src}: {hold}/{tot} optional entitlements held at the end of the history")
    for n, e, reasons in sorted(PLANTED, key=lambda x: x[0]):
        print(f"  planted #{n}: {e['t']:%H:%M:%S}Z {e['src']:<5} {planted_ids[n]}  -> {reasons}")


if __name__ == "__main__":
    main()
