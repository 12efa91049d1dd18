//! Abstract events → raw records in each source's real format: Okta System Log events,
//! Microsoft Graph `directoryAudit` objects, Google Admin SDK Reports activities, CloudTrail
//! records and SCIM request envelopes.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::catalog::{Catalog, Kind, Src};
use super::lookalike::ascii_email;
use super::org::{DEPTS, Org, Person, Role};
use super::random::{Rand, format_uuid};
use super::story::{Bot, Ev, Op, T, Who};

const UAS: &[(&str, &str, &str)] = &[
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Mac OS X",
        "CHROME",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        "Windows 10",
        "EDGE_CHROMIUM",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Mac OS X",
        "FIREFOX",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        "Mac OS X",
        "SAFARI",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
        "Windows 10",
        "CHROME",
    ),
];
const API_UAS: &[&str] = &[
    "okta-sdk-python/2.9.8 python/3.11.9 Darwin/23.6.0",
    "python-requests/2.32.3",
    "PowerShell/7.4.6 Microsoft.Graph/2.25.0",
];
const TF_UA: &str = "APN/1.0 HashiCorp/1.0 Terraform/1.9.8 (+https://www.terraform.io) terraform-provider-aws/5.80.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.32.6 ua/2.1 os/linux lang/go#1.23.3 md/GOOS#linux md/GOARCH#amd64 api/iam#1.38.2";
const CLI_UA: &str = "aws-cli/2.22.12 md/awscrt#0.22.0 ua/2.0 os/macos#24.1.0 md/arch#arm64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off md/command#";
const TF_RUNNER_IPS: &[&str] = &["198.51.100.201", "198.51.100.202", "203.0.113.240"];

/// Per-organisation constants of the rendered systems.
#[derive(Debug)]
pub struct Renderer {
    rng: Rand,
    okta_nodes: Vec<(u64, u64)>,
    sso_admin_role: String,
    sso_admin_role_id: String,
    sso_platform_role: String,
    sso_platform_role_id: String,
    tf_role_id: String,
    entra_sync_sp: String,
    pim_sp: String,
    entra_role_obj: Vec<String>,
    google_sync: String,
    google_sync_profile: String,
    saml_provider: String,
    tenant_domain: String,
    atlassian: String,
    scim_group_ids: Vec<String>,
}

fn okta_time(t: T) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn ct_time(t: T) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn mp(name: &str, new: Option<String>, old: Option<String>) -> Value {
    json!({"displayName": name, "oldValue": old, "newValue": new})
}

fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

impl Renderer {
    pub fn new(org: &Org, cat: &Catalog, seed: u64) -> Renderer {
        let mut rng = Rand::new(seed, 4);
        let okta_nodes = (0..12)
            .map(|_| (rng.u64() & 0xffff_ffff_ffff, rng.range(0, 0x4000)))
            .collect();
        let entra_role_obj = cat.ents.iter().map(|_| rng.guid()).collect();
        Renderer {
            okta_nodes,
            sso_admin_role: format!("AWSReservedSSO_AdministratorAccess_{}", rng.hex(16)),
            sso_admin_role_id: format!("AROA{}", rng.upper_num(17)),
            sso_platform_role: format!("AWSReservedSSO_PlatformEngineer_{}", rng.hex(16)),
            sso_platform_role_id: format!("AROA{}", rng.upper_num(17)),
            tf_role_id: format!("AROA{}", rng.upper_num(17)),
            entra_sync_sp: rng.guid(),
            pim_sp: rng.guid(),
            entra_role_obj,
            google_sync: google_sync_account(&org.company),
            google_sync_profile: rng.digits(21),
            saml_provider: format!("AWSSSO_{}_DO_NOT_DELETE", rng.hex(16)),
            tenant_domain: format!("{}.onmicrosoft.com", org.company),
            atlassian: format!("{}.atlassian.net", org.company),
            scim_group_ids: cat.ents.iter().map(|_| rng.guid()).collect(),
            rng,
        }
    }

    /// The raw records of one event (PIM activations write two).
    pub fn render(&mut self, ev: &Ev, org: &Org, cat: &Catalog) -> Vec<Value> {
        match ev.src {
            Src::Okta => vec![self.okta(ev, org, cat)],
            Src::Entra => self.entra(ev, org, cat),
            Src::Google => vec![self.google(ev, org, cat)],
            Src::Aws => vec![self.cloudtrail(ev, org, cat)],
            Src::Scim => vec![self.scim(ev, org, cat)],
        }
    }

    // ------------------------------------------------------------------------------------------
    // Okta System Log
    // ------------------------------------------------------------------------------------------

    /// Okta System Log uuids are version-1 (time-based) UUIDs from a few log writers.
    fn okta_uuid(&mut self, t: T) -> String {
        let epoch = DateTime::parse_from_rfc3339("1582-10-15T00:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        let ticks =
            ((t - epoch).num_microseconds().unwrap_or(0) as u64) * 10 + self.rng.range(0, 10_000);
        let (node, seq) = self.okta_nodes[self.rng.below(self.okta_nodes.len())];
        let hi = ((ticks & 0xffff_ffff) << 32)
            | (((ticks >> 32) & 0xffff) << 16)
            | ((ticks >> 48) & 0x0fff)
            | 0x1000;
        let lo = ((0x8000 | seq) << 48) | node;
        format_uuid(hi, lo)
    }

    fn okta_user(p: &Person) -> Value {
        json!({"id": p.okta_id, "type": "User", "alternateId": p.email, "displayName": p.display, "detailEntry": null})
    }

    fn okta(&mut self, ev: &Ev, org: &Org, cat: &Catalog) -> Value {
        let t = ev.t;
        let req = format!("{}AAA{}", self.rng.alnum(22), self.rng.below(8));
        let (actor, client, auth, security, transaction) = match ev.who {
            Who::P(a) => {
                let p = &org.people[a];
                let z = p.zone();
                let ip = p.ip(&mut self.rng);
                let (ua, os, browser) = if ev.api {
                    (API_UAS[self.rng.below(2)], "Mac OS X", "UNKNOWN")
                } else {
                    UAS[p.ua]
                };
                (
                    Self::okta_user(p),
                    json!({"userAgent": {"rawUserAgent": ua, "os": os, "browser": browser}, "zone": "null",
                           "device": if ev.api { "Unknown" } else { "Computer" }, "id": null, "ipAddress": ip,
                           "geographicalContext": {"city": z.city, "state": z.state, "country": z.country, "postalCode": z.postal,
                                                   "geolocation": {"lat": z.lat, "lon": z.lon}}}),
                    json!({"authenticationProvider": null, "credentialProvider": null, "credentialType": null, "issuer": null,
                           "interface": null, "authenticationStep": 0, "externalSessionId": if ev.api { "trs".to_owned() + &self.rng.alnum(22) } else { p.session.clone() }}),
                    json!({"asNumber": z.as_number, "asOrg": z.as_org, "isp": z.isp, "domain": z.domain, "isProxy": false}),
                    json!({"type": "WEB", "id": req, "detail": {}}),
                )
            }
            Who::Bot(b) => {
                let (actor, client) = if b == Bot::OktaWorkflows {
                    (
                        json!({"id": "0oa4wfl0ws9XqTz2m0h7", "type": "PublicClientApp", "alternateId": "0oa4wfl0ws9XqTz2m0h7", "displayName": "Okta Workflows OAuth", "detailEntry": null}),
                        json!({"userAgent": {"rawUserAgent": "okta-sdk-java/8.2.5 java/17.0.9 Linux/5.10.223", "os": "Linux", "browser": "UNKNOWN"},
                               "zone": "null", "device": "Unknown", "id": "0oa4wfl0ws9XqTz2m0h7", "ipAddress": "198.51.100.250",
                               "geographicalContext": {"city": "Boardman", "state": "Oregon", "country": "United States", "postalCode": "97818",
                                                       "geolocation": {"lat": 45.8491, "lon": -119.7143}}}),
                    )
                } else {
                    (
                        json!({"id": "0oa1b5sys7PrincPl0h7", "type": "SystemPrincipal", "alternateId": "system@okta.com", "displayName": "Okta System", "detailEntry": null}),
                        json!({"userAgent": null, "zone": null, "device": null, "id": null, "ipAddress": null, "geographicalContext": null}),
                    )
                };
                let tx = if b == Bot::OktaSystem {
                    json!({"type": "JOB", "id": self.rng.alnum(20), "detail": {}})
                } else {
                    json!({"type": "WEB", "id": req, "detail": {}})
                };
                (
                    actor,
                    client,
                    json!({"authenticationProvider": null, "credentialProvider": null, "credentialType": null, "issuer": null,
                           "interface": null, "authenticationStep": 0, "externalSessionId": null}),
                    json!({"asNumber": null, "asOrg": null, "isp": null, "domain": null, "isProxy": null}),
                    tx,
                )
            }
        };
        let system = ev.who == Who::Bot(Bot::OktaSystem);
        let mut debug = json!({"requestId": req, "threatSuspected": "false"});
        let tp = ev.target.map(|i| &org.people[i]);
        let user = tp.map(Self::okta_user);
        let (et, dm, leg, targets) = match (&ev.op, tp) {
            (Op::Create, Some(_)) => {
                if system {
                    debug = json!({"requestId": req, "jobId": transaction["id"], "importSource": "Workday"});
                } else {
                    debug["requestUri"] = json!("/api/v1/users");
                    debug["url"] = json!("/api/v1/users?activate=true");
                }
                (
                    "user.lifecycle.create",
                    "Create Okta user",
                    "core.user.config.user_creation.success",
                    json!([user]),
                )
            }
            (Op::Activate, Some(_)) => {
                if system {
                    debug = json!({"requestId": req, "jobId": transaction["id"], "importSource": "Workday"});
                }
                (
                    "user.lifecycle.activate",
                    "Activate Okta user",
                    "core.user.config.user_activated",
                    json!([user]),
                )
            }
            (Op::Disable, Some(_)) => {
                if system {
                    debug = json!({"requestId": req, "jobId": transaction["id"], "importSource": "Workday"});
                }
                (
                    "user.lifecycle.deactivate",
                    "Deactivate Okta user",
                    "core.user.config.user_deactivated",
                    json!([user]),
                )
            }
            (Op::Delete, Some(_)) => (
                "user.lifecycle.delete.initiated",
                "Delete Okta user",
                "core.user.config.user_deleted",
                json!([user]),
            ),
            (Op::Grant(e) | Op::Revoke(e), Some(p)) => {
                let add = matches!(ev.op, Op::Grant(_));
                let ent = cat.ent(*e);
                match ent.kind {
                    Kind::OktaGroup => {
                        let uri = format!("/api/v1/groups/{}/users/{}", ent.id, p.okta_id);
                        if system {
                            debug = json!({"requestId": req, "triggeredByGroupRuleId": format!("0pr{}", &ent.id[3..])});
                        } else {
                            debug["requestUri"] = json!(uri);
                            debug["url"] = json!(format!("{uri}?"));
                        }
                        let g = json!({"id": ent.id, "type": "UserGroup", "alternateId": "unknown", "displayName": ent.name, "detailEntry": null});
                        if add {
                            (
                                "group.user_membership.add",
                                "Add user to group membership",
                                "core.user_group_member.user_add",
                                json!([user, g]),
                            )
                        } else {
                            (
                                "group.user_membership.remove",
                                "Remove user from group membership",
                                "core.user_group_member.user_remove",
                                json!([user, g]),
                            )
                        }
                    }
                    Kind::OktaApp => {
                        let uri = format!("/api/v1/apps/{}/users", ent.id);
                        if system {
                            debug = json!({"requestId": req, "appAssignmentSource": "GROUP"});
                        } else {
                            debug["requestUri"] = json!(uri);
                            debug["url"] = json!(format!("{uri}?"));
                        }
                        let app_user = json!({"id": format!("0ua{}", &p.okta_id[3..]), "type": "AppUser", "alternateId": p.email, "displayName": p.display, "detailEntry": null});
                        let app = json!({"id": ent.id, "type": "AppInstance", "alternateId": ent.name, "displayName": ent.name, "detailEntry": null});
                        if add {
                            (
                                "application.user_membership.add",
                                "Add user to application membership",
                                "app.generic.provision.assign_user_to_app",
                                json!([app_user, app, user]),
                            )
                        } else {
                            (
                                "application.user_membership.remove",
                                "Remove user from application membership",
                                "app.generic.provision.deprovision_user_from_app",
                                json!([app_user, app, user]),
                            )
                        }
                    }
                    _ => {
                        let key = if add {
                            "privilegeGranted"
                        } else {
                            "privilegeRevoked"
                        };
                        debug[key] = json!(ent.name);
                        let uri = format!("/api/internal/administrators/{}", p.okta_id);
                        debug["requestUri"] = json!(uri);
                        debug["url"] = json!(format!("{uri}?"));
                        if add {
                            (
                                "user.account.privilege.grant",
                                "Grant user privilege",
                                "core.user.admin_privilege.granted",
                                json!([user]),
                            )
                        } else {
                            (
                                "user.account.privilege.revoke",
                                "Revoke user privilege",
                                "core.user.admin_privilege.revoked",
                                json!([user]),
                            )
                        }
                    }
                }
            }
            _ => {
                // sign-ins and SSO: not provisioning
                if self.rng.chance(0.4) {
                    debug["requestUri"] = json!("/idp/idx/identify");
                    debug["url"] = json!("/idp/idx/identify?");
                    (
                        "user.session.start",
                        "User login to Okta",
                        "core.user_auth.login_success",
                        Value::Null,
                    )
                } else {
                    let apps = [
                        "Slack",
                        "Zoom",
                        "Microsoft Office 365",
                        "Google Workspace",
                        "1Password",
                    ];
                    let name = apps[self.rng.below(apps.len())];
                    let e = cat.get(Kind::OktaApp, name);
                    debug["requestUri"] = json!("/app/sso/saml");
                    debug["url"] = json!("/app/sso/saml?");
                    (
                        "user.authentication.sso",
                        "User single sign on to app",
                        "app.auth.sso",
                        json!([{"id": cat.ent(e).id, "type": "AppInstance", "alternateId": name, "displayName": name, "detailEntry": null}]),
                    )
                }
            }
        };
        json!({
            "uuid": self.okta_uuid(t),
            "published": okta_time(t),
            "eventType": et,
            "version": "0",
            "displayMessage": dm,
            "severity": "INFO",
            "client": client,
            "device": null,
            "actor": actor,
            "outcome": {"result": "SUCCESS", "reason": null},
            "target": targets,
            "transaction": transaction,
            "debugContext": {"debugData": debug},
            "legacyEventType": leg,
            "authenticationContext": auth,
            "securityContext": security,
        })
    }

    // ------------------------------------------------------------------------------------------
    // Microsoft Graph directoryAudit
    // ------------------------------------------------------------------------------------------

    fn graph_time(&mut self, t: T) -> String {
        format!(
            "{}{}Z",
            t.format("%Y-%m-%dT%H:%M:%S%.6f"),
            self.rng.below(10)
        )
    }

    fn entra_base(
        &mut self,
        t: T,
        corr: &str,
        activity: &str,
        category: &str,
        op_type: &str,
        service: &str,
    ) -> Value {
        let id = if service == "PIM" {
            format!("PIM_{corr}_{}", self.rng.range(10_000, 99_999))
        } else {
            format!(
                "Directory_{corr}_{}_{}",
                self.rng.upper_num(5),
                self.rng.range(100_000_000, 999_999_999)
            )
        };
        json!({
            "id": id,
            "category": category,
            "correlationId": corr,
            "result": "success",
            "resultReason": "",
            "activityDisplayName": activity,
            "activityDateTime": self.graph_time(t),
            "loggedByService": service,
            "operationType": op_type,
            "initiatedBy": null,
            "targetResources": [],
            "additionalDetails": [],
        })
    }

    fn entra_initiator(&mut self, rec: &mut Value, who: Who, org: &Org, api: bool) {
        match who {
            Who::P(a) => {
                let p = &org.people[a];
                let ip = p.ip(&mut self.rng);
                rec["initiatedBy"] = json!({"user": {"id": p.entra_id, "displayName": null, "userPrincipalName": p.email,
                                                     "ipAddress": ip, "roles": []}, "app": null});
                let ua = if api { API_UAS[2] } else { UAS[p.ua].0 };
                rec["additionalDetails"] = json!([{"key": "User-Agent", "value": ua}]);
            }
            Who::Bot(Bot::MsPim) => {
                rec["initiatedBy"] = json!({"user": null, "app": {"appId": "01fc33a7-78ba-4d2f-a4b7-768e336e890e", "displayName": "MS-PIM",
                                                                   "servicePrincipalId": self.pim_sp, "servicePrincipalName": null}});
            }
            Who::Bot(_) => {
                rec["initiatedBy"] = json!({"user": null, "app": {"appId": "00000014-0000-0000-c000-000000000000", "displayName": "Microsoft.Azure.SyncFabric",
                                                                   "servicePrincipalId": self.entra_sync_sp, "servicePrincipalName": null}});
            }
        }
    }

    fn entra_user(p: &Person, upn: &str, props: Vec<Value>) -> Value {
        json!({"id": p.entra_id, "displayName": null, "type": "User", "userPrincipalName": upn, "groupType": null,
               "modifiedProperties": props, "administrativeUnits": []})
    }

    fn entra(&mut self, ev: &Ev, org: &Org, cat: &Catalog) -> Vec<Value> {
        let t = ev.t;
        let corr = self.rng.guid();
        let tp = ev.target.map(|i| &org.people[i]);
        let role_props = |r: &Renderer, e: u32, add: bool| -> Vec<Value> {
            let ent = cat.ent(e);
            let vals = [
                ("Role.ObjectID", r.entra_role_obj[e as usize].clone()),
                ("Role.DisplayName", ent.name.clone()),
                ("Role.TemplateId", ent.aux.clone()),
                ("Role.WellKnownObjectName", ent.aux2.clone()),
            ];
            vals.iter()
                .map(|(k, v)| {
                    if add {
                        mp(k, Some(js(v)), None)
                    } else {
                        mp(k, None, Some(js(v)))
                    }
                })
                .collect()
        };
        let role_target = |r: &Renderer, e: u32| {
            json!({"id": r.entra_role_obj[e as usize], "displayName": null, "type": "Role", "userPrincipalName": null,
                   "groupType": null, "modifiedProperties": [], "administrativeUnits": []})
        };
        let mut rec;
        match (&ev.op, tp) {
            (Op::Create, Some(p)) => {
                rec = self.entra_base(
                    t,
                    &corr,
                    "Add user",
                    "UserManagement",
                    "Add",
                    "Core Directory",
                );
                let props = vec![
                    mp("AccountEnabled", Some("[true]".into()), Some("[]".into())),
                    mp("DisplayName", Some(format!("[{}]", js(&p.display))), Some("[]".into())),
                    mp("UserPrincipalName", Some(format!("[{}]", js(&p.email))), Some("[]".into())),
                    mp("UserType", Some("[\"Member\"]".into()), Some("[]".into())),
                    mp("Department", Some(format!("[{}]", js(DEPTS[p.dept].name))), Some("[]".into())),
                    mp("JobTitle", Some(format!("[{}]", js(&p.title))), Some("[]".into())),
                    mp("Included Updated Properties", Some("\"AccountEnabled, DisplayName, UserPrincipalName, UserType, Department, JobTitle\"".into()), None),
                ];
                rec["targetResources"] = json!([Self::entra_user(p, &p.email, props)]);
            }
            (Op::Invite, Some(p)) => {
                rec = self.entra_base(
                    t,
                    &corr,
                    "Invite external user",
                    "UserManagement",
                    "Add",
                    "Invited Users",
                );
                let upn = format!("{}#EXT#@{}", p.email.replace('@', "_"), self.tenant_domain);
                rec["targetResources"] = json!([Self::entra_user(p, &upn, vec![])]);
                self.entra_initiator(&mut rec, ev.who, org, ev.api);
                if let Some(a) = rec["additionalDetails"].as_array_mut() {
                    a.push(json!({"key": "invitedUserEmailAddress", "value": p.email}));
                }
                return vec![rec];
            }
            (Op::Disable, Some(p)) => {
                rec = self.entra_base(
                    t,
                    &corr,
                    "Disable account",
                    "UserManagement",
                    "Update",
                    "Core Directory",
                );
                let props = vec![
                    mp(
                        "AccountEnabled",
                        Some("[false]".into()),
                        Some("[true]".into()),
                    ),
                    mp(
                        "Included Updated Properties",
                        Some("\"AccountEnabled\"".into()),
                        None,
                    ),
                ];
                rec["targetResources"] = json!([Self::entra_user(p, &p.email, props)]);
            }
            (Op::Delete, Some(p)) => {
                rec = self.entra_base(
                    t,
                    &corr,
                    "Delete user",
                    "UserManagement",
                    "Delete",
                    "Core Directory",
                );
                let upn = format!("{}{}", p.entra_id.replace('-', ""), p.email);
                rec["targetResources"] = json!([Self::entra_user(p, &upn, vec![])]);
            }
            (Op::Grant(e) | Op::Revoke(e), Some(p)) => {
                let add = matches!(ev.op, Op::Grant(_));
                let ent = cat.ent(*e);
                match ent.kind {
                    Kind::EntraGroup => {
                        let (act, op) = if add {
                            ("Add member to group", "Assign")
                        } else {
                            ("Remove member from group", "Unassign")
                        };
                        rec =
                            self.entra_base(t, &corr, act, "GroupManagement", op, "Core Directory");
                        let props = if add {
                            vec![
                                mp("Group.ObjectID", Some(js(&ent.id)), None),
                                mp("Group.DisplayName", Some(js(&ent.name)), None),
                            ]
                        } else {
                            vec![
                                mp("Group.ObjectID", None, Some(js(&ent.id))),
                                mp("Group.DisplayName", None, Some(js(&ent.name))),
                            ]
                        };
                        let gtype = if ent.name.starts_with("Teams") {
                            "unifiedGroups"
                        } else {
                            "azureAD"
                        };
                        rec["targetResources"] = json!([Self::entra_user(p, &p.email, props),
                            {"id": ent.id, "displayName": null, "type": "Group", "userPrincipalName": null, "groupType": gtype,
                             "modifiedProperties": [], "administrativeUnits": []}]);
                    }
                    Kind::EntraRole => {
                        let (act, op) = if add {
                            ("Add member to role", "Assign")
                        } else {
                            ("Remove member from role", "Unassign")
                        };
                        rec =
                            self.entra_base(t, &corr, act, "RoleManagement", op, "Core Directory");
                        rec["targetResources"] = json!([
                            Self::entra_user(p, &p.email, role_props(self, *e, add)),
                            role_target(self, *e)
                        ]);
                    }
                    _ => {
                        let act = if add {
                            "Add app role assignment grant to user"
                        } else {
                            "Remove app role assignment from user"
                        };
                        rec = self.entra_base(
                            t,
                            &corr,
                            act,
                            "UserManagement",
                            if add { "Assign" } else { "Unassign" },
                            "Core Directory",
                        );
                        let v = |x: &str| {
                            if add {
                                (Some(js(x)), None)
                            } else {
                                (None, Some(js(x)))
                            }
                        };
                        let props: Vec<Value> = [
                            ("AppRole.Id", "00000000-0000-0000-0000-000000000000"),
                            ("AppRole.Value", ""),
                            ("User.ObjectID", p.entra_id.as_str()),
                            ("User.UPN", p.email.as_str()),
                        ]
                        .iter()
                        .map(|(k, x)| {
                            let (n, o) = v(x);
                            mp(k, n, o)
                        })
                        .collect();
                        rec["targetResources"] = json!([
                            {"id": ent.id, "displayName": ent.name, "type": "ServicePrincipal", "userPrincipalName": null, "groupType": null,
                             "modifiedProperties": props, "administrativeUnits": []},
                            {"id": p.entra_id, "displayName": p.display, "type": "User", "userPrincipalName": p.email, "groupType": null,
                             "modifiedProperties": [], "administrativeUnits": []}
                        ]);
                    }
                }
            }
            (Op::PimActivate(e, why), Some(p)) => {
                let ent = cat.ent(*e);
                let request = self.rng.guid();
                let mut a = self.entra_base(
                    t,
                    &corr,
                    "Add member to role completed (PIM activation)",
                    "RoleManagement",
                    "Add",
                    "PIM",
                );
                let ip = p.ip(&mut self.rng);
                a["initiatedBy"] = json!({"user": {"id": p.entra_id, "displayName": p.display, "userPrincipalName": p.email, "ipAddress": ip, "roles": []}, "app": null});
                a["resultReason"] = json!(why);
                a["targetResources"] = json!([
                    {"id": ent.aux, "displayName": ent.name, "type": "Role", "modifiedProperties": [], "administrativeUnits": []},
                    {"id": request, "type": "Request", "administrativeUnits": []},
                    {"id": p.entra_id, "displayName": p.display, "type": "User", "userPrincipalName": p.email, "administrativeUnits": []}
                ]);
                let end = t + Duration::hours(4);
                a["additionalDetails"] = json!([
                    {"key": "Justification", "value": why},
                    {"key": "StartTime", "value": self.graph_time(t)},
                    {"key": "ExpirationTime", "value": self.graph_time(end)},
                    {"key": "ipaddr", "value": ip},
                    {"key": "RequestId", "value": request}
                ]);
                let corr2 = self.rng.guid();
                let tb = t + Duration::milliseconds(self.rng.range(300, 1500) as i64);
                let mut b = self.entra_base(
                    tb,
                    &corr2,
                    "Add member to role",
                    "RoleManagement",
                    "Assign",
                    "Core Directory",
                );
                self.entra_initiator(&mut b, Who::Bot(Bot::MsPim), org, false);
                b["targetResources"] = json!([
                    Self::entra_user(p, &p.email, role_props(self, *e, true)),
                    role_target(self, *e)
                ]);
                return vec![a, b];
            }
            (Op::PimExpire(e), Some(p)) => {
                let ent = cat.ent(*e);
                let mut a = self.entra_base(
                    t,
                    &corr,
                    "Remove member from role (PIM activation expired)",
                    "RoleManagement",
                    "Remove",
                    "PIM",
                );
                self.entra_initiator(&mut a, Who::Bot(Bot::MsPim), org, false);
                a["targetResources"] = json!([
                    {"id": ent.aux, "displayName": ent.name, "type": "Role", "modifiedProperties": [], "administrativeUnits": []},
                    {"id": p.entra_id, "displayName": p.display, "type": "User", "userPrincipalName": p.email, "administrativeUnits": []}
                ]);
                let corr2 = self.rng.guid();
                let tb = t + Duration::milliseconds(self.rng.range(300, 1500) as i64);
                let mut b = self.entra_base(
                    tb,
                    &corr2,
                    "Remove member from role",
                    "RoleManagement",
                    "Unassign",
                    "Core Directory",
                );
                self.entra_initiator(&mut b, Who::Bot(Bot::MsPim), org, false);
                b["targetResources"] = json!([
                    Self::entra_user(p, &p.email, role_props(self, *e, false)),
                    role_target(self, *e)
                ]);
                return vec![a, b];
            }
            (_, tp) => {
                // profile edits and password resets: not provisioning
                let (act, props) = if self.rng.chance(0.7) {
                    let f =
                        ["MobilePhone", "JobTitle", "OfficeLocation", "Manager"][self.rng.below(4)];
                    (
                        "Update user",
                        vec![
                            mp(f, Some("[\"...\"]".into()), Some("[]".into())),
                            mp("Included Updated Properties", Some(js(f)), None),
                        ],
                    )
                } else {
                    ("Reset user password", vec![])
                };
                rec = self.entra_base(t, &corr, act, "UserManagement", "Update", "Core Directory");
                if let Some(p) = tp {
                    rec["targetResources"] = json!([Self::entra_user(p, &p.email, props)]);
                }
            }
        }
        self.entra_initiator(&mut rec, ev.who, org, ev.api);
        vec![rec]
    }

    // ------------------------------------------------------------------------------------------
    // Google Workspace Admin SDK Reports
    // ------------------------------------------------------------------------------------------

    fn google(&mut self, ev: &Ev, org: &Org, cat: &Catalog) -> Value {
        let (actor, ip) = match ev.who {
            Who::P(a) => {
                let p = &org.people[a];
                (
                    json!({"callerType": "USER", "email": p.email, "profileId": p.google_id}),
                    p.ip(&mut self.rng),
                )
            }
            Who::Bot(_) => (
                json!({"callerType": "USER", "email": self.google_sync, "profileId": self.google_sync_profile}),
                format!(
                    "2001:db8:4860:{:x}::{:x}",
                    self.rng.range(1, 16),
                    self.rng.range(1, 4096)
                ),
            ),
        };
        let tp = ev.target.map(|i| &org.people[i]);
        let email = tp.map(|p| p.email.clone()).unwrap_or_default();
        let param = |n: &str, v: &str| json!({"name": n, "value": v});
        let (ty, name, params) = match &ev.op {
            Op::Create => (
                "USER_SETTINGS",
                "CREATE_USER",
                vec![param("USER_EMAIL", &email)],
            ),
            Op::Disable => (
                "USER_SETTINGS",
                "SUSPEND_USER",
                vec![param("USER_EMAIL", &email)],
            ),
            Op::Delete => (
                "USER_SETTINGS",
                "DELETE_USER",
                vec![param("USER_EMAIL", &email)],
            ),
            Op::MoveOu(ou) => {
                let old = tp
                    .and_then(|p| p.before)
                    .map(|(d, t, _)| format!("/{}/{}", DEPTS[d].name, org.teams[t].name))
                    .unwrap_or_else(|| "/".into());
                (
                    "USER_SETTINGS",
                    "MOVE_USER_TO_ORG_UNIT",
                    vec![
                        param("USER_EMAIL", &email),
                        param("ORG_UNIT_NAME", &old),
                        param("NEW_VALUE", ou),
                    ],
                )
            }
            Op::Grant(e) | Op::Revoke(e) => {
                let add = matches!(ev.op, Op::Grant(_));
                let ent = cat.ent(*e);
                if ent.kind == Kind::GoogleRole {
                    (
                        "DELEGATED_ADMIN_SETTINGS",
                        if add { "ASSIGN_ROLE" } else { "UNASSIGN_ROLE" },
                        vec![
                            param("ROLE_ID", &ent.aux),
                            param("ROLE_NAME", &ent.name),
                            param("USER_EMAIL", &email),
                        ],
                    )
                } else {
                    (
                        "GROUP_SETTINGS",
                        if add {
                            "ADD_GROUP_MEMBER"
                        } else {
                            "REMOVE_GROUP_MEMBER"
                        },
                        vec![param("USER_EMAIL", &email), param("GROUP_EMAIL", &ent.name)],
                    )
                }
            }
            _ => (
                "USER_SETTINGS",
                "CHANGE_PASSWORD",
                vec![param("USER_EMAIL", &email)],
            ),
        };
        let uq = self.rng.u64() as i64;
        json!({
            "kind": "admin#reports#activity",
            "id": {"time": okta_time(ev.t), "uniqueQualifier": uq.to_string(), "applicationName": "admin", "customerId": org.customer_id},
            "etag": format!("\"{}/{}\"", self.rng.alnum(27), self.rng.alnum(27)),
            "actor": actor,
            "ipAddress": ip,
            "events": [{"type": ty, "name": name, "parameters": params}],
        })
    }

    // ------------------------------------------------------------------------------------------
    // CloudTrail
    // ------------------------------------------------------------------------------------------

    fn account(cat: &Catalog, i: u8) -> &str {
        match i {
            1 => &cat.accounts.prod,
            2 => &cat.accounts.staging,
            _ => &cat.accounts.management,
        }
    }

    fn sso_identity(&mut self, p: &Person, account: &str, t: T) -> Value {
        let (role, role_id) = if p.role == Role::PlatformEng {
            (&self.sso_platform_role, &self.sso_platform_role_id)
        } else {
            (&self.sso_admin_role, &self.sso_admin_role_id)
        };
        let created = t - Duration::minutes(self.rng.range(3, 55) as i64);
        json!({
            "type": "AssumedRole",
            "principalId": format!("{role_id}:{}", p.email),
            "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{}", p.email),
            "accountId": account,
            "accessKeyId": format!("ASIA{}", self.rng.upper_num(16)),
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": role_id,
                                  "arn": format!("arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/{role}"),
                                  "accountId": account, "userName": role},
                "webIdFederationData": {},
                "attributes": {"creationDate": ct_time(created), "mfaAuthenticated": "false"}
            }
        })
    }

    fn cloudtrail(&mut self, ev: &Ev, org: &Org, cat: &Catalog) -> Value {
        let t = ev.t;
        let account_idx = match &ev.op {
            Op::RoleCreate { account, .. }
            | Op::RoleAttach { account, .. }
            | Op::RoleInline { account, .. } => *account,
            _ => 0,
        };
        let account = Self::account(cat, account_idx).to_owned();
        let mut rec = json!({
            "eventVersion": "1.10",
            "userIdentity": null,
            "eventTime": ct_time(t),
            "eventSource": "iam.amazonaws.com",
            "eventName": "",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "",
            "userAgent": "",
            "requestParameters": null,
            "responseElements": null,
            "requestID": self.rng.guid(),
            "eventID": self.rng.guid(),
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": account,
            "eventCategory": "Management",
            "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": "iam.amazonaws.com"},
        });
        let aws_date = |t: T| t.format("%b %-d, %Y, %-I:%M:%S %p").to_string();
        match ev.who {
            Who::Bot(Bot::Terraform) => {
                let session = format!("tf-nightly-{}", t.format("%Y%m%d"));
                rec["userIdentity"] = json!({
                    "type": "AssumedRole",
                    "principalId": format!("{}:{session}", self.tf_role_id),
                    "arn": format!("arn:aws:sts::{account}:assumed-role/terraform-ci/{session}"),
                    "accountId": account,
                    "accessKeyId": format!("ASIA{}", self.rng.upper_num(16)),
                    "sessionContext": {
                        "sessionIssuer": {"type": "Role", "principalId": self.tf_role_id, "arn": format!("arn:aws:iam::{account}:role/terraform-ci"),
                                          "accountId": account, "userName": "terraform-ci"},
                        "webIdFederationData": {"federatedProvider": format!("arn:aws:iam::{account}:oidc-provider/token.actions.githubusercontent.com"), "attributes": {}},
                        "attributes": {"creationDate": ct_time(t - Duration::minutes(self.rng.range(2, 20) as i64)), "mfaAuthenticated": "false"}
                    }
                });
                rec["sourceIPAddress"] = json!(TF_RUNNER_IPS[self.rng.below(TF_RUNNER_IPS.len())]);
                rec["userAgent"] = json!(TF_UA);
            }
            Who::Bot(_) => {
                rec["userIdentity"] =
                    json!({"type": "AWSService", "invokedBy": "sso.amazonaws.com"});
                rec["sourceIPAddress"] = json!("sso.amazonaws.com");
                rec["userAgent"] = json!("sso.amazonaws.com");
                if let Some(o) = rec.as_object_mut() {
                    o.remove("tlsDetails");
                }
            }
            Who::P(a) => {
                let p = &org.people[a];
                if matches!(ev.op, Op::SelfKey) {
                    rec["userIdentity"] = json!({"type": "IAMUser", "principalId": format!("AIDA{}", &p.okta_id[3..].to_uppercase()),
                        "arn": format!("arn:aws:iam::{account}:user/{}", p.email), "accountId": account,
                        "accessKeyId": format!("AKIA{}", self.rng.upper_num(16)), "userName": p.email});
                    rec["sourceIPAddress"] = json!(p.ip(&mut self.rng));
                    rec["userAgent"] = json!(format!("{CLI_UA}iam.create-access-key"));
                } else {
                    rec["userIdentity"] = self.sso_identity(p, &account, t);
                    rec["sourceIPAddress"] = json!(p.ip(&mut self.rng));
                    let console = !ev.api && self.rng.chance(0.75);
                    if console {
                        rec["userAgent"] = json!("AWS Internal");
                        rec["sessionCredentialFromConsole"] = json!("true");
                    } else {
                        rec["userAgent"] = json!(format!("{CLI_UA}iam"));
                    }
                }
            }
        }
        let tp = ev.target.map(|i| &org.people[i]);
        let uname = tp.map(|p| ascii_email(&p.email)).unwrap_or_default();
        match &ev.op {
            Op::Create => {
                rec["eventName"] = json!("CreateUser");
                let team = tp
                    .map(|p| org.teams[p.team].slug.clone())
                    .unwrap_or_default();
                rec["requestParameters"] =
                    json!({"userName": uname, "tags": [{"key": "team", "value": team}]});
                rec["responseElements"] = json!({"user": {"path": "/", "userName": uname, "userId": format!("AIDA{}", self.rng.upper_num(17)),
                    "arn": format!("arn:aws:iam::{account}:user/{uname}"), "createDate": aws_date(t), "tags": [{"key": "team", "value": team}]}});
            }
            Op::Delete => {
                rec["eventName"] = json!("DeleteUser");
                rec["requestParameters"] = json!({"userName": uname});
            }
            Op::SelfKey => {
                rec["eventName"] = json!("CreateAccessKey");
                rec["responseElements"] = json!({"accessKey": {"userName": uname, "accessKeyId": format!("AKIA{}", self.rng.upper_num(16)),
                    "status": "Active", "createDate": aws_date(t)}});
            }
            Op::Grant(e) | Op::Revoke(e) => {
                let add = matches!(ev.op, Op::Grant(_));
                let ent = cat.ent(*e);
                match ent.kind {
                    Kind::IamGroup => {
                        rec["eventName"] = json!(if add {
                            "AddUserToGroup"
                        } else {
                            "RemoveUserFromGroup"
                        });
                        rec["requestParameters"] =
                            json!({"groupName": ent.name, "userName": uname});
                    }
                    Kind::IamPolicy => {
                        rec["eventName"] = json!(if add {
                            "AttachUserPolicy"
                        } else {
                            "DetachUserPolicy"
                        });
                        rec["requestParameters"] = json!({"userName": uname, "policyArn": ent.id});
                    }
                    _ => {
                        let target_account = if self.rng.chance(0.6) {
                            &cat.accounts.prod
                        } else {
                            &cat.accounts.staging
                        };
                        let principal = tp.map(|p| p.idstore_id.clone()).unwrap_or_default();
                        let params = json!({"instanceArn": format!("arn:aws:sso:::instance/{}", cat.accounts.sso_instance),
                            "targetId": target_account, "targetType": "AWS_ACCOUNT", "permissionSetArn": ent.aux,
                            "principalType": "USER", "principalId": principal});
                        let status_key = if add {
                            "accountAssignmentCreationStatus"
                        } else {
                            "accountAssignmentDeletionStatus"
                        };
                        rec["eventSource"] = json!("sso.amazonaws.com");
                        rec["eventName"] = json!(if add {
                            "CreateAccountAssignment"
                        } else {
                            "DeleteAccountAssignment"
                        });
                        rec["responseElements"] = json!({status_key: {"status": "IN_PROGRESS", "requestId": self.rng.guid(),
                            "targetId": target_account, "targetType": "AWS_ACCOUNT", "permissionSetArn": ent.aux,
                            "principalType": "USER", "principalId": principal}});
                        rec["requestParameters"] = params;
                        rec["tlsDetails"]["clientProvidedHostHeader"] =
                            json!("sso.us-east-1.amazonaws.com");
                        if rec["userAgent"]
                            .as_str()
                            .is_some_and(|u| u.starts_with("aws-cli"))
                        {
                            rec["userAgent"] =
                                json!(format!("{CLI_UA}sso-admin.create-account-assignment"));
                        }
                    }
                }
            }
            Op::RoleCreate { role, sso, .. } => {
                let (path, trust) = if *sso {
                    (
                        "/aws-reserved/sso.amazonaws.com/",
                        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                        "Principal": {"Federated": format!("arn:aws:iam::{account}:saml-provider/{}", self.saml_provider)},
                        "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
                        "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}}}]}),
                    )
                } else {
                    (
                        "/",
                        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
                    )
                };
                rec["eventName"] = json!("CreateRole");
                rec["requestParameters"] = json!({"roleName": role, "path": path, "assumeRolePolicyDocument": trust.to_string()});
                rec["responseElements"] = json!({"role": {"path": path, "roleName": role, "roleId": format!("AROA{}", self.rng.upper_num(17)),
                    "arn": format!("arn:aws:iam::{account}:role{path}{role}"), "createDate": aws_date(t)}});
            }
            Op::RoleAttach {
                role,
                policy,
                custom,
                detach,
                ..
            } => {
                let arn = if *custom {
                    format!("arn:aws:iam::{account}:policy/{policy}")
                } else {
                    format!("arn:aws:iam::aws:policy/{policy}")
                };
                rec["eventName"] = json!(if *detach {
                    "DetachRolePolicy"
                } else {
                    "AttachRolePolicy"
                });
                rec["requestParameters"] = json!({"roleName": role, "policyArn": arn});
            }
            Op::RoleInline { role, .. } => {
                let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": format!("arn:aws:logs:us-east-1:{account}:log-group:/ecs/{role}:*")}]});
                rec["eventName"] = json!("PutRolePolicy");
                rec["requestParameters"] = json!({"roleName": role, "policyName": "logs-write", "policyDocument": doc.to_string()});
            }
            _ => {
                // reads: dropped by the normalizer
                let (name, params) = match self.rng.below(4) {
                    0 => ("GetUser", json!({"userName": uname})),
                    1 => ("ListAttachedUserPolicies", json!({"userName": uname})),
                    2 => ("ListRoles", Value::Null),
                    _ => ("ListGroupsForUser", json!({"userName": uname})),
                };
                rec["eventName"] = json!(name);
                rec["requestParameters"] = params;
                rec["readOnly"] = json!(true);
            }
        }
        rec
    }

    // ------------------------------------------------------------------------------------------
    // SCIM
    // ------------------------------------------------------------------------------------------

    fn scim(&mut self, ev: &Ev, org: &Org, cat: &Catalog) -> Value {
        let received = ev.t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        let tp = ev.target.map(|i| &org.people[i]);
        let patch = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
        let member = |p: &Person| json!({"value": p.scim_id, "display": p.email});
        let remove_op = |p: &Person| json!({"op": "remove", "path": format!("members[value eq \"{}\"]", p.scim_id)});
        let (method, path, body) = match (&ev.op, tp) {
            (Op::Create, Some(p)) => {
                let manager = p.manager.map(|m| org.people[m].scim_id.clone());
                (
                    "POST",
                    "/scim/v2/Users".to_owned(),
                    json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                        "externalId": p.okta_id,
                        "userName": p.email,
                        "name": {"givenName": p.first, "familyName": p.last, "formatted": p.display},
                        "displayName": p.display,
                        "title": p.title,
                        "emails": [{"value": p.email, "type": "work", "primary": true}],
                        "active": true,
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": DEPTS[p.dept].name, "manager": {"value": manager}}
                    }),
                )
            }
            (Op::Disable, Some(p)) => (
                "PATCH",
                format!("/scim/v2/Users/{}", p.scim_id),
                json!({"schemas": [patch], "Operations": [{"op": "replace", "value": {"active": false}}]}),
            ),
            (Op::Delete, Some(p)) => (
                "DELETE",
                format!("/scim/v2/Users/{}", p.scim_id),
                Value::Null,
            ),
            (Op::Grant(e), Some(p)) => (
                "PATCH",
                format!("/scim/v2/Groups/{}", self.scim_group_ids[*e as usize]),
                json!({"schemas": [patch], "Operations": [{"op": "add", "path": "members", "value": [member(p)]}]}),
            ),
            (Op::Revoke(e), Some(p)) => (
                "PATCH",
                format!("/scim/v2/Groups/{}", self.scim_group_ids[*e as usize]),
                json!({"schemas": [patch], "Operations": [remove_op(p)]}),
            ),
            (Op::ScimGroup { ent, add, remove }, _) => {
                let mut ops = Vec::new();
                if !add.is_empty() {
                    let members: Vec<Value> = add.iter().map(|i| member(&org.people[*i])).collect();
                    ops.push(json!({"op": "add", "path": "members", "value": members}));
                }
                for i in remove {
                    ops.push(remove_op(&org.people[*i]));
                }
                (
                    "PATCH",
                    format!("/scim/v2/Groups/{}", self.scim_group_ids[*ent as usize]),
                    json!({"schemas": [patch], "Operations": ops}),
                )
            }
            _ => {
                let email = tp.map(|p| p.email.clone()).unwrap_or_default();
                (
                    "GET",
                    format!("/scim/v2/Users?filter=userName%20eq%20%22{email}%22"),
                    Value::Null,
                )
            }
        };
        let _ = cat;
        json!({
            "method": method,
            "path": path,
            "body": body,
            "received_at": received,
            "tenant": self.atlassian,
            "client": "okta-scim",
            "ip": "198.51.100.240",
            "user_agent": "Okta SCIM Client 1.0.0",
        })
    }
}

/// The service account the organisation's Google directory sync runs as.
pub fn google_sync_account(company: &str) -> String {
    format!("directory-sync@{company}-it-automation.iam.gserviceaccount.com")
}
